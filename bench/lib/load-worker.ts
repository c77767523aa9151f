/**
 * A load-generator worker thread: opens `count` viewers (raw MQTT 3.1.1 over WebSocket or TCP, no client library:
 * CONNECT and SUBSCRIBE made by mqtt-packet, what arrives read by ./wire.ts), each subscribing to `topics` in one
 * SUBSCRIBE, acknowledging QoS 1 (PUBACK, MQTT 3.1.1 section 3.4).
 *  - mode `fanout`: at most 200 viewers connecting at once (the next opens at a SUBACK); {cmd:'ready'} once every
 *    SUBACK is in. Each PUBLISH records publish-to-viewer latency (µs) from the first 8 bytes of its payload (a
 *    float64 send time in ms, performance.timeOrigin + performance.now()) into an hdr histogram.
 *  - mode `join`: at most `concurrency` joins at once, each from its connect until its `expect`-th PUBLISH (its join
 *    time, µs, goes into the histogram); {cmd:'joined', lastMs} once every viewer has joined, lastMs after the
 *    worker's start. Viewers stay connected.
 * Every 20 ms (fan-out) it posts {cmd:'progress', received}. Messages from the parent: {cmd:'reset'} zeroes the counters; {cmd:'report'} answers {cmd:'report', received,
 * connected, histogram (compressed base64)}. {cmd:'error', message} reports the first connection error.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { connect as tcpConnect } from 'node:net'
import mqttPacket from 'mqtt-packet'
import * as hdr from 'hdr-histogram-js'
import { PacketReader, PacketType, WebSocketClient, puback, readPublish } from './wire.js'

export interface LoadJob {
  url: string
  topics: string[]
  qos: 0 | 1
  count: number
  /** The first viewer's number (client ids are `bench-<n>`). */
  first: number
  mode: 'fanout' | 'join'
  /** join: PUBLISH packets that make a join complete. */
  expect?: number
  /** join: joins in progress at once at most. */
  concurrency?: number
}

const job = workerData as LoadJob
const now = (): number => performance.timeOrigin + performance.now()
const newHistogram = (): hdr.Histogram => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 })
let received = 0
let histogram = newHistogram()
let connected = 0
let subscribed = 0
let joined = 0
let errored = false
const started = now()

const url = new URL(job.url)
const overWebSocket = url.protocol.startsWith('ws')
const port = Number(url.port !== '' ? url.port : overWebSocket ? 80 : 1883)
const upgrade = overWebSocket ? WebSocketClient.request(url) : Buffer.alloc(0)
// Every viewer subscribes to the same filters: one SUBSCRIBE serves them all (MQTT 3.1.1 section 3.8).
const subscribe = mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: job.topics.map((topic) => ({ topic, qos: job.qos })) })

function open (i: number, onJoined?: () => void): void {
  const opened = now()
  let mine = 0
  let send: (b: Buffer) => void
  const onPacket = (type: number, flags: number, body: Buffer): void => {
    if (type === PacketType.PUBLISH) {
      received++
      mine++
      if (job.mode === 'fanout' || (flags & 6) !== 0) {
        const p = readPublish(flags, body)
        if (job.mode === 'fanout' && p.payload.length >= 8) histogram.recordValue(Math.max(1, Math.round((now() - p.payload.readDoubleLE(0)) * 1000)))
        if (p.qos === 1) send(puback(p.messageId))
      }
      if (job.mode === 'join' && mine === job.expect) {
        histogram.recordValue(Math.max(1, Math.round((now() - opened) * 1000)))
        onJoined?.()
      }
    } else if (type === PacketType.CONNACK) {
      if (body[1] !== 0) fail(`CONNACK return code ${body[1]}`)
      connected++
      send(subscribe)
    } else if (type === PacketType.SUBACK) {
      subscribed++
      if (job.mode === 'fanout' && subscribed === job.count) parentPort?.postMessage({ cmd: 'ready' })
      if (job.mode === 'fanout' && next < job.count) open(next++) // the next viewer in, once this one is subscribed
    }
  }
  const reader = new PacketReader(onPacket)
  const hello = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `bench-${job.first + i}`, keepalive: 600 })
  const s = tcpConnect({ host: url.hostname, port, noDelay: true, localAddress: sourceAddress(job.first + i) })
  const guarded = (f: (d: Buffer) => void) => (d: Buffer): void => {
    try { f(d) } catch (err) {
      fail((err as Error).message)
      s.destroy()
    }
  }
  if (overWebSocket) {
    const ws = new WebSocketClient((b) => s.write(b), () => send(hello), (d) => reader.push(d))
    send = (b) => ws.write(b)
    s.on('connect', () => s.write(upgrade))
    s.on('data', guarded((d) => ws.push(d)))
  } else {
    send = (b) => s.write(b)
    s.on('connect', () => send(hello))
    s.on('data', guarded((d) => reader.push(d)))
  }
  s.on('error', (err) => fail(err.message))
}

/**
 * Connections to a loopback broker come from 127.0.0.2 to 127.0.0.51 in turn: one source address has about 28,000
 * ephemeral ports, and the connections of the runs before stay in TIME_WAIT for a minute.
 */
const loopback = url.hostname === '127.0.0.1'
function sourceAddress (n: number): string | undefined {
  return loopback ? `127.0.0.${2 + (n % 50)}` : undefined
}

function fail (message: string): void {
  if (errored) return
  errored = true
  parentPort?.postMessage({ cmd: 'error', message })
}

let next = 0
/** Fan-out mode: viewers connecting at once at most, per worker. */
const FANOUT_CONNECTING = 200
if (job.mode === 'fanout') {
  // At most FANOUT_CONNECTING viewers connecting at once (each SUBACK lets the next one in), so connecting does not
  // become its own benchmark: a fresh broker given thousands of CONNECTs at once leaves the last ones waiting past its
  // CONNECT timeout, and closes them.
  for (let k = 0; k < FANOUT_CONNECTING && next < job.count; k++) open(next++)
} else {
  const more = (): void => {
    joined++
    if (joined === job.count) parentPort?.postMessage({ cmd: 'joined', lastMs: now() - started })
    else if (next < job.count) open(next++, more)
  }
  for (let k = 0; k < (job.concurrency ?? 100) && next < job.count; k++) open(next++, more)
}

// Progress for the publisher's window (fan-out): the count received since the last reset, every 20 ms.
if (job.mode === 'fanout') setInterval(() => parentPort?.postMessage({ cmd: 'progress', received }), 20).unref()

parentPort?.on('message', (msg: { cmd: string }) => {
  if (msg.cmd === 'reset') {
    received = 0
    histogram = newHistogram()
  } else if (msg.cmd === 'report') {
    parentPort?.postMessage({ cmd: 'report', received, connected, joined, histogram: hdr.encodeIntoCompressedBase64(histogram) })
  }
})
