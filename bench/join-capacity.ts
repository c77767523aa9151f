/**
 * What admission control's defaults come from: one Tribune node with an auth section (bench/lib/secure-node.ts), a
 * feed with `history` messages and a retained state, viewers joining over WebSocket (and TCP) with `$replay/all`.
 *  - sustained joins: `concurrency` joins in progress at once, each client leaving once it has its history and state
 *    and the next arriving (closed loop), for `seconds` after an unmeasured `warm` second; joins/s, broker CPU
 *    (/proc) and generator CPU per join, join time p50/p99, the node's peak event-loop lag. The node runs with
 *    `--max-conn-rate 0 --max-connections 0 --overload-lag-ms 60000`: nothing refused, the lag still sampled;
 *  - bursts: N joins arriving at once on that node (N = 250 ... 4,000) while 1,000 WebSocket viewers get a message
 *    every 100 ms: the node's peak lag (its own 50 ms sample, read from /healthz every 20 ms), the viewers' p99 in the
 *    2 s before and during the burst, and the time until all N have joined;
 *  - refusal cost: a node with `--max-conn-rate 1 --max-conn-burst 2` offered a batch of connections, 200 at once,
 *    each tried once: broker CPU per refusal (user and system), over TCP (CONNACK 3) and WebSocket (503), next to
 *    the join's;
 *  - fan-out turns: a message a second to 5,000 and 10,000 WebSocket viewers of a fresh node: the node's lag sample
 *    while it delivers one (what overload protection must not mistake for overload), and the viewers' p50/p99.
 *
 * Usage: npm run bench:capacity -- [--seconds 10] [--refusals 5000] [--json]
 */
import { startSecureNode, JOIN_TOPICS, type SecureNode } from './lib/secure-node.js'
import { startStorm } from './lib/storm-load.js'
import { watchNode, peaks, cpuSplitMs, getHealth } from './lib/node-watch.js'
import { countFlag } from './lib/args.js'
import { startAudience, type Audience } from './lib/audience.js'
import { admissionSection } from './lib/report.js'
import { capacityEntries } from './lib/admission-tables.js'

export interface SustainedJoins {
  transport: 'ws' | 'tcp'
  auth: 'anonymous' | 'apikey'
  joinsPerSecond: number
  cpuUsPerJoin: number
  generatorCpuUsPerJoin: number
  /** Broker CPU in cores (CPU seconds per second) during the window. */
  brokerCores: number
  p50JoinMs: number
  p99JoinMs: number
  peakLagMs: number
}

export interface JoinBurst {
  joins: number
  peakLagMs: number
  peakRttMs: number
  allJoinedMs: number
  cpuUsPerJoin: number
  /** The viewers' latency in the 2 s before, and from the burst until all joined. */
  viewersP99BeforeMs: number
  viewersP99DuringMs: number
}

export interface RefusalCost {
  transport: 'ws' | 'tcp'
  /** Closed at accept without an answer (beyond --max-refusal-rate) rather than answered. */
  shed?: boolean
  offered: number
  refused: number
  cpuUsPerRefusal: number
  /** Of which in user space (the node's JavaScript and libuv) and in the kernel (on loopback, some of the client's side too). */
  userUsPerRefusal: number
  systemUsPerRefusal: number
  generatorCpuUsPerAttempt: number
}

/** One message to N viewers: the node's lag sample while it delivers (one turn of its loop), and the viewers' latency. */
export interface FanoutTurn { viewers: number, messages: number, medianLagMs: number, peakLagMs: number, p50Ms: number, p99Ms: number }

export interface CapacityResult {
  history: number
  concurrency: number
  seconds: number
  sustained: SustainedJoins[]
  bursts: JoinBurst[]
  refusals: RefusalCost[]
  fanout: FanoutTurn[]
}

