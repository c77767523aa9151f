/**
 * What bench/herd.ts and bench/node-loss.ts share: Tribune node processes started here (`tribune broker` with the
 * options given, so that admission control keeps its defaults unless told), the viewer fleet in worker threads
 * (./herd-worker.ts), a QoS 1 publisher of numbered events, and a sampler of each node's /healthz (every 250 ms,
 * each on a new connection with a 2 s timeout, as a load balancer's probe would) and resident memory (/proc).
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import mqtt from 'mqtt'
import { freePort } from '../../broker/src/cluster/redis-server.js'
import type { HerdJob, HerdStatus } from './herd-worker.js'

const BIN = fileURLToPath(new URL('../../../bin/tribune.js', import.meta.url))
const WORKER = fileURLToPath(new URL('./herd-worker.js', import.meta.url))
const PROBE = new URL('./loop-probe.js', import.meta.url).href
export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Nodes still running are killed when this process ends, even on SIGINT or SIGTERM. */
const children = new Set<ReturnType<typeof spawn>>()
process.once('exit', () => { for (const c of children) c.kill('SIGKILL') })
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))

export interface Node {
  name: string
  pid: number
  tcpUrl: string
  wsUrl: string
  healthUrl: string
  rss: () => number
  /** CPU time used so far (user + system), ms. */
  cpuMs: () => number
  /** Event-loop delay maxima, one per 250 ms (./loop-probe.ts), with when each arrived (ms of Date.now()). */
  delays: Array<{ t: number, ms: number }>
  /** kill -9 */
  kill: () => void
  stop: () => Promise<void>
  /** Warnings the node logged (e.g. admission summaries). */
  log: string[]
}

/**
 * Starts `tribune broker` on free ports with `args` after the bench's own (host, ports, log level) and waits for
 * /healthz. /healthz is read on the node's `--metrics-port`, as the README tells operators to: on the WebSocket port
 * it would wait in the herd's accept queue, and be shed with it.
 */
export async function startNode (name: string, args: string[]): Promise<Node> {
  const port = await freePort()
  const wsPort = await freePort()
  const metricsPort = await freePort()
  const child = spawn(process.execPath, ['--import', PROBE, BIN, 'broker', '--host', '127.0.0.1', '--port', String(port), '--ws-port', String(wsPort), '--metrics-port', String(metricsPort), '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] })
  const log: string[] = []
  const keep = (d: Buffer): void => { for (const l of d.toString().split('\n')) if (l.trim() !== '' && log.length < 1000) log.push(l) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const delays: Array<{ t: number, ms: number }> = []
  ;(child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => { for (const l of d.toString().split('\n')) if (l !== '') delays.push({ t: Date.now(), ms: Number(l) }) })
  const healthUrl = `http://127.0.0.1:${metricsPort}/healthz`
  const deadline = Date.now() + 20_000
  while ((await health(healthUrl, 1000)).body === null) {
    if (child.exitCode !== null) throw new Error(`node ${name} exited: ${log.join('\n')}`)
    if (Date.now() > deadline) throw new Error(`node ${name} did not answer /healthz within 20 s: ${log.join('\n')}`)
    await sleep(100)
  }
  const pid = child.pid ?? 0
  children.add(child)
  child.once('exit', () => children.delete(child))
  return {
    name, pid, tcpUrl: `mqtt://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${wsPort}/mqtt`, healthUrl, log, delays,
    cpuMs: () => { try { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10 } catch { return 0 } },
    rss: () => { try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024 } catch { return 0 } },
    kill: () => { child.kill('SIGKILL') },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
        child.once('exit', () => { clearTimeout(timer); resolve() })
        child.kill('SIGTERM')
      })
    }
  }
}

export interface Health { ms: number, body: { clients?: number, admission?: { lagMs: number, overloaded: boolean, refused: Record<string, number>, accepted: number } } | null }

/** GET /healthz on a new connection; body null after `timeoutMs` or on an error. */
export async function health (url: string, timeoutMs: number): Promise<Health> {
  const t0 = performance.now()
  return await new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => { text += d.toString() })
      res.on('end', () => { try { resolve({ ms: performance.now() - t0, body: JSON.parse(text) }) } catch { resolve({ ms: performance.now() - t0, body: null }) } })
      res.on('error', () => resolve({ ms: performance.now() - t0, body: null }))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve({ ms: performance.now() - t0, body: null }))
  })
}

export interface Sample { t: number, node: string, ms: number, ok: boolean, lagMs: number, rss: number, cpuMs: number, clients: number }

