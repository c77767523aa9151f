/**
 * Fan-out: one publisher, N viewers on one topic, against Tribune and Mosquitto in the same run, alternating.
 *  - saturation: the publisher sends 64-byte messages as fast as the broker takes them for `seconds`; result:
 *    deliveries per second (messages received by all viewers / seconds);
 *  - fixed rate: the publisher sends `rate` messages per second; result: publish-to-viewer latency p50/p99/max.
 * Each is a run of its own, on a freshly started broker.
 * Viewers are raw MQTT clients in worker threads (bench/lib/load-worker.ts); each broker runs as its own process.
 *
 * Usage: npm run bench:fanout -- [--viewers 1000] [--qos 0] [--seconds 5] [--rate 0 (0: half of Mosquitto's)]
 *        [--transport ws|tcp] [--brokers tribune,mosquitto] [--json]
 */
import { Worker } from 'node:worker_threads'
import { connect as tcpConnect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import mqttPacket from 'mqtt-packet'
import * as hdr from 'hdr-histogram-js'
import { startBrokerProcess, type BrokerKind } from './lib/brokers.js'

const WORKER = fileURLToPath(new URL('./lib/load-worker.js', import.meta.url))
const TOPIC = 'bench/fanout'
/** Messages the publisher may be ahead of the sentinel viewer at saturation. */
const WINDOW = 200

export interface FanoutOptions {
  broker: BrokerKind
  viewers: number
  qos: 0 | 1
  seconds: number
  /** Messages per second for the latency run; 0 skips it. */
  rate: number
  transport: 'ws' | 'tcp'
  workers?: number
}

export interface FanoutResult {
  broker: string
  viewers: number
  qos: number
  transport: string
  published: number
  deliveriesPerSecond: number
  /** Latency at `rate`, ms (null when not run). */
  rate: number
  p50Ms: number | null
  p99Ms: number | null
  maxMs: number | null
  /** Share of the messages sent at `rate` that every viewer received. */
  deliveredShare: number | null
  rssBytes: number
}

interface Report { received: number, histogram: string }

/** Runs one fan-out measurement against one broker (started and stopped here): saturation when `rate` is 0, else latency at `rate`. */
export async function fanout (opts: FanoutOptions): Promise<FanoutResult> {
  const broker = await startBrokerProcess(opts.broker)
  const workers: Worker[] = []
  try {
    const n = opts.workers ?? 2
    const url = opts.transport === 'ws' ? broker.wsUrl : broker.tcpUrl
    const ready: Array<Promise<void>> = []
    for (let w = 0; w < n; w++) {
      const count = Math.floor(opts.viewers / n) + (w < opts.viewers % n ? 1 : 0)
      const worker = new Worker(WORKER, { workerData: { url, topic: TOPIC, qos: opts.qos, count, first: w * 1_000_000 } })
      workers.push(worker)
      ready.push(new Promise((resolve, reject) => {
        worker.on('message', (m: { cmd: string, message?: string }) => {
          if (m.cmd === 'ready') resolve()
          if (m.cmd === 'error') reject(new Error(`viewer: ${m.message ?? ''}`))
        })
        worker.once('error', reject)
      }))
    }
    await withTimeout(Promise.all(ready), 120_000, `${opts.viewers} viewers connecting to ${opts.broker}`)
    const rssBytes = broker.rss()
    const pub = await publisher(url.startsWith('ws') ? broker.tcpUrl : broker.tcpUrl)

    // Saturation (only when no rate is given: a backlog left by it would spoil the latency run).
    let sent = 0
    let delivered = 0
    if (opts.rate === 0) {
      await all(workers, 'reset')
      sent = await pub.blast(opts.qos, opts.seconds * 1000)
      delivered = (await all(workers, 'report')).reduce((a, r) => a + r.received, 0)
      await settle(workers)
    }

    // Latency at a fixed rate.
    let p50: number | null = null
    let p99: number | null = null
    let max: number | null = null
    let share: number | null = null
    if (opts.rate > 0) {
      await all(workers, 'reset')
      const count = await pub.paced(opts.qos, opts.rate, opts.seconds * 1000)
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const reports = await all(workers, 'report')
      const merged = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 })
      for (const r of reports) merged.add(hdr.decodeFromCompressedBase64(r.histogram))
      p50 = merged.getValueAtPercentile(50) / 1000
      p99 = merged.getValueAtPercentile(99) / 1000
      max = merged.maxValue / 1000
      share = reports.reduce((a, r) => a + r.received, 0) / (count * opts.viewers)
    }
    pub.end()
    return {
      broker: opts.broker, viewers: opts.viewers, qos: opts.qos, transport: opts.transport, published: sent,
      deliveriesPerSecond: delivered / opts.seconds, rate: opts.rate, p50Ms: p50, p99Ms: p99, maxMs: max, deliveredShare: share, rssBytes
    }
  } finally {
    for (const w of workers) await w.terminate()
    await broker.stop()
  }
}

