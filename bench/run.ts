/**
 * `npm run bench`: every scenario of issue 5 against Tribune and Mosquitto in the same run, alternating (Mosquitto
 * first, then Tribune, scenario by scenario), each broker its own freshly started process:
 *  - fan-out: 1,000 and 10,000 WebSocket viewers (50,000 when the open-file limit allows), QoS 0 and 1;
 *  - joins: viewers connecting (WebSocket, then TCP), subscribing and receiving their state as fast as they can;
 *  - memory: resident memory per idle WebSocket viewer;
 *  - cluster: the fan-out with `tribune cluster --nodes 2` against one node;
 *  - metrics: what metrics cost (issue 14): the fan-out on Tribune with `--metrics off` and on, alternating, in
 *    the same run;
 *  - storm, only with `--only storm` (Tribune only, about 12 minutes; the "Admission" section): join capacity with
 *    auth and $replay, bursts, refusal cost, fan-out turns (bench/join-capacity.ts), and storms of new connections
 *    at several times --max-conn-rate while viewers watch, with the node's limits and with admission control off
 *    (bench/storm.ts).
 * Every Tribune process of the first four runs with admission control off (bench/lib/brokers.ts): Mosquitto has none.
 * Progress goes to stderr; the summary (or `--json`, a BenchRun of bench/lib/results.ts) to stdout. A full run
 * writes bench/RESULTS.md (followed by bench/analysis.md, the hand-written reading of the figures), bench/results.svg
 * and bench/results.json; `--quick` or `--only` write them only with `--write`, and keep from results.json what they
 * did not run (`--only storm --write` replaces the Admission section only). With `npm run`, use `-s` so that npm's
 * own lines do not precede the JSON.
 *
 * Usage: npm run bench -- [--quick] [--json] [--write] [--only fanout,joins,memory,cluster,metrics,storm] | --render
 *   --render writes RESULTS.md and results.svg again from results.json (after editing analysis.md), measuring nothing.
 */
import { cpus, loadavg, totalmem } from 'node:os'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { fanout } from './fanout.js'
import { joins } from './joins.js'
import { idleMemory } from './memory.js'
import { joinCapacity } from './join-capacity.js'
import { storm, stormOptions } from './storm.js'
import { ADMISSION_DEFAULTS } from '../broker/src/config.js'
import { renderChart, renderMarkdown } from './lib/report.js'
import { capacityEntries, carryOver, stormEntry } from './lib/admission-tables.js'
import type { BrokerKind } from './lib/brokers.js'
import type { AdmissionResult, BenchRun, BrokerFigures, ScenarioResult, TargetCheck } from './lib/results.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const KINDS = ['fanout', 'joins', 'memory', 'cluster', 'metrics', 'storm'] as const
type Kind = typeof KINDS[number]
/** What a run without --only measures: storm (about 12 minutes of its own) only when asked. */
const DEFAULT_KINDS: Kind[] = ['fanout', 'joins', 'memory', 'cluster', 'metrics']

const log = (line: string): void => { process.stderr.write(`${line}\n`) }
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

/** The most open files a process may have here (/proc/self/limits); each viewer costs one in the broker and one in the load generator. */
function openFileLimit (): number {
  const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))
  return m !== null ? Number(m[1]) : Infinity
}

