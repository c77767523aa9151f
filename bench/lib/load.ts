/**
 * Viewers spread over worker threads (bench/lib/load-worker.ts), driven from the benchmark's main thread: wait
 * until they are subscribed or joined, zero their counters, collect their counts and merged latency histogram.
 */
import { Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import * as hdr from 'hdr-histogram-js'
import type { LoadJob } from './load-worker.js'

const WORKER = fileURLToPath(new URL('./load-worker.js', import.meta.url))

/** What the workers together report. */
export interface LoadReport {
  /** PUBLISH packets received by all viewers since the last reset. */
  received: number
  connected: number
  joined: number
  /** Latency (fan-out) or join time (join), µs. */
  histogram: hdr.Histogram
}

export interface Load {
  /** PUBLISH packets received by all viewers since the last reset, as last reported (every 20 ms, fan-out mode). */
  received: () => number
  /** Resolves once every viewer is subscribed (fan-out) or joined (join: with the slowest worker's ms since start). */
  done: Promise<number>
  reset: () => void
  report: () => Promise<LoadReport>
  /** Waits until the viewers stop receiving (the broker's queues drained), at most `ms`. */
  settle: (ms?: number) => Promise<void>
  stop: () => Promise<void>
}

/**
 * Starts `viewers` viewers over `threads` worker threads (default 2) with the rest of `job` as given.
 * `done` rejects with the first connection error a viewer meets, or after `timeoutMs` (default 180 s).
 */
export function startLoad (job: Omit<LoadJob, 'count' | 'first'>, viewers: number, threads = 2, timeoutMs = 180_000): Load {
  const workers: Worker[] = []
  const progress: number[] = []
  const finished: Array<Promise<number>> = []
  for (let w = 0; w < threads; w++) {
    const count = Math.floor(viewers / threads) + (w < viewers % threads ? 1 : 0)
    const worker = new Worker(WORKER, { workerData: { ...job, count, first: w * 1_000_000 } satisfies LoadJob })
    workers.push(worker)
    finished.push(new Promise((resolve, reject) => {
      worker.on('message', (m: { cmd: string, message?: string, lastMs?: number, received?: number }) => {
        if (m.cmd === 'progress') progress[w] = m.received ?? 0
        if (m.cmd === 'ready') resolve(0)
        if (m.cmd === 'joined') resolve(m.lastMs ?? 0)
        if (m.cmd === 'error') reject(new Error(`viewer: ${m.message ?? ''}`))
      })
      worker.once('error', reject)
    }))
  }
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${viewers} viewers (${job.mode}) on ${job.url}`)), timeoutMs)
  })
  const done = Promise.race([Promise.all(finished).then((ms) => Math.max(...ms)), timeout]).finally(() => clearTimeout(timer))
  done.catch(() => {})

  const report = async (): Promise<LoadReport> => {
    const parts = await askReports<{ received: number, connected: number, joined: number, histogram: string }>(workers)
    const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 })
    for (const p of parts) histogram.add(hdr.decodeFromCompressedBase64(p.histogram))
    const sum = (k: 'received' | 'connected' | 'joined'): number => parts.reduce((a, p) => a + p[k], 0)
    return { received: sum('received'), connected: sum('connected'), joined: sum('joined'), histogram }
  }
  return {
    done,
    received: () => progress.reduce((a, b) => a + b, 0),
    reset: () => {
      progress.fill(0)
      for (const w of workers) w.postMessage({ cmd: 'reset' })
    },
    report,
    settle: async (ms = 10_000) => {
      let last = -1
      const deadline = Date.now() + ms
      while (Date.now() < deadline) {
        const total = (await report()).received
        if (total === last) return
        last = total
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    },
    stop: async () => { for (const w of workers) await w.terminate() }
  }
}

/**
 * Sends `{cmd: 'report'}` to every worker and resolves with each one's `{cmd: 'report', ...}` answer, in worker order.
 */
export async function askReports<T> (workers: Worker[]): Promise<T[]> {
  return await Promise.all(workers.map(async (w) => await new Promise<T>((resolve) => {
    const on = (m: { cmd: string }): void => {
      if (m.cmd !== 'report') return
      w.off('message', on)
      resolve(m as T)
    }
    w.on('message', on)
    w.postMessage({ cmd: 'report' })
  })))
}