/** Waits until the viewers stop receiving (the broker's queues drained) or 10 s pass. */
async function settle (workers: Worker[]): Promise<void> {
  let last = -1
  for (let i = 0; i < 100; i++) {
    const total = (await all(workers, 'report')).reduce((a, r) => a + r.received, 0)
    if (total === last) return
    last = total
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function all (workers: Worker[], cmd: 'reset' | 'report'): Promise<Report[]> {
  if (cmd === 'reset') {
    for (const w of workers) w.postMessage({ cmd })
    return []
  }
  return await Promise.all(workers.map(async (w) => await new Promise<Report>((resolve) => {
    const on = (m: { cmd: string } & Report): void => {
      if (m.cmd !== 'report') return
      w.off('message', on)
      resolve(m)
    }
    w.on('message', on)
    w.postMessage({ cmd })
  })))
}

/** A raw publisher over TCP: `blast` sends as fast as the socket drains; `paced` at a fixed rate. */
async function publisher (url: string): Promise<{ blast: (qos: 0 | 1, ms: number) => Promise<number>, paced: (qos: 0 | 1, rate: number, ms: number) => Promise<number>, end: () => void }> {
  const u = new URL(url)
  const socket: Socket = tcpConnect({ host: u.hostname, port: Number(u.port), noDelay: true })
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  let acked = 0
  parser.on('packet', (p) => { if (p.cmd === 'puback') acked++ })
  socket.on('data', (d) => parser.parse(d))
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `bench-pub-${Date.now()}`, keepalive: 600 }))
  // A sentinel viewer in this thread closes the loop: the publisher stays at most WINDOW messages ahead of it, so
  // saturation measures what the broker delivers, not how much it can queue.
  const sentinel: Socket = tcpConnect({ host: u.hostname, port: Number(u.port), noDelay: true })
  const sentinelParser = mqttPacket.parser({ protocolVersion: 4 })
  let seen = 0
  sentinelParser.on('packet', (p) => {
    if (p.cmd === 'publish') {
      seen++
      if (p.qos === 1 && p.messageId !== undefined) sentinel.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }))
    } else if (p.cmd === 'connack') {
      sentinel.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: TOPIC, qos: 1 }] }))
    }
  })
  sentinel.on('data', (d) => sentinelParser.parse(d))
  sentinel.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `bench-sentinel-${Date.now()}`, keepalive: 600 }))
  await new Promise((resolve) => setTimeout(resolve, 300))
  let id = 0
  const packet = (qos: 0 | 1): Buffer => {
    const payload = Buffer.alloc(64)
    payload.writeDoubleLE(performance.timeOrigin + performance.now(), 0)
    id = id % 65535 + 1
    return mqttPacket.generate({ cmd: 'publish', topic: TOPIC, payload, qos, messageId: qos > 0 ? id : undefined, dup: false, retain: false })
  }
  return {
    blast: async (qos, ms) => {
      const end = Date.now() + ms
      let sent = 0
      acked = 0
      const base = seen
      while (Date.now() < end) {
        // At most WINDOW ahead of the sentinel; QoS 1: at most 100 unacknowledged, as a real publisher's in-flight window.
        if (sent - (seen - base) >= WINDOW || (qos === 1 && sent - acked >= 100)) {
          await new Promise((resolve) => setImmediate(resolve))
          continue
        }
        sent++
        if (!socket.write(packet(qos))) await new Promise((resolve) => socket.once('drain', resolve))
        if (sent % 50 === 0) await new Promise((resolve) => setImmediate(resolve))
      }
      return sent
    },
    paced: async (qos, rate, ms) => {
      const start = performance.now()
      let sent = 0
      while (performance.now() - start < ms) {
        const due = Math.floor((performance.now() - start) * rate / 1000)
        while (sent < due) {
          sent++
          socket.write(packet(qos))
        }
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
      return sent
    },
    end: () => {
      socket.destroy()
      sentinel.destroy()
    }
  }
}

async function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

function arg (args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback
}

/** The command line: each broker in turn, then the ratio Tribune / Mosquitto. */
export async function main (args: string[]): Promise<void> {
  const viewers = Number(arg(args, 'viewers', '1000'))
  const qos = Number(arg(args, 'qos', '0')) as 0 | 1
  const seconds = Number(arg(args, 'seconds', '5'))
  const transport = arg(args, 'transport', 'ws') as 'ws' | 'tcp'
  const brokers = arg(args, 'brokers', 'mosquitto,tribune').split(',') as BrokerKind[]
  let rate = Number(arg(args, 'rate', '0'))
  const results: FanoutResult[] = []
  for (const broker of brokers) {
    const first = await fanout({ broker, viewers, qos, seconds, rate: 0, transport })
    if (rate === 0) rate = Math.max(1, Math.floor(first.deliveriesPerSecond / viewers / 2))
    const paced = await fanout({ broker, viewers, qos, seconds, rate, transport })
    results.push({ ...first, rate, p50Ms: paced.p50Ms, p99Ms: paced.p99Ms, maxMs: paced.maxMs, deliveredShare: paced.deliveredShare })
  }
  if (args.includes('--json')) {
    console.log(JSON.stringify(results, null, 2))
    return
  }
  console.log(`fan-out: ${viewers} viewers over ${transport}, QoS ${qos}, 64-byte payloads, ${seconds} s per run`)
  for (const r of results) {
    console.log(`  ${r.broker.padEnd(20)} ${Math.round(r.deliveriesPerSecond).toString().padStart(9)} deliveries/s   at ${r.rate} msg/s: p50 ${r.p50Ms?.toFixed(1)} ms, p99 ${r.p99Ms?.toFixed(1)} ms, max ${r.maxMs?.toFixed(1)} ms, delivered ${((r.deliveredShare ?? 0) * 100).toFixed(1)}%   rss ${(r.rssBytes / 1048576).toFixed(0)} MiB`)
  }
  const m = results.find((r) => r.broker === 'mosquitto')
  const t = results.find((r) => r.broker === 'tribune')
  if (m !== undefined && t !== undefined) console.log(`  tribune / mosquitto deliveries: ${(t.deliveriesPerSecond / m.deliveriesPerSecond).toFixed(2)}`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(`bench:fanout: ${err.message}`)
    process.exitCode = 1
  })
}