/** Fan-out (or cluster) against each broker: saturation, then latency at half of the first broker's (Mosquitto's) saturation rate. */
async function fanoutScenario (kind: 'fanout' | 'cluster', brokers: BrokerKind[], viewers: number, qos: 0 | 1, seconds: number): Promise<ScenarioResult> {
  const title = kind === 'fanout'
    ? `fan-out, ${fmt(viewers)} WS viewers, QoS ${qos}`
    : `cluster: fan-out, ${fmt(viewers)} WS viewers, QoS ${qos}, 2 nodes vs 1`
  const params = { viewers, qos, transport: 'ws', payloadBytes: 64, seconds }
  const limit = openFileLimit()
  if (viewers + 100 > limit) {
    return { kind, title, params, brokers: [], targets: [], skipped: `${fmt(viewers)} connections need that many open files in the broker process and in the load generator; this machine allows ${fmt(limit)} per process (a hard limit this container cannot raise)` }
  }
  const figures: BrokerFigures[] = []
  let rate = 0
  for (const broker of brokers) {
    log(`  ${title}: ${broker}, saturation`)
    const sat = await fanout({ broker, viewers, qos, seconds, rate: 0, transport: 'ws' })
    if (rate === 0) rate = Math.max(1, Math.floor(sat.deliveriesPerSecond / viewers / 2))
    log(`  ${title}: ${broker}, ${fmt(sat.deliveriesPerSecond)} deliveries/s; latency at ${rate} msg/s`)
    const paced = await fanout({ broker, viewers, qos, seconds, rate, transport: 'ws' })
    log(`  ${title}: ${broker}, p99 ${paced.p99Ms?.toFixed(1) ?? '-'} ms`)
    figures.push({
      broker, deliveriesPerSecond: sat.deliveriesPerSecond, rate, p50Ms: paced.p50Ms ?? undefined, p99Ms: paced.p99Ms ?? undefined,
      maxMs: paced.maxMs ?? undefined, deliveredShare: paced.deliveredShare ?? undefined, rssBytes: sat.rssBytes,
      cpuUsPerDelivery: sat.cpuUsPerDelivery ?? undefined
    })
  }
  const base = figures[0]
  const result: ScenarioResult = { kind, title, params, brokers: figures, targets: [] }
  const tribune = figures.find((f) => f.broker === (kind === 'fanout' ? 'tribune' : 'tribune-cluster-2'))
  if (tribune !== undefined && base !== undefined && base !== tribune) {
    result.ratio = { metric: 'deliveries/s', value: (tribune.deliveriesPerSecond ?? 0) / (base.deliveriesPerSecond ?? 1), of: kind === 'fanout' ? 'Tribune / Mosquitto' : '2 nodes / 1 node' }
    if (kind === 'fanout') {
      const delivered = (tribune.deliveredShare ?? 0) >= 0.999
      result.targets.push(
        target(`deliveries/s, ${title}`, '>= 1.00 x Mosquitto', `${result.ratio.value.toFixed(2)} x (${fmt(tribune.deliveriesPerSecond ?? 0)} vs ${fmt(base.deliveriesPerSecond ?? 0)})`, result.ratio.value >= 1),
        target(`p99 latency at ${rate} msg/s (half of Mosquitto's saturation rate, at least 1), ${title}`, '<= 50 ms, all delivered', `${tribune.p99Ms?.toFixed(1) ?? '-'} ms${delivered ? '' : `, ${((tribune.deliveredShare ?? 0) * 100).toFixed(1)}% delivered`}`, (tribune.p99Ms ?? Infinity) <= 50 && delivered))
    }
  }
  return result
}

/** The broker names of the metrics scenario's rows. */
const METRICS_OFF = 'tribune (metrics off)'
const METRICS_ON = 'tribune (metrics on)'

/**
 * What metrics cost (issue 14): fan-out saturation on Tribune with `--metrics off` and with metrics on (the default),
 * `rounds` runs of each, alternating off, on, off, on, ... (this VM's speed drifts between runs); each row holds the
 * run with its broker's median deliveries/s. Target: on >= 0.95 x off. The broker's CPU per delivery shows the cost
 * even when the load generator, sharing the machine's 2 cores, is what limits deliveries/s.
 */