export interface CapacityOptions {
  history?: number
  /** Joins in progress at once in the sustained runs (default 200). */
  concurrency?: number
  seconds?: number
  /** Burst sizes (default 250, 500, 1,000, 2,000, 4,000). */
  bursts?: number[]
  /** Connections offered per refusal batch (default 5,000). */
  refusals?: number
  /** Viewers receiving 10 messages a second during the bursts (default 1,000). */
  viewers?: number
  /** Viewers of the fan-out turns (default 5,000 and 10,000; none: []). */
  fanoutViewers?: number[]
  log?: (line: string) => void
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const cpuUs = (): number => { const u = process.cpuUsage(); return u.user + u.system }

/** Waits until the node uses less than `share` of a core (5%) over 200 ms, at most 10 s. */
async function settle (node: SecureNode, share = 0.05): Promise<void> {
  const deadline = Date.now() + 10_000
  let last = node.broker.cpuMs()
  while (Date.now() < deadline) {
    await sleep(200)
    const now = node.broker.cpuMs()
    if (now - last < 200 * share) return
    last = now
  }
}

const urlOf = (node: SecureNode, transport: 'ws' | 'tcp'): string => transport === 'ws' ? node.broker.wsUrl : node.broker.tcpUrl
const credentials = (node: SecureNode, auth: 'anonymous' | 'apikey'): { username?: string, password?: string } => auth === 'apikey' ? { username: 'apikey', password: node.viewerKey } : {}

async function sustained (node: SecureNode, transport: 'ws' | 'tcp', auth: 'anonymous' | 'apikey', concurrency: number, seconds: number): Promise<SustainedJoins> {
  await settle(node)
  const warmMs = 1000
  const load = startStorm({ url: urlOf(node, transport), mode: 'closed', topics: JOIN_TOPICS, expect: node.expect, concurrency, ms: warmMs + seconds * 1000 + 2000, retry: false, ...credentials(node, auth) })
  try {
    await sleep(warmMs)
    load.reset()
    const watch = watchNode(node.broker, 100)
    const before = await load.report()
    const t0 = performance.now()
    const cpu0 = node.broker.cpuMs()
    const own0 = cpuUs()
    await sleep(seconds * 1000)
    const after = await load.report()
    const elapsed = (performance.now() - t0) / 1000
    const brokerMs = node.broker.cpuMs() - cpu0
    const own = cpuUs() - own0
    await watch.stop()
    const joins = after.stats.joined - before.stats.joined
    if (after.stats.gaveUp > 0) throw new Error(`${after.stats.gaveUp} joins failed (${transport}, ${auth})`)
    return {
      transport, auth, joinsPerSecond: joins / elapsed, cpuUsPerJoin: brokerMs * 1000 / joins, generatorCpuUsPerJoin: own / joins, brokerCores: brokerMs / 1000 / elapsed,
      p50JoinMs: after.histogram.getValueAtPercentile(50) / 1000, p99JoinMs: after.histogram.getValueAtPercentile(99) / 1000, peakLagMs: peaks(watch.samples).lagMs
    }
  } finally {
    load.halt()
    await load.done.catch(() => {})
    await load.stop()
  }
}

async function burst (node: SecureNode, audience: Audience, joins: number): Promise<JoinBurst> {
  await settle(node, 0.15)
  const watch = watchNode(node.broker, 20, 10_000)
  audience.mark()
  await sleep(2000)
  const before = await audience.window()
  audience.mark()
  const cpu0 = node.broker.cpuMs()
  const start = performance.now()
  const load = startStorm({ url: node.broker.wsUrl, mode: 'batch', topics: JOIN_TOPICS, expect: node.expect, count: joins, concurrency: joins, retry: false })
  try {
    await load.done
    const allJoinedMs = performance.now() - start
    const cpuUsPerJoin = (node.broker.cpuMs() - cpu0) * 1000 / joins
    await sleep(300)
    const during = await audience.window()
    await watch.stop()
    const stats = load.stats()
    if (stats.gaveUp > 0) throw new Error(`burst of ${joins}: ${stats.gaveUp} joins failed`)
    const p = peaks(watch.samples)
    return { joins, peakLagMs: p.lagMs, peakRttMs: p.rttMs, allJoinedMs, cpuUsPerJoin, viewersP99BeforeMs: before.p99Ms, viewersP99DuringMs: during.p99Ms }
  } finally {
    await watch.stop()
    await load.stop()
  }
}

async function refusalBatch (node: SecureNode, transport: 'ws' | 'tcp', offered: number, shed: boolean): Promise<RefusalCost> {
  await settle(node)
  const shedBefore = (await getHealth(node.broker.healthUrl))?.health.admission?.shed ?? 0
  const cpu0 = cpuSplitMs(node.broker.pid)
  const own0 = cpuUs()
  const load = startStorm({ url: urlOf(node, transport), mode: 'batch', topics: JOIN_TOPICS, expect: node.expect, count: offered, concurrency: 200, retry: false })
  try {
    await load.done
    await settle(node) // the refused connections' closes handled
    const { stats } = await load.report()
    const cpu1 = cpuSplitMs(node.broker.pid)
    const shedCount = ((await getHealth(node.broker.healthUrl))?.health.admission?.shed ?? 0) - shedBefore
    const refused = Math.max(1, shed ? shedCount : stats.refusedConnack + stats.refused503)
    const userUs = (cpu1.userMs - cpu0.userMs) * 1000 / refused
    const systemUs = (cpu1.systemMs - cpu0.systemMs) * 1000 / refused
    return { transport, shed, offered, refused, cpuUsPerRefusal: userUs + systemUs, userUsPerRefusal: userUs, systemUsPerRefusal: systemUs, generatorCpuUsPerAttempt: (cpuUs() - own0) / Math.max(1, stats.attempts) }
  } finally {
    await load.stop()
  }
}

/** `messages` messages a second apart to `viewers` WebSocket viewers of a fresh node, its lag read every 20 ms. */
async function fanoutTurn (viewers: number, messages: number): Promise<FanoutTurn> {
  const node = await startSecureNode({ history: 1, admission: 'on', args: MONITOR_ONLY })
  try {
    const audience = await startAudience(node, viewers, 1000, 2)
    try {
      await sleep(1500) // one message unmeasured
      audience.mark()
      const watch = watchNode(node.broker, 20, 10_000)
      await sleep(messages * 1000)
      await watch.stop()
      const w = await audience.window()
      // The largest lag sample of each second: the turn that delivered that second's message.
      const perSecond = new Map<number, number>()
      for (const s of watch.samples) perSecond.set(Math.floor(s.at / 1000), Math.max(perSecond.get(Math.floor(s.at / 1000)) ?? 0, s.health?.admission?.lagMs ?? 0))
      const lags = [...perSecond.values()].sort((a, b) => a - b)
      return { viewers, messages, medianLagMs: lags[Math.floor(lags.length / 2)] ?? 0, peakLagMs: lags[lags.length - 1] ?? 0, p50Ms: w.p50Ms, p99Ms: w.p99Ms }
    } finally {
      await audience.stop()
    }
  } finally {
    await node.stop()
  }
}

/** Nothing refused, the lag still sampled (a threshold no run reaches). */
const MONITOR_ONLY = ['--max-conn-rate', '0', '--max-connections', '0', '--overload-lag-ms', '60000']

/** Runs the sustained joins, the bursts and the refusal batches (see the module comment), one node at a time. */
export async function joinCapacity (opts: CapacityOptions = {}): Promise<CapacityResult> {
  const history = opts.history ?? 20
  const concurrency = opts.concurrency ?? 200
  const seconds = opts.seconds ?? 10
  const log = opts.log ?? (() => {})
  const result: CapacityResult = { history, concurrency, seconds, sustained: [], bursts: [], refusals: [], fanout: [] }
  let node = await startSecureNode({ history, admission: 'on', args: MONITOR_ONLY })
  try {
    for (const [transport, auth] of [['ws', 'anonymous'], ['ws', 'apikey'], ['tcp', 'anonymous']] as const) {
      const s = await sustained(node, transport, auth, concurrency, seconds)
      log(`  sustained joins, ${transport} ${auth}: ${Math.round(s.joinsPerSecond)} joins/s, broker ${Math.round(s.cpuUsPerJoin)} µs/join (${s.brokerCores.toFixed(2)} cores), generator ${Math.round(s.generatorCpuUsPerJoin)} µs/join, peak lag ${s.peakLagMs} ms`)
      result.sustained.push(s)
    }
    const audience = await startAudience(node, opts.viewers ?? 1000)
    try {
      for (const joins of opts.bursts ?? [250, 500, 1000, 2000, 4000]) {
        const b = await burst(node, audience, joins)
        log(`  burst of ${joins} joins: peak lag ${b.peakLagMs} ms (healthz ${Math.round(b.peakRttMs)} ms), all joined in ${Math.round(b.allJoinedMs)} ms, broker ${Math.round(b.cpuUsPerJoin)} µs/join; viewers' p99 ${b.viewersP99BeforeMs.toFixed(1)} ms before, ${b.viewersP99DuringMs.toFixed(1)} during`)
        result.bursts.push(b)
      }
    } finally {
      await audience.stop()
    }
  } finally {
    await node.stop()
  }
  for (const shed of [false, true]) {
    // Burst 2: the start-up probe's and the history publisher's. Answered refusals without a budget; shed: a budget
    // of one answered refusal a second, the rest closed at accept.
    node = await startSecureNode({ history, admission: 'on', args: ['--max-conn-rate', '1', '--max-conn-burst', '2', '--max-refusal-rate', shed ? '1' : '0'] })
    try {
      for (const transport of ['tcp', 'ws'] as const) {
        const r = await refusalBatch(node, transport, opts.refusals ?? 5000, shed)
        log(`  ${shed ? 'shed at accept' : 'refusals'} over ${transport}: ${r.refused} of ${r.offered}, broker ${r.cpuUsPerRefusal.toFixed(1)} µs each (user ${r.userUsPerRefusal.toFixed(1)}, system ${r.systemUsPerRefusal.toFixed(1)}), generator ${Math.round(r.generatorCpuUsPerAttempt)} µs per attempt`)
        result.refusals.push(r)
      }
    } finally {
      await node.stop()
    }
  }
  for (const viewers of opts.fanoutViewers ?? [5000, 10_000]) {
    const f = await fanoutTurn(viewers, 8)
    log(`  one message a second to ${viewers} viewers: lag ${f.medianLagMs} ms (median of the seconds), ${f.peakLagMs} ms peak; viewers' p50/p99 ${f.p50Ms.toFixed(1)}/${f.p99Ms.toFixed(1)} ms`)
    result.fanout.push(f)
  }
  return result
}

export async function main (args: string[]): Promise<void> {
  if (args.includes('--help')) {
    console.log('npm run -s bench:capacity -- [--seconds 10] [--refusals 5000] [--json]')
    return
  }
  const known = ['--seconds', '--refusals', '--json']
  const unknown = args.filter((a) => a.startsWith('--') && !known.includes(a))
  if (unknown.length > 0) throw new Error(`unknown option ${unknown.join(', ')} (known: ${known.join(', ')})`)
  const result = await joinCapacity({ seconds: countFlag(args, 'seconds', 10), refusals: countFlag(args, 'refusals', 5000), log: (l) => { process.stderr.write(`${l}\n`) } })
  console.log(args.includes('--json') ? JSON.stringify(result, null, 2) : admissionSection(capacityEntries(result, { date: new Date().toISOString(), tribune: 'this tree', quick: false })).join('\n'))
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(`bench:capacity: ${err.message}`)
    process.exitCode = 1
  })
}
