/**
 * Watches a broker process while a benchmark loads it: every `everyMs` a `GET /healthz` (its round trip time is the
 * node's event-loop lag as a client sees it, plus a little; its body has the admission counts and the node's own lag
 * sample) and the process' RSS and CPU time from /proc (bench/lib/brokers.ts), which need no answer from the node.
 */
import http from 'node:http'
import { readFileSync } from 'node:fs'
import type { RunningBroker } from './brokers.js'
import type { RefusalReason } from '../../broker/src/admission/admission.js'

export interface Health {
  clients: number
  admission?: { connections: number, accepted: number, refused: Record<RefusalReason, number>, shed?: number, overloaded: boolean, lagMs: number }
}

export interface NodeSample {
  /** Date.now() when the request went out. */
  at: number
  /** ms until /healthz answered; null when it did not within the timeout (or failed). */
  rttMs: number | null
  health?: Health
  rssBytes: number
  cpuMs: number
}

/** User and system CPU time of one process so far, ms (/proc/<pid>/stat utime and stime, clock ticks of 10 ms). */
export function cpuSplitMs (pid: number): { userMs: number, systemMs: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return { userMs: Number(fields[11]) * 10, systemMs: Number(fields[12]) * 10 }
}

/** One `GET /healthz`, with its round trip time; null when it fails or takes over `timeoutMs`. */
export async function getHealth (url: string, timeoutMs = 5000): Promise<{ rttMs: number, health: Health } | null> {
  const start = performance.now()
  return await new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => {
        try { resolve({ rttMs: performance.now() - start, health: JSON.parse(body) as Health }) } catch { resolve(null) }
      })
    })
    req.on('timeout', () => { req.destroy(); resolve(null) })
    req.on('error', () => resolve(null))
  })
}

export interface NodeWatch {
  samples: NodeSample[]
  /** The samples taken between two Date.now() times. */
  between: (from: number, to: number) => NodeSample[]
  stop: () => Promise<void>
}

/** Samples `broker` every `everyMs` (a request still out when the next is due is waited for, up to `timeoutMs`). */
export function watchNode (broker: RunningBroker, everyMs = 500, timeoutMs = 5000): NodeWatch {
  const samples: NodeSample[] = []
  let running = true
  const loop = (async () => {
    while (running) {
      const at = Date.now()
      const rssBytes = broker.rss()
      const cpuMs = broker.cpuMs()
      const got = await getHealth(broker.healthUrl, timeoutMs)
      samples.push({ at, rttMs: got?.rttMs ?? null, health: got?.health, rssBytes, cpuMs })
      const wait = at + everyMs - Date.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    }
  })()
  return {
    samples,
    between: (from, to) => samples.filter((s) => s.at >= from && s.at <= to),
    stop: async () => { running = false; await loop }
  }
}

/** Peaks of a run of samples: RSS, the node's lag sample, /healthz round trip, and how many got no answer. */
export function peaks (samples: NodeSample[]): { rssBytes: number, lagMs: number, rttMs: number, unanswered: number, answered: number } {
  return {
    rssBytes: Math.max(0, ...samples.map((s) => s.rssBytes)),
    lagMs: Math.max(0, ...samples.map((s) => s.health?.admission?.lagMs ?? 0)),
    rttMs: Math.max(0, ...samples.map((s) => s.rttMs ?? 0)),
    unanswered: samples.filter((s) => s.rttMs === null).length,
    answered: samples.filter((s) => s.rttMs !== null).length
  }
}

/** Refusals by reason, and connections shed at accept, between two answered samples (the last answered sample in each list). */
export function refusedBetween (before: NodeSample[], after: NodeSample[]): Record<string, number> {
  const last = (list: NodeSample[]): Health['admission'] => [...list].reverse().find((s) => s.health?.admission !== undefined)?.health?.admission
  const a = last(before)
  const b = last(after)
  const out: Record<string, number> = {}
  if (b === undefined) return out
  for (const [reason, n] of Object.entries(b.refused)) out[reason] = n - (a?.refused[reason as RefusalReason] ?? 0)
  if ((b.shed ?? 0) > 0) out['shed at accept'] = (b.shed ?? 0) - (a?.shed ?? 0)
  return out
}
