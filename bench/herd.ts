/**
 * Reconnect herd on one node: N viewers (raw MQTT, worker threads: lib/herd-worker.ts, the client library's reconnect
 * policy) watch one feed with `$replay/all/...` while a publisher (QoS 1, its own connection) sends 10 events a second.
 * Once every viewer is in and caught up, all their connections are dropped at once (the viewers destroy their
 * sockets) and each comes back within random(0, 0.5 s), resuming with `$replay/after-<seq>@<epoch>/<feed>` and backing
 * off when refused. Measured: the time until every viewer is back and caught up, whether every viewer's seq list is
 * exact, the node's /healthz answers (every 250 ms, 2 s timeout), event-loop lag (its admission.lagMs) and RSS over
 * time, refusals by reason, and the bound the configured rate sets (viewers / rate).
 * `--admission off` runs the node with --max-conn-rate 0 --max-connections 0 and --overload-lag-ms 60000 (overload
 * protection that never triggers, so that the lag is still sampled for /healthz) and stops at `--cap` seconds.
 *
 * Usage: npm run -s bench:herd -- [--viewers 5000] [--transport ws|tcp] [--qos 1|0] [--admission on|off] [--cap S] [--json]
 */
import { ADMISSION_DEFAULTS } from '../broker/src/config.js'
import { countFlag } from './lib/args.js'
import { health, mb, percentile, sleep, startFleet, startNode, series, startPublisher, startSampler, summarize, type Fleet, type Publisher, type Node } from './lib/fleet.js'

const FEED = 'matches/herd/events'
const RATE = 10
/** The first join's cap, s. */
const JOIN_CAP_S = 120
/** Verdict thresholds (see bench/README.md): lag and RSS "bounded". */
export const LAG_BOUND_MS = 1000
export const RSS_BOUND_FACTOR = 2
/** How long the run goes on after the last viewer is back (its figures count in the window), ms. */
export const AFTER_MS = 5000

export interface Output { kind: 'herd' | 'node-loss', figures: Record<string, number | string>, notes: string[] }

/** Waits until `done()` or `capMs` after `from`, printing progress every 5 s; true when done. */
export async function waitFor (fleet: Fleet, done: () => boolean, from: number, capMs: number, what: string, nodes: Node[]): Promise<boolean> {
  let said = Date.now()
  while (!done()) {
    if (Date.now() - from > capMs) return false
    await sleep(100)
    if (Date.now() - said >= 5000) {
      said = Date.now()
      const s = fleet.status()
      console.error(`  ${what} +${((Date.now() - from) / 1000).toFixed(0)} s: live ${s.live}, back and caught up ${s.recovered}/${s.affected}, refused ${s.refused}, CONNACK timeouts ${s.timeouts}, errors ${s.errors + s.closed}; loop delay max ${nodes.map((n) => Math.max(0, ...n.delays.filter((d) => d.t > said - 5000).map((d) => d.ms))).join('/')} ms`)
    }
  }
  return true
}

