/**
 * A worker thread of viewers that come back after losing their connection (bench/herd.ts, bench/node-loss.ts): raw
 * MQTT 3.1.1 over TCP or WebSocket (CONNECT, SUBSCRIBE, UNSUBSCRIBE made by mqtt-packet, what arrives read by
 * ./wire.ts), each watching `feeds` with `$replay` at QoS `qos` (1, with a PUBACK for each delivery, is the viewer client
 * library's default: client/src/viewer.ts, feed-subscription.ts). Its reconnect policy, the library's:
 *  - delay = random(0, min(30 s, 500 ms * 2^attempt)) (full jitter, client/src/backoff.ts); `attempt` is 0 for the
 *    first try after a lost connection, +1 per failure, back to 0 at CONNACK 0. A connection dropped with `drop`, or
 *    lost, comes back after random(0, 0.5 s);
 *  - refused (CONNACK 3 over TCP, HTTP 503 over WebSocket, a connection made and closed before any answer: shed at
 *    accept): at least Retry-After, or 1 s when absent (client/src/backoff.ts reconnectDelay), plus that jitter; no CONNACK within 10 s (`connectTimeoutMs`), a connect error: the jitter alone;
 *  - URLs: each viewer has all of them, its own shuffled order (with `spread`, viewer i starts at urls[i % n]), and
 *    moves to the next on every failure and lost connection;
 *  - resume: each feed with `$replay/after-<seq>@<epoch>/<feed>` from its last delivered seq (`$replay/all/<feed>`
 *    before any); only messages on the filter subscribed now count; seq <= last is a duplicate (dropped), a gap is
 *    not delivered and the feed resubscribes from its position (UNSUBSCRIBE, SUBSCRIBE), a reset notice is taken.
 * Exactness is checked at each arrival: a viewer's delivered seq list is 1..last, once each, in order exactly when no
 * duplicate, gap, reset or epoch change ever arrived and its last seq is the publisher's last (`check`).
 * Recovery: a viewer affected (`drop`: all; `mark`: those on the node about to die, and no other) is back when it is subscribed again and
 * holds, for every feed, at least the seq the publisher had stored when its SUBACK came (`published`).
 * Parent -> worker: {cmd:'published', acked[]}, {cmd:'drop', at}, {cmd:'mark', url, at} (answered {cmd:'marked', affected}),
 * {cmd:'check', finals[]} (answered {cmd:'checked', ...}). Worker -> parent: {cmd:'status', ...} every 250 ms.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { connect as tcpConnect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { reconnectDelay, type AttemptFailure } from '../../client/src/backoff.js'
import { PacketReader, PacketType, WebSocketClient, puback } from './wire.js'

export interface HerdJob {
  urls: string[]
  feeds: string[]
  qos: 0 | 1
  count: number
  /** The first viewer's number (client ids `herd-<n>`). */
  first: number
  spread: boolean
  connectTimeoutMs: number
  /** Viewers connecting at once at most during the first join (per worker). */
  initialConcurrency: number
}

/** What a worker reports every 250 ms; the parent sums them. */
export interface HerdStatus {
  live: number
  affected: number
  recovered: number
  maxRecoveredMs: number
  attempts: number
  refused: number
  timeouts: number
  errors: number
  closed: number
  lost: number
  duplicates: number
  gaps: number
  resets: number
  epochChanges: number
  subFailed: number
  delivered: number
  /** Viewers live and holding, on every feed, the publisher's last acknowledged seq. */
  current: number
  /** Live viewers per URL index. */
  perUrl: number[]
  /** Drops and marks seen so far: the parent ignores a status from before its last one. */
  phase: number
}