async function metricsScenario (viewers: number, qos: 0 | 1, seconds: number, rounds: number): Promise<ScenarioResult> {
  const title = `metrics cost: fan-out, ${fmt(viewers)} WS viewers, QoS ${qos}, Tribune with metrics off and on`
  const runs: Record<string, BrokerFigures[]> = { [METRICS_OFF]: [], [METRICS_ON]: [] }
  for (let round = 0; round < rounds; round++) {
    for (const [name, metrics] of [[METRICS_OFF, 'off'], [METRICS_ON, 'on']] as const) {
      const sat = await fanout({ broker: 'tribune', viewers, qos, seconds, rate: 0, transport: 'ws', brokerArgs: ['--metrics', metrics] })
      log(`  ${title}: ${name}, round ${round + 1} of ${rounds}: ${fmt(sat.deliveriesPerSecond)} deliveries/s, ${sat.cpuUsPerDelivery?.toFixed(2) ?? '-'} µs/delivery`)
      runs[name].push({ broker: name, deliveriesPerSecond: sat.deliveriesPerSecond, rssBytes: sat.rssBytes, cpuUsPerDelivery: sat.cpuUsPerDelivery ?? undefined })
    }
  }
  const median = (list: BrokerFigures[]): BrokerFigures => [...list].sort((a, b) => (a.deliveriesPerSecond ?? 0) - (b.deliveriesPerSecond ?? 0))[Math.floor((list.length - 1) / 2)]
  const off = median(runs[METRICS_OFF])
  const on = median(runs[METRICS_ON])
  const ratio = (on.deliveriesPerSecond ?? 0) / Math.max(1, off.deliveriesPerSecond ?? 0)
  const each = (name: string): string => runs[name].map((f) => fmt(f.deliveriesPerSecond ?? 0)).join(' / ')
  return {
    kind: 'metrics', title, params: { viewers, qos, transport: 'ws', payloadBytes: 64, seconds, rounds, offRounds: each(METRICS_OFF), onRounds: each(METRICS_ON) },
    brokers: [off, on],
    ratio: { metric: 'deliveries/s', value: ratio, of: 'metrics on / off' },
    targets: [target(`deliveries/s with metrics on vs off (${title})`, '>= 0.95 x off', `${ratio.toFixed(2)} x (${fmt(on.deliveriesPerSecond ?? 0)} vs ${fmt(off.deliveriesPerSecond ?? 0)}; broker CPU ${on.cpuUsPerDelivery?.toFixed(2) ?? '-'} vs ${off.cpuUsPerDelivery?.toFixed(2) ?? '-'} µs/delivery)`, ratio >= 0.95)]
  }
}

function target (what: string, goal: string, reached: string, met: boolean): TargetCheck {
  return { what, target: goal, reached, met }
}

async function joinsScenario (viewers: number, transport: 'ws' | 'tcp', rounds: number): Promise<ScenarioResult> {
  const history = 20
  const title = `joins, ${fmt(viewers)} ${transport === 'ws' ? 'WS' : 'TCP'} viewers, 500 at once`
  log(`  ${title}: mosquitto and tribune, a cold storm each, then ${rounds} measured ${rounds === 1 ? 'round' : 'rounds'} in turn`)
  const results = await joins(['mosquitto', 'tribune'], { viewers, history, concurrency: 500, transport, rounds })
  const figures: BrokerFigures[] = results.map((r) => {
    log(`  ${title}: ${r.broker}, ${r.rounds.map(fmt).join(', ')} joins/s (cold ${fmt(r.coldJoinsPerSecond)})`)
    return { broker: r.broker, joinsPerSecond: r.joinsPerSecond, lastJoinMs: r.lastJoinMs, p50Ms: r.p50JoinMs, p99Ms: r.p99JoinMs, messagesPerJoin: r.messagesPerJoin, cpuUsPerJoin: r.cpuUsPerJoin, generatorCpuUsPerJoin: r.generatorCpuUsPerJoin, coldJoinsPerSecond: r.coldJoinsPerSecond, coldCpuUsPerJoin: r.coldCpuUsPerJoin, joinsRounds: r.rounds, rssBytes: r.rssBytes }
  })
  const [m, t] = figures
  const ratio = (t.joinsPerSecond ?? 0) / (m.joinsPerSecond ?? 1)
  return {
    kind: 'joins', title, params: { viewers, history, concurrency: 500, transport, rounds }, brokers: figures,
    ratio: { metric: 'joins/s', value: ratio, of: 'Tribune / Mosquitto' },
    targets: [
      target(`joins/s on one node (${title})`, '>= 2,000', fmt(t.joinsPerSecond ?? 0), (t.joinsPerSecond ?? 0) >= 2000),
      target(`joins/s vs Mosquitto (${title})`, '>= 1.00 x Mosquitto', `${ratio.toFixed(2)} x`, ratio >= 1)
    ]
  }
}

