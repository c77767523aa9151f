/**
 * A storm worker thread: clients of one node that connect (raw MQTT 3.1.1 over WebSocket or TCP, as
 * bench/lib/load-worker.ts), and either join and leave, or stay as viewers. Modes:
 *  - `arrivals`: open loop, `rate` new clients a second for `ms` (each arrives whatever the node did with the ones
 *    before). A client joins: CONNECT, SUBSCRIBE `topics`, its `expect` PUBLISH packets (history and state), then
 *    DISCONNECT and close, so that file descriptors stay bounded;
 *  - `closed`: `concurrency` joins in progress at once for `ms`, each followed by the next (sustained joins/s);
 *  - `batch`: `count` clients arrive at once (at most `concurrency` connecting), one join each;
 *  - `viewers`: `count` clients connect (at most 200 at once) and stay, each PUBLISH's latency recorded from the
 *    float64 send time (ms since 1970) in its payload's first 8 bytes; {cmd:'ready'} once all are subscribed.
 * A refused client (CONNACK 3, or HTTP 503 to the upgrade) with `retry` tries again as the client library does
 * (client/src/backoff.ts reconnectDelay): at least the Retry-After (1 s after a CONNACK 3), plus full jitter
 * random(0, min(30 s, 500 ms * 2^attempt)); a connection made and then closed or reset before any answer (the node
 * shed it at accept) likewise after 1 s; a connection that fails otherwise, after the jitter alone. Without
 * `retry` it counts and gives up. Every 250 ms {cmd:'progress', stats}; {cmd:'done'} once every client arrived and
 * none is left connecting or waiting. Parent messages: {cmd:'reset'} (empties the histogram), {cmd:'report'}
 * (answers {cmd:'report', stats, histogram}), {cmd:'stop'} (no more arrivals).
 */
import { parentPort, workerData } from 'node:worker_threads'
import { connect as tcpConnect, type Socket } from 'node:net'
import { setPriority } from 'node:os'
import mqttPacket from 'mqtt-packet'
import * as hdr from 'hdr-histogram-js'
import { PacketReader, PacketType, WebSocketClient, readPublish } from './wire.js'

export interface StormJob {
  url: string
  mode: 'arrivals' | 'closed' | 'batch' | 'viewers'
  /** Filters of the client's one SUBSCRIBE. */
  topics: string[]
  /** PUBLISH packets that complete a join (arrivals, closed, batch). */
  expect: number
  username?: string
  password?: string
  /** The first client's number: client ids `storm-<n>`, source addresses 127.0.0.2-51 by number. */
  first: number
  /** arrivals: new clients per second (this worker). */
  rate?: number
  /** arrivals, closed: ms during which new clients come. */
  ms?: number
  /** closed: joins in progress at once; batch: clients connecting at once at most. */
  concurrency?: number
  /** batch, viewers: clients. */
  count?: number
  /** Refused and failed clients try again with backoff (see above); else they give up. */
  retry: boolean
  /** Sockets this worker may hold open; arrivals beyond wait for one to close (counted as held). */
  maxOpen: number
}

/** What a worker counts; summed over workers by bench/lib/storm-load.ts. */
export interface StormStats {
  arrived: number
  /** Connections opened (first tries and retries). */
  attempts: number
  /** Connections the node took (CONNACK 0). */
  accepted: number
  joined: number
  /** Refusals: CONNACK 3 over TCP, 503 over WebSocket. */
  refusedConnack: number
  refused503: number
  /** Connections made and closed or reset before any answer (shed at accept by the node). */
  shed: number
  /** Connections that failed otherwise (reset, closed, timed out, other answers), of which timed out (no CONNACK or
   * upgrade answer within 10 s: on loopback, SYNs dropped by a full accept queue). */
  errors: number
  timeouts: number
  /** Clients that gave up (no retry). */
  gaveUp: number
  /** viewers: connections lost after they were in. */
  dropped: number
  /** Clients refused at least once that got in later. */
  refusedThenJoined: number
  /** Clients waiting to try again, sockets open, arrivals held back by `maxOpen` (now, and the most at once). */
  waiting: number
  open: number
  held: number
  maxOpen: number
  maxHeld: number
  /** Date.now() of the last join of a client that had been refused (0: none), and of any client. */
  lastRefusedJoinAt: number
  lastJoinAt: number
  /** The worst lateness of this worker's 5 ms arrival timer, ms: over a few ms, the generator was the limit. */
  maxTimerLagMs: number
  /** Date.now() when the worker started (arrivals are timed from it). */
  startedAt: number
}

