/**
 * A connection storm against one Tribune node (its own process, with an auth section: bench/lib/secure-node.ts)
 * that keeps serving its viewers:
 *  1. `viewers` WebSocket viewers (bench/lib/audience.ts) get a message carrying its send time every 100 ms; their
 *     publish-to-viewer latency is measured for `before` seconds;
 *  2. new clients then arrive, open loop, at `factor` times the node's `--max-conn-rate` for `seconds` (from worker
 *     threads, bench/lib/storm-worker.ts): each joins (`$replay/all` of a feed with 20 messages + its state) and
 *     leaves; a refused one retries as the client library does (at least Retry-After, or 1 s after a CONNACK 3, plus
 *     full-jitter backoff random(0, min(30 s, 500 ms * 2^attempt))). The viewers' latency is measured during the
 *     storm and after it, until every client is in (at most `drainCap` seconds);
 *  3. /healthz every 500 ms (bench/lib/node-watch.ts): the node's lag sample, refusals by reason; RSS from /proc.
 * Run against the node with its default limits (or `rate`/`burst`), then, for comparison, the same storm against a
 * node with admission control off (`--max-conn-rate 0 --overload-lag-ms 0 --max-connections 0`), its wall time
 * capped at `offCap` seconds after the storm. Drain: from the storm's end until the last client that had been refused
 * got in (inherent: about (factor - 1) x seconds at the node's rate).
 *
 * Usage: npm run -s bench:storm -- [--rate N] [--burst N] [--factor 10] [--seconds 20] [--before 10] [--viewers 1000]
 *        [--transport ws|tcp] [--drain-cap 300] [--off-cap 60] [--no-off] [--json]
 */
import { ADMISSION_DEFAULTS } from '../broker/src/config.js'
import { startSecureNode, JOIN_TOPICS } from './lib/secure-node.js'
import { startAudience, type LatencyWindow } from './lib/audience.js'
import { startStorm } from './lib/storm-load.js'
import { watchNode, peaks, refusedBetween } from './lib/node-watch.js'
import { countFlag } from './lib/args.js'
import { admissionSection } from './lib/report.js'
import { stormEntry } from './lib/admission-tables.js'

export interface StormOptions {
  viewers: number
  before: number
  seconds: number
  factor: number
  /** The protected node's --max-conn-rate and --max-conn-burst (default: the broker's defaults). */
  rate: number
  burst: number
  transport: 'ws' | 'tcp'
  drainCap: number
  offCap: number
  /** Also the storm against a node with admission control off. */
  off: boolean
  history: number
  log?: (line: string) => void
}

