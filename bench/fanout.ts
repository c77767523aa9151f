/**
 * Fan-out: one publisher, N viewers on one topic, against Tribune and Mosquitto in the same run, alternating.
 *  - saturation: the publisher sends 64-byte messages as fast as the viewers receive them for `seconds` (at most a
 *    window ahead of what they report receiving); result:
 *    deliveries per second (messages received by all viewers / seconds);
 *  - fixed rate: the publisher sends `rate` messages per second; result: publish-to-viewer latency p50/p99/max,
 *    after one unmeasured second at that rate (a fresh broker's JIT warming up is not its latency).
 * Each is a run of its own, on a freshly started broker.
 * Viewers are raw MQTT clients in worker threads (bench/lib/load-worker.ts); each broker runs as its own process.
 *
 * Usage: npm run -s bench:fanout -- [--viewers 1000] [--qos 0] [--seconds 5] [--rate N (default: half of the first broker's saturation rate, Mosquitto's by default)]
 *        [--transport ws|tcp] [--brokers tribune,mosquitto] [--metrics on|off (Tribune's --metrics)] [--json]
 */
import { connect as tcpConnect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { startBrokerProcess, type BrokerKind } from './lib/brokers.js'
import { startLoad, type Load } from './lib/load.js'
import { countFlag } from './lib/args.js'
const TOPIC = 'bench/fanout'
/**
 * Deliveries the publisher may be ahead of the viewers at saturation, all viewers together: it sends message n only
 * once the viewers have received (n - window) messages each on average, so saturation measures what reaches the
 * viewers, not what the broker can queue (200 messages ahead at 1,000 viewers, 20 at 10,000).
 */
const WINDOW_DELIVERIES = 200_000

export interface FanoutOptions {
  broker: BrokerKind
  viewers: number
  qos: 0 | 1
  seconds: number
  /** Messages per second for the latency run; 0 skips it. */
  rate: number
  transport: 'ws' | 'tcp'
  workers?: number
  /** Options for Tribune's node process (e.g. `--cpu-prof`). */
  nodeArgs?: string[]
  /** More options for `tribune broker` (e.g. `--metrics off`); ignored for Mosquitto. */
  brokerArgs?: string[]
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
  /** Broker CPU time per delivery during the saturation run, µs (null when not run). */
  cpuUsPerDelivery: number | null
}

/** Runs one fan-out measurement against one broker (started and stopped here): saturation when `rate` is 0, else latency at `rate`. */
export async function fanout (opts: FanoutOptions): Promise<FanoutResult> {
  const broker = await startBrokerProcess(opts.broker, opts.nodeArgs, { brokerArgs: opts.brokerArgs })
  let load: Load | undefined
  try {
    const url = opts.transport === 'ws' ? broker.wsUrl : broker.tcpUrl
    load = startLoad({ url, topics: [TOPIC], qos: opts.qos, mode: 'fanout' }, opts.viewers, opts.workers ?? 2)
    await load.done
    const rssBytes = broker.rss()
    const pub = await publisher(broker.tcpUrl)

    // Saturation (only when no rate is given: a backlog left by it would spoil the latency run).
    let sent = 0
    let delivered = 0
    let cpuUsPerDelivery: number | null = null
    if (opts.rate === 0) {
      // A second of the same first, not measured (a fresh broker's JIT warming up), as before the latency run.
      await pub.blast(opts.qos, 1000, () => load?.received() ?? 0, opts.viewers)
      await load.settle(2000)
      load.reset()
      const cpu = broker.cpuMs()
      sent = await pub.blast(opts.qos, opts.seconds * 1000, () => load?.received() ?? 0, opts.viewers)
      delivered = (await load.report()).received
      cpuUsPerDelivery = (broker.cpuMs() - cpu) * 1000 / Math.max(1, delivered)
      await load.settle()
    }

    // Latency at a fixed rate.
    let p50: number | null = null
    let p99: number | null = null
    let max: number | null = null
    let share: number | null = null
    if (opts.rate > 0) {
      // A second at the same rate first, not measured: both brokers start fresh, and a JIT warming up is not latency.
      await pub.paced(opts.qos, opts.rate, 1000)
      await load.settle(2000)
      load.reset()
      const count = await pub.paced(opts.qos, opts.rate, opts.seconds * 1000)
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const report = await load.report()
      p50 = report.histogram.getValueAtPercentile(50) / 1000
      p99 = report.histogram.getValueAtPercentile(99) / 1000
      max = report.histogram.maxValue / 1000
      share = report.received / (count * opts.viewers)
    }
    pub.end()
    return {
      broker: opts.broker, viewers: opts.viewers, qos: opts.qos, transport: opts.transport, published: sent,
      deliveriesPerSecond: delivered / opts.seconds, rate: opts.rate, p50Ms: p50, p99Ms: p99, maxMs: max, deliveredShare: share, rssBytes, cpuUsPerDelivery
    }
  } finally {
    await load?.stop()
    await broker.stop()
  }
}

/** A raw publisher over TCP: `blast` sends as fast as the socket drains; `paced` at a fixed rate. */
async function publisher (url: string): Promise<{ blast: (qos: 0 | 1, ms: number, delivered: () => number, viewers: number) => Promise<number>, paced: (qos: 0 | 1, rate: number, ms: number) => Promise<number>, end: () => void }> {
  const u = new URL(url)
  const socket: Socket = tcpConnect({ host: u.hostname, port: Number(u.port), noDelay: true })
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  let acked = 0
  parser.on('packet', (p) => { if (p.cmd === 'puback') acked++ })
  socket.on('data', (d) => parser.parse(d))
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `bench-pub-${Date.now()}`, keepalive: 600 }))
  await new Promise((resolve) => setTimeout(resolve, 300))
  let id = 0
  const packet = (qos: 0 | 1): Buffer => {
    const payload = Buffer.alloc(64)
    payload.writeDoubleLE(performance.timeOrigin + performance.now(), 0)
    id = id % 65535 + 1
    return mqttPacket.generate({ cmd: 'publish', topic: TOPIC, payload, qos, messageId: qos > 0 ? id : undefined, dup: false, retain: false })
  }
  return {
    blast: async (qos, ms, delivered, viewers) => {
      const end = Date.now() + ms
      const window = Math.max(10, Math.floor(WINDOW_DELIVERIES / viewers))
      let sent = 0
      acked = 0
      while (Date.now() < end) {
        // At most `window` messages ahead of the average viewer; QoS 1: at most 100 unacknowledged, as a real
        // publisher's in-flight window.
        if (sent - delivered() / viewers >= window || (qos === 1 && sent - acked >= 100)) {
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
    end: () => { socket.destroy() }
  }
}

function arg (args: string[], name: string, fallback: string, allowed?: string[]): string {
  const i = args.indexOf(`--${name}`)
  const value = i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback
  for (const v of value.split(',')) {
    if (allowed !== undefined && !allowed.includes(v)) throw new Error(`--${name}: ${v} is not one of ${allowed.join(', ')}`)
  }
  return value
}

/** The command line: each broker in turn, then the ratio Tribune / Mosquitto. */
export async function main (args: string[]): Promise<void> {
  if (args.includes('--help')) {
    console.log('npm run -s bench:fanout -- [--viewers 1000] [--qos 0|1] [--seconds 5] [--rate N (default: half of the first broker\'s saturation rate)] [--transport ws|tcp] [--brokers mosquitto,tribune] [--metrics on|off] [--json]')
    return
  }
  const known = ['viewers', 'qos', 'seconds', 'rate', 'transport', 'brokers', 'metrics', 'json']
  const unknown = args.filter((a) => a.startsWith('--') && !known.includes(a.slice(2)))
  if (unknown.length > 0) throw new Error(`unknown option ${unknown.join(', ')} (known: ${known.map((k) => `--${k}`).join(', ')})`)
  const viewers = countFlag(args, 'viewers', 1000)
  const qos = Number(arg(args, 'qos', '0', ['0', '1'])) as 0 | 1
  const seconds = countFlag(args, 'seconds', 5)
  const transport = arg(args, 'transport', 'ws', ['ws', 'tcp']) as 'ws' | 'tcp'
  const brokers = arg(args, 'brokers', 'mosquitto,tribune', ['mosquitto', 'tribune', 'tribune-cluster-2', 'tribune-cluster-3']).split(',') as BrokerKind[]
  const brokerArgs = ['--metrics', arg(args, 'metrics', 'on', ['on', 'off'])]
  let rate = args.includes('--rate') ? countFlag(args, 'rate', 0) : 0
  const results: FanoutResult[] = []
  for (const broker of brokers) {
    const first = await fanout({ broker, viewers, qos, seconds, rate: 0, transport, brokerArgs })
    if (rate === 0) rate = Math.max(1, Math.floor(first.deliveriesPerSecond / viewers / 2))
    const paced = await fanout({ broker, viewers, qos, seconds, rate, transport, brokerArgs })
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