/** Samples every node's /healthz and RSS every 250 ms (from `since`, ms of Date.now()). */
export function startSampler (nodes: Node[], timeoutMs = 2000): { samples: Sample[], drop: (name: string) => void, stop: () => void } {
  const samples: Sample[] = []
  const gone = new Set<string>()
  const timer = setInterval(() => {
    for (const n of nodes) {
      if (gone.has(n.name)) continue
      const t = Date.now()
      const rss = n.rss()
      const cpuMs = n.cpuMs()
      void health(n.healthUrl, timeoutMs).then((h) => {
        samples.push({ t, node: n.name, ms: h.ms, ok: h.body !== null, lagMs: h.body?.admission?.lagMs ?? 0, rss, cpuMs, clients: h.body?.clients ?? -1 })
      })
    }
  }, 250)
  return { samples, drop: (name) => gone.add(name), stop: () => clearInterval(timer) }
}

/** Figures of the samples of `node` taken in [from, to]: /healthz answers, event-loop lag, RSS, CPU. */
export function summarize (samples: Sample[], node: Node, from: number, to: number): Record<string, number> {
  const s = samples.filter((x) => x.node === node.name && x.t >= from && x.t <= to).sort((a, b) => a.t - b.t)
  const span = (s[s.length - 1]?.t ?? 0) - (s[0]?.t ?? 0)
  const ok = s.filter((x) => x.ok)
  const times = ok.map((x) => x.ms).sort((a, b) => a - b)
  // The longest time without an answer: between the ends of consecutive answered probes (or the window's edges).
  let silence = 0
  let lastAnswer = from
  for (const x of ok.map((x) => x.t + x.ms).sort((a, b) => a - b)) { silence = Math.max(silence, x - lastAnswer); lastAnswer = x }
  silence = Math.max(silence, to - lastAnswer)
  return {
    probes: s.length,
    probeTimeouts: s.length - ok.length,
    probeP50Ms: Math.round(times[Math.floor(times.length * 0.5)] ?? 0),
    probeP99Ms: Math.round(times[Math.min(times.length - 1, Math.floor(times.length * 0.99))] ?? 0),
    probeMaxMs: Math.round(times[times.length - 1] ?? 0),
    longestSilenceMs: Math.round(silence),
    lagMaxMs: Math.max(0, ...ok.map((x) => x.lagMs)),
    loopDelayMaxMs: Math.max(0, ...node.delays.filter((d) => d.t >= from && d.t <= to + 250).map((d) => d.ms)),
    cpuPct: span > 0 ? Math.round((s[s.length - 1].cpuMs - s[0].cpuMs) / span * 100) : 0,
    rssMaxMB: mb(Math.max(0, ...s.map((x) => x.rss))),
    rssEndMB: mb(s[s.length - 1]?.rss ?? 0)
  }
}

export const mb = (bytes: number): number => Math.round(bytes / 1048576)

/**
 * `node` over time, one value a second from `from` to `to`, comma-separated (flat figures for a chart): RSS (MB, the
 * last sample), event-loop lag (ms, the larger of /healthz lagMs and the in-node delay), /healthz's slowest answer (ms;
 * `x` when a probe timed out).
 */
export function series (samples: Sample[], node: Node, from: number, to: number): { rssMB: string, lagMs: string, healthMs: string } {
  const rss: number[] = []; const lag: number[] = []; const answer: string[] = []
  for (let t = from; t < to; t += 1000) {
    const s = samples.filter((x) => x.node === node.name && x.t >= t && x.t < t + 1000)
    rss.push(mb(s[s.length - 1]?.rss ?? 0))
    lag.push(Math.max(0, ...s.filter((x) => x.ok).map((x) => x.lagMs), ...node.delays.filter((d) => d.t >= t && d.t < t + 1000).map((d) => d.ms)))
    answer.push(s.some((x) => !x.ok) ? 'x' : String(Math.round(Math.max(0, ...s.map((x) => x.ms)))))
  }
  return { rssMB: rss.join(','), lagMs: lag.join(','), healthMs: answer.join(',') }
}

export interface Fleet {
  status: () => HerdStatus
  published: (acked: number[]) => void
  drop: (at: number) => void
  /** @returns the viewers on `url` now, measured from `at` */
  mark: (url: string, at: number) => Promise<number>
  check: (finals: number[]) => Promise<{ exact: number, faults: string[], recoveryMs: number[] }>
  stop: () => Promise<void>
}