export interface StormRun {
  admission: 'on' | 'off'
  /** New clients a second asked of the generator, and those that arrived (per second of the storm). */
  askedRate: number
  arrivedRate: number
  /** Connections the generator opened per second during the storm (first tries and retries). */
  attemptRate: number
  /** Connections the node counted per second during the storm (taken + refused + shed, /healthz). */
  nodeSeenRate: number
  /** The generator's CPU (this process, all threads) in cores during the storm; its worst timer lateness, ms. */
  generatorCores: number
  generatorTimerLagMs: number
  /** Arrivals held back by the generator's open-file share (most at once). */
  generatorHeld: number
  brokerCores: number
  before: LatencyWindow
  during: LatencyWindow
  after: LatencyWindow
  peakRssBytes: number
  peakLagMs: number
  peakHealthzMs: number
  healthzUnanswered: number
  healthzAnswered: number
  /** Refusals by reason (the node's counts) and as the clients saw them. */
  refused: Record<string, number>
  refusedConnack: number
  refused503: number
  /** Connections made and closed before any answer (shed at accept); absent in runs recorded before shedding. */
  shed?: number
  errors: number
  timeouts: number
  arrived: number
  joined: number
  refusedThenJoined: number
  /** Storm end until the last refused client got in (on), or the last client (off); null when not all got in. */
  drainMs: number | null
  /** Clients not in when the run ended. */
  left: number
  joinP50Ms: number
  joinP99Ms: number
  viewersDropped: number
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const cpuUs = (): number => { const u = process.cpuUsage(); return u.user + u.system }

/** One storm against one node (see the module comment). */
export async function stormRun (opts: StormOptions, admission: 'on' | 'off'): Promise<StormRun> {
  const log = opts.log ?? (() => {})
  const args = admission === 'on' ? ['--max-conn-rate', String(opts.rate), '--max-conn-burst', String(opts.burst)] : []
  const node = await startSecureNode({ history: opts.history, admission, args })
  const watch = watchNode(node.broker, 500)
  let storm: ReturnType<typeof startStorm> | undefined
  try {
    const audience = await startAudience(node, opts.viewers)
    try {
      await sleep(2000) // unmeasured: the viewers just in, the JIT warming up
      audience.mark()
      await sleep(opts.before * 1000)
      const before = await audience.window()
      log(`  storm, admission ${admission}: viewers' p50/p99 before ${before.p50Ms.toFixed(1)}/${before.p99Ms.toFixed(1)} ms`)
      audience.mark()
      const asked = opts.factor * opts.rate
      const t0 = Date.now()
      const cpu0 = node.broker.cpuMs()
      const own0 = cpuUs()
      storm = startStorm({ url: opts.transport === 'ws' ? node.broker.wsUrl : node.broker.tcpUrl, mode: 'arrivals', topics: JOIN_TOPICS, expect: node.expect, rate: asked, ms: opts.seconds * 1000, retry: true })
      await sleep(opts.seconds * 1000)
      const t1 = Date.now()
      const during = await audience.window()
      audience.mark()
      const atEnd = (await storm.report()).stats
      const stormSeconds = (t1 - atEnd.startedAt) / 1000
      const generatorCores = (cpuUs() - own0) / 1e6 / ((t1 - t0) / 1000)
      const brokerCores = (node.broker.cpuMs() - cpu0) / 1000 / ((t1 - t0) / 1000)
      log(`  storm, admission ${admission}: ${atEnd.arrived} arrived (${asked}/s asked), ${atEnd.attempts} attempts, generator ${generatorCores.toFixed(2)} cores, viewers' p99 during ${during.p99Ms.toFixed(1)} ms; waiting for the rest`)
      const cap = (admission === 'on' ? opts.drainCap : opts.offCap) * 1000
      let timer: NodeJS.Timeout | undefined
      await Promise.race([storm.done, new Promise((resolve) => { timer = setTimeout(resolve, cap) })])
      clearTimeout(timer)
      const t2 = Date.now()
      const after = await audience.window()
      const { stats, histogram } = await storm.report()
      await sleep(600)
      const samples = watch.between(t0, Date.now())
      const p = peaks(samples)
      const atStart = watch.between(0, t0)
      const seen = (list: typeof samples): number => {
        const a = [...list].reverse().find((s) => s.health?.admission !== undefined)?.health?.admission
        return a === undefined ? 0 : a.accepted + Object.values(a.refused).reduce((x, y) => x + y, 0) + (a.shed ?? 0)
      }
      const left = stats.arrived - stats.joined
      const lastIn = admission === 'on' ? stats.lastRefusedJoinAt : stats.lastJoinAt
      const run: StormRun = {
        admission,
        askedRate: asked,
        arrivedRate: atEnd.arrived / stormSeconds,
        attemptRate: atEnd.attempts / stormSeconds,
        nodeSeenRate: (seen(watch.between(t0, t1)) - seen(atStart)) / ((t1 - t0) / 1000),
        generatorCores,
        generatorTimerLagMs: stats.maxTimerLagMs,
        generatorHeld: stats.maxHeld,
        brokerCores,
        before,
        during,
        after,
        peakRssBytes: p.rssBytes,
        peakLagMs: p.lagMs,
        peakHealthzMs: p.rttMs,
        healthzUnanswered: p.unanswered,
        healthzAnswered: p.answered,
        refused: refusedBetween(atStart, samples),
        refusedConnack: stats.refusedConnack,
        refused503: stats.refused503,
        shed: stats.shed,
        errors: stats.errors,
        timeouts: stats.timeouts,
        arrived: stats.arrived,
        joined: stats.joined,
        refusedThenJoined: stats.refusedThenJoined,
        drainMs: left === 0 && lastIn > 0 ? Math.max(0, lastIn - t1) : null,
        left,
        joinP50Ms: histogram.getValueAtPercentile(50) / 1000,
        joinP99Ms: histogram.getValueAtPercentile(99) / 1000,
        viewersDropped: audience.dropped()
      }
      log(`  storm, admission ${admission}: ${stats.joined} of ${stats.arrived} in ${left === 0 ? `, drained ${((run.drainMs ?? 0) / 1000).toFixed(1)} s after the storm` : `, ${left} left at the cap (${(t2 - t1) / 1000} s)`}; peak RSS ${(p.rssBytes / 2 ** 20).toFixed(0)} MiB, lag ${p.lagMs} ms, /healthz ${Math.round(p.rttMs)} ms (${p.unanswered} unanswered)`)
      return run
    } finally {
      await audience.stop()
    }
  } finally {
    await storm?.stop()
    await watch.stop()
    await node.stop()
  }
}

/** The storm against the node with its limits, then (unless `opts.off` is false) with admission control off. */
export async function storm (opts: StormOptions): Promise<StormRun[]> {
  const runs = [await stormRun(opts, 'on')]
  if (opts.off) runs.push(await stormRun(opts, 'off'))
  return runs
}

/** The options from the command line (`args`), with the defaults of the module comment. */
export function stormOptions (args: string[]): StormOptions {
  const transport = args.includes('--transport') ? args[args.indexOf('--transport') + 1] : 'ws'
  if (transport !== 'ws' && transport !== 'tcp') throw new Error(`--transport: ws or tcp (got ${transport})`)
  return {
    viewers: countFlag(args, 'viewers', 1000),
    before: countFlag(args, 'before', 10),
    seconds: countFlag(args, 'seconds', 20),
    factor: countFlag(args, 'factor', 10),
    rate: countFlag(args, 'rate', ADMISSION_DEFAULTS.maxConnRate),
    burst: countFlag(args, 'burst', ADMISSION_DEFAULTS.maxConnBurst),
    transport,
    drainCap: countFlag(args, 'drain-cap', 300),
    offCap: countFlag(args, 'off-cap', 60),
    off: !args.includes('--no-off'),
    history: 20
  }
}

export async function main (args: string[]): Promise<void> {
  const usage = 'npm run -s bench:storm -- [--rate N] [--burst N] [--factor 10] [--seconds 20] [--before 10] [--viewers 1000] [--transport ws|tcp] [--drain-cap 300] [--off-cap 60] [--no-off] [--json]'
  if (args.includes('--help')) { console.log(usage); return }
  const valued = ['--rate', '--burst', '--factor', '--seconds', '--before', '--viewers', '--transport', '--drain-cap', '--off-cap']
  const unknown = args.filter((a, k) => a.startsWith('--') && !valued.includes(a) && a !== '--no-off' && a !== '--json' && !valued.includes(args[k - 1]))
  if (unknown.length > 0) throw new Error(`unknown option ${unknown.join(', ')}: ${usage}`)
  const opts = { ...stormOptions(args), log: (l: string) => { process.stderr.write(`${l}\n`) } }
  const runs = await storm(opts)
  // The tables and notes of RESULTS.md's Admission section, or the raw figures.
  console.log(args.includes('--json') ? JSON.stringify(runs, null, 2) : admissionSection([stormEntry(runs, opts, { date: new Date().toISOString(), tribune: 'this tree', quick: false })]).join('\n'))
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(`bench:storm: ${err.message}`)
    process.exitCode = 1
  })
}
