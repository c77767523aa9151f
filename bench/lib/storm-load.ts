/**
 * Storm workers (bench/lib/storm-worker.ts) driven from the benchmark's main thread: a job split over worker
 * threads (rate, count and concurrency shared out), their counts summed and their histograms merged.
 */
import { Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import { readFileSync } from 'node:fs'
import * as hdr from 'hdr-histogram-js'
import type { StormJob, StormStats } from './storm-worker.js'
import { askReports } from './load.js'

const WORKER = fileURLToPath(new URL('./storm-worker.js', import.meta.url))

export interface StormLoad {
  /** The workers' counts as last reported (every 250 ms), summed; the max fields are the largest of any worker. */
  stats: () => StormStats
  /** Resolves once every worker is done (arrivals and joins), or for viewers once every one is subscribed. */
  done: Promise<void>
  /** Counts and the merged histogram (µs: join time, or latency for viewers), asked of every worker now. */
  report: () => Promise<{ stats: StormStats, histogram: hdr.Histogram }>
  /** Empties the workers' histograms. */
  reset: () => void
  /** No more arrivals. */
  halt: () => void
  stop: () => Promise<void>
}

/** The open-file limit of this process (all its threads share it). */
export function openFileLimit (): number {
  const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))
  return m !== null ? Number(m[1]) : 65536
}

const SUMS: Array<keyof StormStats> = ['arrived', 'attempts', 'accepted', 'joined', 'refusedConnack', 'refused503', 'shed', 'errors', 'timeouts', 'gaveUp', 'dropped', 'refusedThenJoined', 'waiting', 'open', 'held']
const MAXES: Array<keyof StormStats> = ['maxOpen', 'maxHeld', 'lastRefusedJoinAt', 'lastJoinAt', 'maxTimerLagMs']

export function sumStats (parts: StormStats[]): StormStats {
  const out = {} as StormStats
  for (const k of SUMS) out[k] = parts.reduce((sum, p) => sum + (p[k] ?? 0), 0)
  for (const k of MAXES) out[k] = parts.reduce((max, p) => Math.max(max, p[k] ?? 0), 0)
  out.startedAt = parts.reduce((min, p) => Math.min(min, p.startedAt), Infinity)
  return out
}

/**
 * Starts `job` over `threads` workers: `rate`, `count` and `concurrency` are divided among them, client numbers
 * start at `first` (default 0) a million apart per worker, and `maxOpen` defaults to a share of the open-file limit
 * less 2,000 (the rest of the benchmark's sockets).
 */
export function startStorm (job: Omit<StormJob, 'first' | 'maxOpen'> & { first?: number, maxOpen?: number }, threads = 2): StormLoad {
  const workers: Worker[] = []
  const latest: StormStats[] = []
  const finished: Array<Promise<void>> = []
  const share = (n: number | undefined, w: number): number | undefined => n === undefined ? undefined : Math.floor(n / threads) + (w < n % threads ? 1 : 0)
  const maxOpen = job.maxOpen ?? Math.max(100, openFileLimit() - 2000)
  for (let w = 0; w < threads; w++) {
    const data: StormJob = {
      ...job,
      first: (job.first ?? 0) + w * 1_000_000,
      rate: job.rate === undefined ? undefined : job.rate / threads,
      count: share(job.count, w),
      concurrency: share(job.concurrency, w),
      maxOpen: Math.floor(maxOpen / threads)
    }
    const worker = new Worker(WORKER, { workerData: data })
    workers.push(worker)
    finished.push(new Promise((resolve, reject) => {
      worker.on('message', (m: { cmd: string, stats?: StormStats }) => {
        if (m.stats !== undefined) latest[w] = m.stats
        if (m.cmd === 'done' || m.cmd === 'ready') resolve()
      })
      worker.once('error', reject)
    }))
  }
  const done = Promise.all(finished).then(() => {})
  done.catch(() => {})
  const report = async (): Promise<{ stats: StormStats, histogram: hdr.Histogram }> => {
    const parts = await askReports<{ stats: StormStats, histogram: string }>(workers)
    const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 })
    for (const p of parts) histogram.add(hdr.decodeFromCompressedBase64(p.histogram))
    return { stats: sumStats(parts.map((p) => p.stats)), histogram }
  }
  return {
    stats: () => sumStats(latest.filter((s) => s !== undefined)),
    done,
    report,
    reset: () => { for (const w of workers) w.postMessage({ cmd: 'reset' }) },
    halt: () => { for (const w of workers) w.postMessage({ cmd: 'stop' }) },
    stop: async () => { for (const w of workers) await w.terminate() }
  }
}