const job = workerData as HerdJob
const stats: Omit<HerdStatus, 'live' | 'affected' | 'recovered' | 'maxRecoveredMs' | 'current' | 'perUrl' | 'phase'> = { attempts: 0, refused: 0, timeouts: 0, errors: 0, closed: 0, lost: 0, duplicates: 0, gaps: 0, resets: 0, epochChanges: 0, subFailed: 0, delivered: 0 }
const urls = job.urls.map((u) => new URL(u))
let acked: number[] = job.feeds.map(() => 0)
const feedIndex = new Map(job.feeds.map((f, i) => [f, i]))
const upgrades = urls.map((u) => u.protocol.startsWith('ws') ? WebSocketClient.request(u) : null)

class Viewer {
  readonly n: number
  readonly order: number[]
  at = 0
  attempt = 0
  socket: Socket | null = null
  send: (b: Buffer) => void = () => {}
  live = false
  packetId = 1
  readonly last: number[] = job.feeds.map(() => 0)
  readonly epoch: Array<string | null> = job.feeds.map(() => null)
  readonly afterReset: boolean[] = job.feeds.map(() => false)
  /** The filter subscribed now per feed: only its messages count (null while none). */
  readonly filter: Array<string | null> = job.feeds.map(() => null)
  target: number[] | null = null
  affectedAt = 0
  recoveredMs = -1
  anomalies = 0
  timer: NodeJS.Timeout | undefined
  /** Holds one of the first join's slots (given back when it is subscribed or its first try fails). */
  slot = false
  constructor (n: number) {
    this.n = n
    const rest = shuffle(urls.map((_u, i) => i))
    if (!job.spread) this.order = rest
    else { const home = n % urls.length; this.order = [home, ...rest.filter((i) => i !== home)] }
  }
}

function shuffle<T> (a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [a[i], a[j]] = [a[j], a[i]] }
  return a
}

const viewers: Viewer[] = Array.from({ length: job.count }, (_v, i) => new Viewer(job.first + i))
const startedAt = Date.now()
for (const v of viewers) v.affectedAt = startedAt // the first join is measured as a recovery too
let nextStart = 0
const startMore = (): void => { if (nextStart < viewers.length) { const v = viewers[nextStart++]; v.slot = true; open(v) } }

function filterFor (v: Viewer, f: number): string {
  const epoch = v.epoch[f]
  return v.last[f] > 0 && epoch !== null && !v.afterReset[f] ? `$replay/after-${v.last[f]}@${epoch}/${job.feeds[f]}` : `$replay/all/${job.feeds[f]}`
}

function subscribe (v: Viewer, feeds: number[]): void {
  const subscriptions = feeds.map((f) => { v.filter[f] = filterFor(v, f); return { topic: v.filter[f] as string, qos: job.qos } })
  v.send(mqttPacket.generate({ cmd: 'subscribe', messageId: nextId(v), subscriptions }))
}

function nextId (v: Viewer): number { v.packetId = v.packetId % 65535 + 1; return v.packetId }