async function memoryScenario (viewers: number): Promise<ScenarioResult> {
  const title = `idle memory, ${fmt(viewers)} WS viewers`
  const figures: BrokerFigures[] = []
  for (const broker of ['mosquitto', 'tribune'] as const) {
    log(`  ${title}: ${broker}`)
    const r = await idleMemory(broker, viewers)
    log(`  ${title}: ${broker}, ${(r.bytesPerViewer / 1024).toFixed(1)} KB per viewer`)
    figures.push({ broker, bytesPerViewer: r.bytesPerViewer, rssBytes: r.rssBytes })
  }
  const t = figures[1].bytesPerViewer ?? Infinity
  return {
    kind: 'memory', title, params: { viewers, transport: 'ws' }, brokers: figures,
    ratio: { metric: 'bytes per viewer (lower is better)', value: t / (figures[0].bytesPerViewer ?? 1), of: 'Tribune / Mosquitto' },
    targets: [target(`resident memory per idle WS viewer (${title})`, '<= 12 KB', `${(t / 1024).toFixed(1)} KB`, t <= 12 * 1024)]
  }
}

/**
 * The storm offered at the node's default limits: 3 x its rate, about what this machine can offer (10 x would take the
 * generator about 4 cores); and 10 x a tenth of the default rate and burst, which it can.
 */
const STORMS = [['--factor', '3'], ['--factor', '10', '--rate', String(ADMISSION_DEFAULTS.maxConnRate / 10), '--burst', String(ADMISSION_DEFAULTS.maxConnBurst / 10), '--no-off']]

/**
 * The Admission section's scenarios: join capacity, bursts, refusal cost and fan-out turns, then the storms of
 * {@link STORMS} against the node with its limits (the first also with admission control off). `--quick`: 3 s runs,
 * 5 s storms of 500 viewers, no fan-out turns.
 */
async function admissionScenarios (quick: boolean): Promise<AdmissionResult[]> {
  const measured = { date: new Date().toISOString(), tribune: versions().tribune, quick }
  log('  join capacity with auth and $replay, bursts, refusal cost, fan-out turns')
  const capacity = await joinCapacity({ seconds: quick ? 3 : 10, refusals: quick ? 2000 : 5000, bursts: quick ? [500, 2000] : undefined, fanoutViewers: quick ? [] : undefined, log })
  const entries = capacityEntries(capacity, measured)
  for (const flags of STORMS) {
    const opts = { ...stormOptions([...flags, ...(quick ? ['--seconds', '5', '--before', '5', '--viewers', '500', '--off-cap', '30'] : [])]), log }
    log(`  storm: ${opts.factor} x ${opts.rate} new connections/s for ${opts.seconds} s, ${opts.viewers} viewers watching`)
    entries.push(stormEntry(await storm(opts), opts, measured))
  }
  return entries
}

function versions (): Record<string, string> {
  const pkg = (name: string): string => (JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { version: string }).version
  let mosquitto = 'not installed'
  try {
    execFileSync('mosquitto', ['-h'], { encoding: 'utf8' })
  } catch (err) {
    mosquitto = /version (\S+)/.exec(String((err as { stdout?: string }).stdout ?? ''))?.[1] ?? 'unknown'
  }
  const tribune = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }).version
  let commit = ''
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim() } catch {}
  return { tribune: `${tribune}${commit !== '' ? ` (${commit})` : ''}`, mosquitto, node: process.version, aedes: pkg('aedes'), ws: pkg('ws'), 'mqtt-packet': pkg('mqtt-packet') }
}

function machine (): BenchRun['machine'] {
  let os = 'Linux'
  try { os = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os } catch {}
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), os, node: process.version, openFileLimit: openFileLimit() }
}

/**
 * Writes bench/RESULTS.md (the run's tables and targets, the Admission section, then bench/analysis.md), results.svg
 * and results.json. What the run did not measure is kept from results.json (lib/admission-tables.ts carryOver).
 */