const job = workerData as StormJob
// Storm threads yield to the node and to the viewers' thread, whose latency is measured on the same cores (on Linux
// this sets the calling thread's nice value).
if (job.mode !== 'viewers') { try { setPriority(10) } catch {} }
const CONNECT_TIMEOUT_MS = 10_000
const BACKOFF = { baseMs: 500, capMs: 30_000, refusedMinMs: 1000 }
const newHistogram = (): hdr.Histogram => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 })
/** Join time from arrival (µs; arrivals, closed, batch) or latency (µs; viewers). */
let histogram = newHistogram()
const stats: StormStats = {
  arrived: 0, attempts: 0, accepted: 0, joined: 0, refusedConnack: 0, refused503: 0, shed: 0, errors: 0, timeouts: 0, gaveUp: 0, dropped: 0, refusedThenJoined: 0,
  waiting: 0, open: 0, held: 0, maxOpen: 0, maxHeld: 0, lastRefusedJoinAt: 0, lastJoinAt: 0, maxTimerLagMs: 0, startedAt: Date.now()
}

const url = new URL(job.url)
const overWebSocket = url.protocol.startsWith('ws')
const port = Number(url.port !== '' ? url.port : overWebSocket ? 80 : 1883)
const upgrade = overWebSocket ? WebSocketClient.request(url) : Buffer.alloc(0)
const subscribe = mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: job.topics.map((topic) => ({ topic, qos: 0 })) })
const DISCONNECT = Buffer.from([0xe0, 0x00])
const loopback = url.hostname === '127.0.0.1'

interface Client { n: number, arrivedAt: number, tries: number, refused: boolean, onJoined?: () => void }

type Outcome = { kind: 'joined' | 'error' } | { kind: 'refused', floorMs: number }

/** One connection of `c`: its outcome decides what follows (see the module comment). */
function attempt (c: Client): void {
  stats.attempts++
  stats.open++
  if (stats.open > stats.maxOpen) stats.maxOpen = stats.open
  const hello = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `storm-${c.n}`, keepalive: 600, username: job.username, password: job.password === undefined ? undefined : Buffer.from(job.password) })
  const s: Socket = tcpConnect({ host: url.hostname, port, noDelay: true, localAddress: loopback ? `127.0.0.${2 + ((c.n + c.tries) % 50)}` : undefined })
  let settled = false
  let made = false
  let answered = false
  let inside = false
  let got = 0
  const timer = setTimeout(() => { stats.timeouts++; settle({ kind: 'error' }) }, CONNECT_TIMEOUT_MS)
  const settle = (o: Outcome): void => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    if (o.kind === 'joined' && job.mode !== 'viewers') {
      send(DISCONNECT)
      s.end()
    } else if (o.kind !== 'joined') s.destroy()
    outcome(c, o)
  }
  const onPacket = (type: number, flags: number, body: Buffer): void => {
    if (type === PacketType.CONNACK) {
      answered = true
      if (body[1] === 3) { stats.refusedConnack++; settle({ kind: 'refused', floorMs: BACKOFF.refusedMinMs }); return }
      if (body[1] !== 0) { settle({ kind: 'error' }); return }
      clearTimeout(timer) // in: from here it waits for its messages as a viewer would
      stats.accepted++
      send(subscribe)
    } else if (type === PacketType.SUBACK && job.mode === 'viewers') {
      inside = true
      settle({ kind: 'joined' })
    } else if (type === PacketType.PUBLISH) {
      if (job.mode === 'viewers') {
        const p = readPublish(flags, body).payload
        if (p.length >= 8) histogram.recordValue(Math.max(1, Math.round((performance.timeOrigin + performance.now() - p.readDoubleLE(0)) * 1000)))
      } else if (++got === job.expect) settle({ kind: 'joined' })
    }
  }
  const reader = new PacketReader(onPacket)
  let send = (b: Buffer): void => { s.write(b) }
  const guarded = (f: (d: Buffer) => void) => (d: Buffer): void => { try { f(d) } catch { settle({ kind: 'error' }) } }
  if (overWebSocket) {
    const ws = new WebSocketClient((b) => s.write(b), () => send(hello), (d) => reader.push(d))
    send = (b) => ws.write(b)
    let head: Buffer | undefined = Buffer.alloc(0)
    s.on('connect', () => { made = true; s.write(upgrade) })
    s.on('data', guarded((d) => {
      if (head === undefined) { ws.push(d); return }
      head = Buffer.concat([head, d])
      if (head.indexOf('\r\n\r\n') < 0) return
      const text = head.toString('latin1', 0, head.indexOf('\r\n\r\n'))
      answered = true
      if (text.startsWith('HTTP/1.1 503')) {
        stats.refused503++
        const after = Number(/\r\nretry-after:\s*(\d+)/i.exec(text)?.[1] ?? NaN)
        settle({ kind: 'refused', floorMs: Number.isFinite(after) ? after * 1000 : BACKOFF.refusedMinMs })
        return
      }
      const all = head
      head = undefined
      ws.push(all)
    }))
  } else {
    s.on('connect', () => { made = true; send(hello) })
    s.on('data', guarded((d) => reader.push(d)))
  }
  // Made, then closed or reset before any answer: shed at accept, a refusal without Retry-After (as the client library).
  const failed = (): void => {
    if (made && !answered && !settled) { stats.shed++; settle({ kind: 'refused', floorMs: BACKOFF.refusedMinMs }) } else settle({ kind: 'error' })
  }
  s.on('error', failed)
  s.on('close', () => {
    stats.open--
    if (inside) stats.dropped++
    failed()
    if (held.length > 0 && stats.open < job.maxOpen) attempt(held.shift() as Client)
    stats.held = held.length
  })
}