function open (v: Viewer): void {
  const url = urls[v.order[v.at]]
  const index = v.order[v.at]
  stats.attempts++
  const ws = upgrades[index]
  const s = tcpConnect({ host: url.hostname, port: Number(url.port), noDelay: true, localAddress: url.hostname === '127.0.0.1' ? `127.0.0.${2 + ((v.n + stats.attempts) % 50)}` : undefined })
  v.socket = s
  let why: 'refused' | 'timeout' | 'error' | 'closed' = 'closed'
  let retryAfterMs: number | undefined
  // Made, then closed or reset before any answer: shed at accept, a refusal without Retry-After (as the client library).
  let made = false
  let answered = false
  s.once('connect', () => { made = true })
  s.once('data', () => { answered = true })
  const release = (): void => { if (v.slot) { v.slot = false; startMore() } }
  const timer = setTimeout(() => { why = 'timeout'; s.destroy() }, job.connectTimeoutMs)
  const onPacket = (type: number, flags: number, body: Buffer): void => {
    if (type === PacketType.PUBLISH) onPublish(v, flags, body)
    else if (type === PacketType.CONNACK) {
      clearTimeout(timer)
      if (body[1] === 3) { why = 'refused'; s.destroy(); return }
      if (body[1] !== 0) { why = 'error'; s.destroy(); return }
      v.attempt = 0
      subscribe(v, job.feeds.map((_f, i) => i))
    } else if (type === PacketType.SUBACK) {
      for (let i = 2; i < body.length; i++) if (body[i] === 0x80) { stats.subFailed++; v.anomalies++ }
      if (!v.live) { v.live = true; v.target = acked.slice(); release() }
      caughtUp(v)
    }
  }
  const reader = new PacketReader(onPacket)
  const hello = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `herd-${v.n}`, keepalive: 600 })
  if (ws !== null) {
    let head: Buffer | null = Buffer.alloc(0)
    const client = new WebSocketClient((b) => s.write(b), () => v.send(hello), (d) => reader.push(d))
    v.send = (b) => client.write(b)
    s.on('connect', () => s.write(ws))
    s.on('data', (d: Buffer) => {
      if (s !== v.socket) return
      try {
        if (head === null) { client.push(d); return }
        head = Buffer.concat([head, d])
        const end = head.indexOf('\r\n\r\n', 0, 'latin1')
        if (end < 0) return
        const text = head.toString('latin1', 0, end)
        const all = head
        head = null
        if (text.startsWith('HTTP/1.1 101')) { client.push(all); return }
        why = text.startsWith('HTTP/1.1 503') ? 'refused' : 'error'
        const after = Number(/\r\nretry-after:\s*(\d+)/i.exec(text)?.[1])
        if (Number.isFinite(after)) retryAfterMs = after * 1000
        s.destroy()
      } catch { why = 'error'; s.destroy() }
    })
  } else {
    v.send = (b) => s.write(b)
    s.on('connect', () => v.send(hello))
    s.on('data', (d: Buffer) => {
      if (s !== v.socket) return
      try { reader.push(d) } catch { why = 'error'; s.destroy() }
    })
  }
  s.on('error', () => { if (why === 'closed') why = 'error' })
  s.on('close', () => {
    clearTimeout(timer)
    if (s !== v.socket) return // dropped on purpose: already coming back
    v.socket = null
    release()
    if (v.live) { stats.lost++; lose(v, { refused: false }); return }
    stats[why === 'closed' ? 'closed' : why === 'refused' ? 'refused' : why === 'timeout' ? 'timeouts' : 'errors']++
    const shed = made && !answered && (why === 'closed' || why === 'error')
    lose(v, why === 'refused' || shed ? { refused: true, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) } : { refused: false })
  })
}

/**
 * After a lost connection or a failed try: the next URL, after the client library's delay (reconnectDelay: full
 * jitter, and after a refusal at least its Retry-After, else 1 s).
 */
function lose (v: Viewer, failure: AttemptFailure): void {
  v.live = false
  v.target = null
  v.filter.fill(null)
  if (urls.length > 1) v.at = (v.at + 1) % urls.length
  const delay = reconnectDelay(v.attempt, failure)
  v.attempt++
  v.timer = setTimeout(() => { v.timer = undefined; open(v) }, delay)
}