export async function herd (args: string[]): Promise<Output> {
  const viewers = countFlag(args, 'viewers', 5000)
  const transport = option(args, 'transport', ['ws', 'tcp'], 'ws')
  const admission = option(args, 'admission', ['on', 'off'], 'on')
  const capS = countFlag(args, 'cap', admission === 'on' ? 300 : 120)
  const qos = Number(option(args, 'qos', ['0', '1'], '1')) as 0 | 1
  const limits = admission === 'on' ? [] : ['--max-conn-rate', '0', '--max-connections', '0', '--overload-lag-ms', '60000']
  const node = await startNode('n0', ['--data-dir', ':memory:', ...limits])
  const sampler = startSampler([node])
  let fleet: Fleet | undefined
  let publisher: Publisher | undefined
  const notes: string[] = []
  try {
    publisher = await startPublisher(node.tcpUrl, [FEED], RATE, (acked) => fleet?.published(acked))
    const f = startFleet({ urls: [transport === 'ws' ? node.wsUrl : node.tcpUrl], feeds: [FEED], spread: false, qos, connectTimeoutMs: 10_000, initialConcurrency: 200 }, viewers)
    fleet = f
    const started = Date.now()
    console.error(`herd: ${viewers} ${transport} viewers at QoS ${qos}, admission ${admission}; joining`)
    if (!await waitFor(f, () => f.status().recovered === viewers, started, JOIN_CAP_S * 1000, 'join', [node])) {
      // The node could not take them all even once (it is saturated by their deliveries): report the join itself.
      const s = f.status()
      const during = summarize(sampler.samples, node, started, Date.now())
      const refused = (await health(node.healthUrl, 10_000)).body?.admission?.refused ?? {}
      return {
        kind: 'herd',
        figures: {
          viewers, transport, qos, admission, firstJoinS: `not within ${JOIN_CAP_S} s`, joined: s.recovered, tries: s.attempts, refusedSeenByViewers: s.refused,
          connackTimeouts: s.timeouts, connectErrors: s.errors + s.closed, refusedRate: refused.rate ?? 0, refusedOverload: refused.overload ?? 0,
          healthProbes: during.probes, healthTimeouts: during.probeTimeouts, healthLongestSilenceMs: during.longestSilenceMs, lagMaxMs: during.lagMaxMs,
          loopDelayMaxMs: during.loopDelayMaxMs, cpuDuringPct: during.cpuPct, rssMaxMB: during.rssMaxMB, publishAckMaxMs: publisher.maxAckMs(), met: 'no',
          ...renameSeries(series(sampler.samples, node, started, Date.now()))
        },
        notes: [`only ${s.recovered} of ${viewers} viewers joined within ${JOIN_CAP_S} s (the first join, before any drop): the node cannot serve them all at ${RATE} events/s at QoS ${qos} on this machine; no herd was run`]
      }
    }
    const joinS = (Date.now() - started) / 1000
    await sleep(5000)
    const before = f.status()
    const healthBefore = (await health(node.healthUrl, 5000)).body
    const t0 = Date.now()
    f.drop(t0)
    console.error(`herd: ${viewers} in after ${joinS.toFixed(1)} s; all dropped`)
    const back = await waitFor(f, () => { const s = f.status(); return s.affected === viewers && s.recovered === viewers }, t0, capS * 1000, 'herd', [node])
    const t1 = Date.now()
    await sleep(AFTER_MS)
    const finals = await publisher.stop()
    f.published(finals)
    await sleep(500)
    // Viewers that lost a connection after they were back (see lostConnections) come back before the check, or not.
    const settled = await waitFor(f, () => f.status().current === viewers, Date.now(), 30_000, 'settle', [node])
    const after = f.status()
    const checked = await f.check(finals)
    const healthAfter = (await health(node.healthUrl, 10_000)).body
    const refusedAt = (k: string): number => (healthAfter?.admission?.refused[k] ?? 0) - (healthBefore?.admission?.refused[k] ?? 0)
    const base = summarize(sampler.samples, node, t0 - 5000, t0)
    const during = summarize(sampler.samples, node, t0, t1 + AFTER_MS) // the herd, and the time after it
    const recovered = checked.recoveryMs.filter((ms) => ms >= 0)
    const rateBoundS = admission === 'on' ? viewers / ADMISSION_DEFAULTS.maxConnRate : 0
    const figures: Record<string, number | string> = {
      viewers, transport, qos, admission,
      maxConnRate: admission === 'on' ? ADMISSION_DEFAULTS.maxConnRate : 0,
      maxConnBurst: admission === 'on' ? ADMISSION_DEFAULTS.maxConnBurst : 0,
      firstJoinS: round1(joinS),
      backAndCaughtUp: recovered.length,
      allBackS: back ? round1(percentile(recovered, 1) / 1000) : `not within ${capS} s`,
      backP50S: round1(percentile(recovered, 0.5) / 1000),
      backP99S: round1(percentile(recovered, 0.99) / 1000),
      rateBoundS: admission === 'on' ? rateBoundS : 'none',
      exactViewers: checked.exact,
      lastSeq: finals[0],
      duplicates: after.duplicates, gaps: after.gaps, resets: after.resets + after.epochChanges,
      tries: after.attempts - before.attempts,
      lostConnections: after.lost - before.lost,
      allCurrentAtEnd: settled ? 'yes' : `no: ${after.current} of ${viewers} live with the last seq 30 s after the publisher stopped`,
      refusedSeenByViewers: after.refused - before.refused,
      connackTimeouts: after.timeouts - before.timeouts,
      connectErrors: after.errors + after.closed - before.errors - before.closed,
      refusedRate: refusedAt('rate'), refusedOverload: refusedAt('overload'), refusedMaxConnections: refusedAt('max-connections'),
      healthProbes: during.probes, healthTimeouts: during.probeTimeouts, healthP99Ms: during.probeP99Ms, healthMaxMs: during.probeMaxMs,
      healthLongestSilenceMs: during.longestSilenceMs,
      lagBeforeMaxMs: base.lagMaxMs, lagMaxMs: during.lagMaxMs,
      loopDelayBeforeMaxMs: base.loopDelayMaxMs, loopDelayMaxMs: during.loopDelayMaxMs,
      cpuBeforePct: base.cpuPct, cpuDuringPct: during.cpuPct,
      rssBeforeMB: base.rssEndMB, rssMaxMB: during.rssMaxMB, rssEndMB: mb(node.rss()),
      publishAckMaxMs: publisher.maxAckMs()
    }
    Object.assign(figures, renameSeries(series(sampler.samples, node, t0 - 5000, t1 + AFTER_MS)))
    const exact = checked.exact === viewers
    const answering = during.probeTimeouts === 0 && during.longestSilenceMs < 2000
    const bounded = Math.max(during.loopDelayMaxMs, during.lagMaxMs) < LAG_BOUND_MS && during.rssMaxMB < RSS_BOUND_FACTOR * base.rssEndMB
    figures.met = back && exact && answering && bounded ? 'yes' : 'no'
    notes.push(`every viewer back and exact: ${back && exact ? 'yes' : `no (${recovered.length} back, ${checked.exact} exact of ${viewers})`}; /healthz answering throughout (no 2 s timeout, no silence of 2 s): ${answering ? 'yes' : 'no'}; lag under ${LAG_BOUND_MS} ms and RSS under ${RSS_BOUND_FACTOR}x the pre-drop figure: ${bounded ? 'yes' : 'no'}`)
    for (const fault of checked.faults) notes.push(`not exact: ${fault}`)
    if (admission === 'off') notes.push('admission off: --max-conn-rate 0 --max-connections 0 --overload-lag-ms 60000 (never triggers; keeps the lag sampled)')
    notes.push('lag: lagMaxMs is the largest admission.lagMs /healthz answered (every 250 ms; a 50 ms timer\'s last lateness, read when the node is free to answer), loopDelayMaxMs the largest event-loop delay measured inside the node (perf_hooks, preloaded by the bench; a native timer, so it misses delays within the JS timers phase that lagMs sees); the verdict takes the larger; /healthz probes on a new connection each, 2 s timeout')
    return { kind: 'herd', figures, notes }
  } finally {
    await publisher?.stop()
    sampler.stop()
    await fleet?.stop()
    await node.stop()
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10

/** A node's series as flat figures, `suffix` naming the node when there are several. */
export function renameSeries (s: { rssMB: string, lagMs: string, healthMs: string }, suffix = ''): Record<string, string> {
  return { [`rssSeriesMB${suffix}`]: s.rssMB, [`lagSeriesMs${suffix}`]: s.lagMs, [`healthSeriesMs${suffix}`]: s.healthMs }
}

/** Prints `out` as lines, or as JSON with --json. */
export function print (out: Output, json: boolean): void {
  if (json) { console.log(JSON.stringify(out, null, 2)); return }
  console.log(`${out.kind}:`)
  for (const [k, v] of Object.entries(out.figures)) console.log(`  ${k.padEnd(26)} ${v}`)
  for (const n of out.notes) console.log(`  - ${n}`)
}

/** The value after `--<name>`, one of `values`, or `fallback` when the flag is absent. */
export function option (args: string[], name: string, values: string[], fallback: string): string {
  const i = args.indexOf(`--${name}`)
  if (i < 0) return fallback
  if (!values.includes(args[i + 1])) throw new Error(`--${name}: one of ${values.join(', ')} (got ${args[i + 1] ?? 'nothing'})`)
  return args[i + 1]
}

/** Refuses an option not in `known` (each takes a value; --json none). */
export function checkArgs (args: string[], known: string[]): void {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--json') continue
    if (!known.includes(args[i])) throw new Error(`unknown option ${args[i]} (options: ${known.join(' ')} --json)`)
    i++
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  Promise.resolve().then(async () => {
    checkArgs(args, ['--viewers', '--transport', '--qos', '--admission', '--cap'])
    const out = await herd(args)
    print(out, args.includes('--json'))
    if (out.figures.met !== 'yes' && out.figures.admission === 'on') process.exitCode = 1
  }).catch((err: Error) => {
    console.error(`bench:herd: ${err.message}`)
    process.exitCode = 1
  })
}