/** `viewers` viewers over `threads` worker threads, with `job` as given. */
export function startFleet (job: Omit<HerdJob, 'count' | 'first'>, viewers: number, threads = 2): Fleet {
  const workers: Worker[] = []
  let latest: HerdStatus[] = []
  let phase = 0
  for (let w = 0; w < threads; w++) {
    const count = Math.floor(viewers / threads) + (w < viewers % threads ? 1 : 0)
    const worker = new Worker(WORKER, { workerData: { ...job, count, first: w * 1_000_000 } satisfies HerdJob })
    worker.on('message', (m: HerdStatus & { cmd: string }) => { if (m.cmd === 'status' && m.phase === phase) latest[w] = m })
    worker.on('error', (err) => { console.error(`viewer worker ${w}: ${err.message}`) })
    workers.push(worker)
  }
  const ask = async <T>(msg: object, answer: string): Promise<T[]> => await Promise.all(workers.map(async (w) => await new Promise<T>((resolve) => {
    const on = (m: { cmd: string }): void => { if (m.cmd === answer) { w.off('message', on); resolve(m as T) } }
    w.on('message', on)
    w.postMessage(msg)
  })))
  return {
    status: () => {
      const sum: HerdStatus = { live: 0, affected: 0, recovered: 0, maxRecoveredMs: 0, current: 0, attempts: 0, refused: 0, timeouts: 0, errors: 0, closed: 0, lost: 0, duplicates: 0, gaps: 0, resets: 0, epochChanges: 0, subFailed: 0, delivered: 0, perUrl: job.urls.map(() => 0), phase }
      if (latest.filter(Boolean).length < workers.length) return sum // not every worker has reported since the last drop or mark
      for (const s of latest) {
        for (const [k, v] of Object.entries(s) as Array<[keyof HerdStatus, unknown]>) {
          if (k === 'maxRecoveredMs') sum[k] = Math.max(sum[k], v as number)
          else if (k === 'perUrl') sum[k] = (v as number[]).map((x, i) => x + sum.perUrl[i])
          else if (typeof v === 'number' && k !== 'phase') (sum as unknown as Record<string, number>)[k] += v
        }
      }
      return sum
    },
    published: (acked) => { for (const w of workers) w.postMessage({ cmd: 'published', acked }) },
    drop: (at) => {
      phase++
      latest = []
      for (const w of workers) w.postMessage({ cmd: 'drop', at })
    },
    mark: async (url, at) => {
      phase++
      latest = []
      return (await ask<{ affected: number }>({ cmd: 'mark', url, at }, 'marked')).reduce((a, m) => a + m.affected, 0)
    },
    check: async (finals) => {
      const parts = await ask<{ exact: number, faults: string[], recoveryMs: number[] }>({ cmd: 'check', finals }, 'checked')
      return { exact: parts.reduce((a, p) => a + p.exact, 0), faults: parts.flatMap((p) => p.faults), recoveryMs: parts.flatMap((p) => p.recoveryMs) }
    },
    stop: async () => { for (const w of workers) await w.terminate() }
  }
}

export interface Publisher { acked: number[], maxAckMs: () => number, stop: () => Promise<number[]> }

/**
 * Publishes `rate` events a second (QoS 1, data `{id, n}` with n increasing per feed), round-robin over `feeds`, on its
 * own connection; `onAck` gets the count acknowledged per feed, which is the feed's last seq (the feeds start empty).
 */
export async function startPublisher (url: string, feeds: string[], rate: number, onAck: (acked: number[]) => void): Promise<Publisher> {
  const client = await mqtt.connectAsync(url, { clientId: 'herd-publisher', clean: true, reconnectPeriod: 500, connectTimeout: 30_000 })
  const acked = feeds.map(() => 0)
  const sent = feeds.map(() => 0)
  let k = 0
  let maxAckMs = 0
  let stopped = false
  const inFlight = new Set<Promise<void>>()
  const timer = setInterval(() => {
    const f = k++ % feeds.length
    const n = ++sent[f]
    const t0 = performance.now()
    const p = client.publishAsync(feeds[f], JSON.stringify({ id: `e${n}`, n }), { qos: 1 }).then(() => {
      maxAckMs = Math.max(maxAckMs, performance.now() - t0)
      acked[f] = Math.max(acked[f], n)
      onAck(acked.slice())
    }, () => {}).finally(() => inFlight.delete(p))
    inFlight.add(p)
  }, 1000 / rate)
  return {
    acked,
    maxAckMs: () => Math.round(maxAckMs),
    stop: async () => {
      if (stopped) return acked.slice()
      stopped = true
      clearInterval(timer)
      await Promise.race([Promise.all(inFlight), sleep(30_000)])
      await client.endAsync(true)
      return acked.slice()
    }
  }
}

/** p-th percentile (0..1) of `values`, rounded. */
export function percentile (values: number[], p: number): number {
  const s = values.slice().sort((a, b) => a - b)
  return Math.round(s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? 0)
}