function onPublish (v: Viewer, flags: number, body: Buffer): void {
  const end = 2 + body.readUInt16BE(0)
  const qos = (flags >> 1) & 3
  if (qos > 0) v.send(puback(body.readUInt16BE(end)))
  const topic = body.toString('utf8', 2, end)
  const f = feedIndex.get(topic.slice(topic.indexOf('/', 8) + 1))
  if (f === undefined || topic !== v.filter[f]) return // a message of an earlier subscription
  const m = JSON.parse(body.toString('utf8', qos > 0 ? end + 2 : end)) as { seq?: number, epoch?: string, reset?: boolean }
  if (m.reset === true) {
    stats.resets++
    v.anomalies++
    v.epoch[f] = m.epoch ?? null
    v.afterReset[f] = true
    return
  }
  const seq = m.seq ?? 0
  if (v.epoch[f] !== null && m.epoch !== v.epoch[f]) { stats.epochChanges++; v.anomalies++ }
  v.epoch[f] = m.epoch ?? null
  if (v.afterReset[f]) { v.afterReset[f] = false; v.last[f] = seq - 1 }
  if (seq <= v.last[f]) { stats.duplicates++; v.anomalies++; return }
  if (seq !== v.last[f] + 1) {
    stats.gaps++
    v.anomalies++
    const old = v.filter[f] as string
    v.send(mqttPacket.generate({ cmd: 'unsubscribe', messageId: nextId(v), unsubscriptions: [old] }))
    subscribe(v, [f])
    return
  }
  v.last[f] = seq
  stats.delivered++
  caughtUp(v)
}

function caughtUp (v: Viewer): void {
  if (v.recoveredMs >= 0 || v.affectedAt === 0 || !v.live || v.target === null) return
  for (let f = 0; f < v.last.length; f++) if (v.last[f] < v.target[f]) return
  v.recoveredMs = Date.now() - v.affectedAt
}

function status (): HerdStatus {
  const perUrl = urls.map(() => 0)
  let live = 0; let affected = 0; let recovered = 0; let maxRecoveredMs = 0; let current = 0
  for (const v of viewers) {
    if (v.live) { live++; perUrl[v.order[v.at]]++; if (v.last.every((s, f) => s >= acked[f])) current++ }
    if (v.affectedAt > 0) affected++
    if (v.affectedAt > 0 && v.recoveredMs >= 0) { recovered++; if (v.recoveredMs > maxRecoveredMs) maxRecoveredMs = v.recoveredMs }
  }
  return { ...stats, live, affected, recovered, maxRecoveredMs, current, perUrl, phase }
}

function affect (v: Viewer, at: number): void {
  v.affectedAt = at
  v.recoveredMs = -1
  v.target = null // back only after a new SUBACK (a viewer marked is still connected to the node about to die)
}

let phase = 0
parentPort?.on('message', (m: { cmd: string, acked?: number[], at?: number, url?: string, finals?: number[] }) => {
  if (m.cmd === 'drop' || m.cmd === 'mark') phase++
  if (m.cmd === 'published') {
    acked = m.acked ?? acked
    for (const v of viewers) caughtUp(v)
  } else if (m.cmd === 'drop') {
    for (const v of viewers) {
      affect(v, m.at ?? Date.now())
      const s = v.socket
      if (s === null) continue // waiting for its next try already
      v.socket = null
      s.destroy()
      v.attempt = 0
      lose(v, { refused: false })
    }
  } else if (m.cmd === 'mark') {
    const index = job.urls.indexOf(m.url ?? '')
    let affected = 0
    for (const v of viewers) {
      if (v.socket !== null && v.order[v.at] === index) { affect(v, m.at ?? Date.now()); affected++ } else v.affectedAt = 0 // only this node's viewers are measured from here on
    }
    parentPort?.postMessage({ cmd: 'marked', affected })
  } else if (m.cmd === 'check') {
    const finals = m.finals ?? []
    let exact = 0
    const faults: string[] = []
    for (const v of viewers) {
      const ok = v.anomalies === 0 && v.live && v.last.every((s, f) => s === finals[f])
      if (ok) exact++
      else if (faults.length < 5) faults.push(`herd-${v.n}: last ${v.last.join(',')} of ${finals.join(',')}, anomalies ${v.anomalies}, live ${String(v.live)}`)
    }
    const recoveryMs = viewers.filter((v) => v.affectedAt > 0).map((v) => v.recoveredMs)
    parentPort?.postMessage({ cmd: 'checked', exact, faults, recoveryMs })
  }
})

setInterval(() => parentPort?.postMessage({ cmd: 'status', ...status() }), 250)
for (let k = 0; k < job.initialConcurrency; k++) startMore()
