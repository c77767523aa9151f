/**
 * A load-generator worker thread: opens `count` viewers (raw MQTT 3.1.1 over `ws` or TCP, mqtt-packet), subscribes
 * each to one topic, acknowledges QoS 1 (PUBACK), and records publish-to-viewer latency (µs) from the first 8 bytes of each
 * payload (a float64 send time in ms, performance.timeOrigin + performance.now()) into an hdr histogram.
 * Messages from the parent: {cmd:'reset'} zeroes the counters; {cmd:'report'} answers {received, histogram}.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { connect as tcpConnect } from 'node:net'
import { WebSocket } from 'ws'
import mqttPacket from 'mqtt-packet'
import * as hdr from 'hdr-histogram-js'

interface Job { url: string, topic: string, qos: 0 | 1, count: number, first: number }

const job = workerData as Job
const now = (): number => performance.timeOrigin + performance.now()
let received = 0
let histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 })
let connected = 0
let subscribed = 0

function open (i: number): void {
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  let send: (b: Buffer) => void
  const onPacket = (packet: mqttPacket.Packet): void => {
    if (packet.cmd === 'publish') {
      received++
      const p = packet.payload as Buffer
      if (p.length >= 8) histogram.recordValue(Math.max(1, Math.round((now() - p.readDoubleLE(0)) * 1000))) // µs
      if (packet.qos === 1 && packet.messageId !== undefined) send(mqttPacket.generate({ cmd: 'puback', messageId: packet.messageId }))
    } else if (packet.cmd === 'connack') {
      connected++
      send(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: job.topic, qos: job.qos }] }))
    } else if (packet.cmd === 'suback') {
      subscribed++
      if (subscribed === job.count) parentPort?.postMessage({ cmd: 'ready' })
    }
  }
  parser.on('packet', onPacket)
  const hello = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `bench-${job.first + i}`, keepalive: 600 })
  if (job.url.startsWith('ws')) {
    const ws = new WebSocket(job.url, 'mqtt', { perMessageDeflate: false })
    send = (b) => ws.send(b)
    ws.on('open', () => send(hello))
    ws.on('message', (d: Buffer) => parser.parse(d))
    ws.on('error', (err) => parentPort?.postMessage({ cmd: 'error', message: err.message }))
  } else {
    const u = new URL(job.url)
    const s = tcpConnect({ host: u.hostname, port: Number(u.port), noDelay: true })
    send = (b) => s.write(b)
    s.on('connect', () => send(hello))
    s.on('data', (d) => parser.parse(d))
    s.on('error', (err) => parentPort?.postMessage({ cmd: 'error', message: err.message }))
  }
}

// Open in small batches, so connecting does not become its own benchmark.
let next = 0
const batch = (): void => {
  for (let k = 0; k < 100 && next < job.count; k++) open(next++)
  if (next < job.count) setTimeout(batch, 5)
}
batch()

parentPort?.on('message', (msg: { cmd: string }) => {
  if (msg.cmd === 'reset') {
    received = 0
    histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 })
  } else if (msg.cmd === 'report') {
    parentPort?.postMessage({ cmd: 'report', received, connected, histogram: hdr.encodeIntoCompressedBase64(histogram) })
  } else if (msg.cmd === 'exit') {
    process.exit(0)
  }
})