function writeResults (measured: BenchRun): void {
  const previous = existsSync(`${ROOT}bench/results.json`) ? JSON.parse(readFileSync(`${ROOT}bench/results.json`, 'utf8')) as BenchRun : undefined
  const run = carryOver(previous, measured)
  writeFileSync(`${ROOT}bench/results.json`, JSON.stringify(run, null, 2) + '\n')
  writeFileSync(`${ROOT}bench/results.svg`, renderChart(run))
  // The hand-written reading of the figures (what is left, and why) follows the generated tables.
  const analysis = existsSync(`${ROOT}bench/analysis.md`) ? `\n${readFileSync(`${ROOT}bench/analysis.md`, 'utf8')}` : ''
  writeFileSync(`${ROOT}bench/RESULTS.md`, renderMarkdown(run, 'results.svg') + analysis)
  log('wrote bench/RESULTS.md, bench/results.svg, bench/results.json')
}

/** Runs the scenarios chosen by `args` and prints (and writes) the results. */
export async function main (args: string[]): Promise<void> {
  if (args.includes('--help')) {
    console.log([
      'npm run -s bench -- [--quick] [--json] [--write] [--only fanout,joins,memory,cluster,metrics,storm] | --render',
      '  (none)     every scenario but storm, about 7 minutes; writes bench/RESULTS.md (keeping its Admission section), results.svg and results.json',
      '  --quick    about 2 minutes: 1,000 viewers, 2 s runs, 2,000 viewers per join storm and 1 measured round (storm: 5 s storms)',
      '  --only     these scenarios only, comma-separated; storm (about 12 minutes) runs only when named here',
      '  --write    write the results files after --quick or --only too (keeping what this run did not measure)',
      '  --json     print the run as JSON (the shape of bench/lib/results.ts) instead of text',
      '  --render   write RESULTS.md and the chart again from results.json (after editing analysis.md); no run'
    ].join('\n'))
    return
  }
  const flags = ['--quick', '--json', '--write', '--only', '--render']
  const unknownFlags = args.filter((a, k) => !flags.includes(a) && args[k - 1] !== '--only')
  if (unknownFlags.length > 0) throw new Error(`unknown option ${unknownFlags.join(', ')} (known: ${flags.join(', ')}, --help)`)
  if (args.includes('--render')) { // after editing analysis.md: the same run, written again
    if (args.length > 1) throw new Error('--render takes no other option: it runs nothing, and writes the files again from bench/results.json')
    const run = JSON.parse(readFileSync(`${ROOT}bench/results.json`, 'utf8')) as BenchRun
    writeResults({ ...run, admission: [] }) // carries every entry over from the same file
    return
  }
  const quick = args.includes('--quick')
  const i = args.indexOf('--only')
  if (i >= 0 && (args[i + 1] === undefined || args[i + 1].startsWith('--'))) throw new Error(`--only needs a value: scenarios among ${KINDS.join(', ')}, comma-separated`)
  const only: string[] = i >= 0 ? (args[i + 1] ?? '').split(',') : DEFAULT_KINDS
  const unknown = only.filter((k) => !(KINDS as readonly string[]).includes(k))
  if (unknown.length > 0) throw new Error(`--only: unknown scenario ${unknown.join(', ')} (choose from ${KINDS.join(', ')})`)
  const wanted = (k: Kind): boolean => only.includes(k)
  // Broker and load generator share this machine's cores: other work running at the same time lowers every figure.
  const load = loadavg()[0]
  if (load > 0.5 * cpus().length) log(`warning: the machine is busy (load average ${load.toFixed(2)} on ${cpus().length} CPUs): expect low figures; run the benchmarks on a quiet machine`)
  const started = Date.now()
  const scenarios: ScenarioResult[] = []
  const seconds = quick ? 2 : 4
  if (wanted('fanout')) {
    for (const viewers of quick ? [1000] : [1000, 10_000, 50_000]) {
      for (const qos of [0, 1] as const) scenarios.push(await fanoutScenario('fanout', ['mosquitto', 'tribune'], viewers, qos, seconds))
    }
  }
  if (wanted('joins')) {
    for (const transport of ['ws', 'tcp'] as const) scenarios.push(await joinsScenario(quick ? 2000 : 5000, transport, quick ? 1 : 3))
  }
  if (wanted('memory')) scenarios.push(await memoryScenario(quick ? 2000 : 5000))
  if (wanted('cluster')) scenarios.push(await fanoutScenario('cluster', ['tribune', 'tribune-cluster-2'], 1000, 0, seconds))
  if (wanted('metrics')) scenarios.push(await metricsScenario(1000, 0, seconds, quick ? 1 : 3))
  const admission = wanted('storm') ? await admissionScenarios(quick) : []

  const run: BenchRun = { date: new Date(started).toISOString(), quick, machine: machine(), versions: versions(), scenarios, admission, seconds: Math.round((Date.now() - started) / 1000) }
  // The committed results are a full run of every scenario; a partial one is written only when asked.
  if ((!quick && i < 0) || args.includes('--write')) writeResults(run)
  if (args.includes('--json')) {
    console.log(JSON.stringify(run, null, 2))
    return
  }
  for (const s of scenarios) {
    console.log(s.title + (s.skipped !== undefined ? `: skipped, ${s.skipped}` : ''))
    for (const b of s.brokers) {
      const parts = [
        b.deliveriesPerSecond !== undefined ? `${fmt(b.deliveriesPerSecond)} deliveries/s` : '',
        b.p99Ms !== undefined && b.maxMs !== undefined ? `p50/p99/max ${b.p50Ms?.toFixed(1) ?? '-'}/${b.p99Ms.toFixed(1)}/${b.maxMs.toFixed(1)} ms${b.rate !== undefined ? ` at ${b.rate} msg/s` : ''}` : '',
        b.p99Ms !== undefined && b.maxMs === undefined ? `join time p50/p99 ${b.p50Ms?.toFixed(1) ?? '-'}/${b.p99Ms.toFixed(1)} ms` : '',
        b.joinsPerSecond !== undefined ? `${fmt(b.joinsPerSecond)} joins/s, last at ${fmt(b.lastJoinMs ?? 0)} ms` : '',
        b.coldJoinsPerSecond !== undefined ? `cold ${fmt(b.coldJoinsPerSecond)} joins/s at ${fmt(b.coldCpuUsPerJoin ?? 0)} µs/join` : '',
        b.cpuUsPerDelivery !== undefined ? `broker CPU ${b.cpuUsPerDelivery.toFixed(2)} µs/delivery` : '',
        b.cpuUsPerJoin !== undefined ? `broker CPU ${fmt(b.cpuUsPerJoin)} µs/join` : '',
        b.generatorCpuUsPerJoin !== undefined ? `generator CPU ${fmt(b.generatorCpuUsPerJoin)} µs/join` : '',
        b.bytesPerViewer !== undefined ? `${(b.bytesPerViewer / 1024).toFixed(1)} KB per viewer` : '',
        b.rssBytes !== undefined ? `RSS ${(b.rssBytes / 2 ** 20).toFixed(0)} MiB` : ''
      ].filter((p) => p !== '')
      console.log(`  ${b.broker.padEnd(18)} ${parts.join(', ')}`)
    }
    if (s.ratio !== undefined) console.log(`  ${s.ratio.of ?? 'ratio'} ${s.ratio.metric}: ${s.ratio.value.toFixed(2)}`)
  }
  for (const a of admission) {
    console.log(a.title)
    for (const n of a.notes) console.log(`  ${n}`)
  }
  const targets = [...scenarios.flatMap((s) => s.targets), ...admission.flatMap((a) => a.targets)]
  console.log(`targets: ${targets.filter((t) => t.met).length} met, ${targets.filter((t) => !t.met).length} missed`)
  for (const t of targets) console.log(`  ${t.met ? 'met   ' : 'MISSED'} ${t.what}: ${t.reached} (target ${t.target})`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(`bench: ${err.message}`)
    process.exitCode = 1
  })
}