function outcome (c: Client, o: Outcome): void {
  if (o.kind === 'joined') {
    stats.joined++
    stats.lastJoinAt = Date.now()
    if (c.refused) { stats.refusedThenJoined++; stats.lastRefusedJoinAt = Date.now() }
    if (job.mode !== 'viewers') histogram.recordValue(Math.max(1, Math.round((performance.now() - c.arrivedAt) * 1000)))
    else if (stats.joined === job.count) parentPort?.postMessage({ cmd: 'ready' })
    c.onJoined?.()
    return
  }
  if (o.kind === 'error') stats.errors++
  else c.refused = true
  if (!job.retry) { stats.gaveUp++; c.onJoined?.(); return }
  const jitter = Math.floor(Math.random() * Math.min(BACKOFF.capMs, BACKOFF.baseMs * 2 ** Math.min(c.tries, 30)))
  c.tries++
  stats.waiting++
  const floor = o.kind === 'refused' ? o.floorMs : 0
  setTimeout(() => { stats.waiting--; attempt(c) }, floor + jitter)
}

const held: Client[] = []
let nextN = job.first
/** A new client arrives: it connects now, or once a socket is free. */
function arrive (onJoined?: () => void): void {
  stats.arrived++
  const c: Client = { n: nextN++, arrivedAt: performance.now(), tries: 0, refused: false, onJoined }
  if (stats.open < job.maxOpen) attempt(c)
  else {
    held.push(c)
    stats.held = held.length
    if (held.length > stats.maxHeld) stats.maxHeld = held.length
  }
}

let arriving = true
const started = performance.now()
if (job.mode === 'arrivals') {
  let last = started
  const tick = setInterval(() => {
    const now = performance.now()
    stats.maxTimerLagMs = Math.max(stats.maxTimerLagMs, now - last - 5)
    last = now
    const due = Math.floor(Math.min(now - started, job.ms ?? 0) * (job.rate ?? 0) / 1000)
    while (arriving && stats.arrived < due) arrive()
    if (now - started >= (job.ms ?? 0)) { arriving = false; clearInterval(tick) }
  }, 5)
} else if (job.mode === 'closed') {
  const next = (): void => {
    if (arriving && performance.now() - started < (job.ms ?? 0)) arrive(next)
    else arriving = false
  }
  for (let k = 0; k < (job.concurrency ?? 100); k++) arrive(next)
} else {
  // batch, viewers: `count` clients, at most `concurrency` (viewers: 200) connecting at once, the next when one is in.
  let left = job.count ?? 0
  const next = (): void => {
    if (left > 0) { left--; arrive(next) } else arriving = false
  }
  for (let k = 0; k < Math.min(job.count ?? 0, job.concurrency ?? 200); k++) next()
  if (left === 0) arriving = false
}

const busy = (): boolean => arriving || stats.waiting > 0 || held.length > 0 || (job.mode !== 'viewers' && stats.arrived > stats.joined + stats.gaveUp)
let finished = false
setInterval(() => {
  parentPort?.postMessage({ cmd: 'progress', stats })
  if (!finished && job.mode !== 'viewers' && !busy()) {
    finished = true
    parentPort?.postMessage({ cmd: 'done', stats })
  }
}, 250).unref()
setInterval(() => {}, 1 << 30) // keeps the worker alive while it waits

parentPort?.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'reset') histogram = newHistogram()
  else if (m.cmd === 'stop') arriving = false
  else if (m.cmd === 'report') parentPort?.postMessage({ cmd: 'report', stats, histogram: hdr.encodeIntoCompressedBase64(histogram) })
})
