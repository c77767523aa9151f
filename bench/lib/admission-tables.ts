/**
 * The "Admission" entries of a run (bench/lib/results.ts AdmissionResult) from bench/join-capacity.ts and
 * bench/storm.ts: pure functions from their figures to tables, notes and targets.
 */
import type { CapacityResult } from '../join-capacity.js'
import type { StormOptions, StormRun } from '../storm.js'
import type { AdmissionResult, BenchRun, FigureTable } from './results.js'

/** When and what was measured, shared by a run's entries. */
export interface Measured { date: string, tribune: string, quick: boolean }

const int = (n: number): string => Math.round(n).toLocaleString('en-US')

/** The join-capacity entry (sustained joins, bursts) and the refusal-cost entry. */
export function capacityEntries (c: CapacityResult, m: Measured): AdmissionResult[] {
  const sustained: FigureTable = {
    caption: `Sustained joins: ${c.concurrency} joins in progress at once for ${c.seconds} s, each client leaving once it has its ${c.history} messages of history and the state (\`$replay/all\` + state, one SUBSCRIBE), the next arriving; nothing refused (\`--max-conn-rate 0 --max-connections 0 --overload-lag-ms 60000\`: the lag is still sampled)`,
    columns: [{ header: 'Transport, auth', format: 'text' }, { header: 'Joins/s', format: 'int' }, { header: 'Broker CPU µs/join', format: 'int' },
      { header: 'Broker cores', format: 'two' }, { header: 'Generator CPU µs/join', format: 'int' }, { header: 'Join p50 ms', format: 'one' },
      { header: 'Join p99 ms', format: 'one' }, { header: 'Peak lag ms', format: 'int' }],
    rows: c.sustained.map((s) => [`${s.transport === 'ws' ? 'WebSocket' : 'TCP'}, ${s.auth === 'apikey' ? 'API key' : 'anonymous viewer'}`,
      s.joinsPerSecond, s.cpuUsPerJoin, s.brokerCores, s.generatorCpuUsPerJoin, s.p50JoinMs, s.p99JoinMs, s.peakLagMs])
  }
  const bursts: FigureTable = {
    caption: 'Bursts: N WebSocket joins (anonymous) arriving at once while 1,000 WebSocket viewers get a message every 100 ms; peak lag is the node\'s own 50 ms sample read from /healthz (on its --metrics-port) every 20 ms',
    columns: [{ header: 'Joins at once', format: 'text' }, { header: 'All joined ms', format: 'int' }, { header: 'Broker CPU µs/join', format: 'int' },
      { header: 'Peak lag ms', format: 'int' }, { header: 'Peak /healthz ms', format: 'int' }, { header: 'Viewers p99 before ms', format: 'one' },
      { header: 'Viewers p99 during ms', format: 'one' }],
    rows: c.bursts.map((b) => [int(b.joins), b.allJoinedMs, b.cpuUsPerJoin, b.peakLagMs, b.peakRttMs, b.viewersP99BeforeMs, b.viewersP99DuringMs])
  }
  const ws = c.sustained.find((s) => s.transport === 'ws' && s.auth === 'anonymous')
  const tcp = c.sustained.find((s) => s.transport === 'tcp')
  const cost: FigureTable = {
    caption: 'Broker CPU (/proc) around a batch: refusals on a node with `--max-conn-rate 1` (connections offered 200 at once, each tried once): answered (`--max-refusal-rate 0`), or closed at accept without an answer (shed: `--max-refusal-rate 1`), against the sustained joins above, same run',
    columns: [{ header: 'Connection', format: 'text' }, { header: 'Offered', format: 'int' }, { header: 'Refused', format: 'int' },
      { header: 'Broker CPU µs each', format: 'one' }, { header: 'of which user µs', format: 'one' }, { header: 'system µs', format: 'one' },
      { header: 'x a join\'s', format: 'two' }, { header: 'Generator CPU µs/attempt', format: 'int' }],
    rows: [
      ...c.refusals.map((r) => {
        const join = r.transport === 'ws' ? ws : tcp
        const how = r.shed === true ? 'shed at accept' : r.transport === 'ws' ? 'refused (HTTP 503)' : 'refused (CONNACK 3)'
        return [`${how}, ${r.transport === 'ws' ? 'WebSocket' : 'TCP'}`, r.offered, r.refused, r.cpuUsPerRefusal,
          r.userUsPerRefusal, r.systemUsPerRefusal, join === undefined ? null : r.cpuUsPerRefusal / join.cpuUsPerJoin, r.generatorCpuUsPerAttempt]
      }),
      ...[ws, tcp].filter((s) => s !== undefined).map((s) => [`accepted join, ${s.transport === 'ws' ? 'WebSocket' : 'TCP'}`, null, null, s.cpuUsPerJoin, null, null, 1, s.generatorCpuUsPerJoin])
    ]
  }
  const fanout: FigureTable = {
    caption: 'Fan-out turns: a message a second to N WebSocket viewers of a fresh node; the node\'s lag sample in each second (the turn that delivered that second\'s message), what overload protection must not mistake for overload',
    columns: [{ header: 'Viewers', format: 'text' }, { header: 'Messages', format: 'int' }, { header: 'Lag median ms', format: 'int' },
      { header: 'Lag peak ms', format: 'int' }, { header: 'Viewers p50 ms', format: 'one' }, { header: 'Viewers p99 ms', format: 'one' }],
    rows: (c.fanout ?? []).map((f) => [int(f.viewers), f.messages, f.medianLagMs, f.peakLagMs, f.p50Ms, f.p99Ms])
  }
  const params = { history: c.history, concurrency: c.concurrency, seconds: c.seconds }
  return [
    { kind: 'join-capacity', title: 'join capacity with auth and $replay (what the defaults come from)', ...m, params, tables: [sustained, bursts, ...(fanout.rows.length > 0 ? [fanout] : [])], notes: [], targets: [] },
    { kind: 'refusal-cost', title: 'refusal cost: a refused connection against a join', ...m, params: { offered: c.refusals[0]?.offered ?? 0, atOnce: 200 }, tables: [cost], notes: [], targets: [] }
  ]
}

/** The storm entry: the protected node's run and, when run, the one with admission control off. */
export function stormEntry (runs: StormRun[], o: StormOptions, m: Measured): AdmissionResult {
  const label = (r: StormRun): string => r.admission === 'on' ? `limits on (rate ${int(o.rate)}/s, burst ${int(o.burst)})` : 'admission off'
  const viewers: FigureTable = {
    caption: `Viewers' publish-to-viewer latency (${int(o.viewers)} WebSocket viewers, a message every 100 ms): ${o.before} s before the storm, the ${o.seconds} s of the storm, and after it until every client was in (or the cap)`,
    columns: [{ header: 'Node', format: 'text' }, { header: 'p50 before ms', format: 'one' }, { header: 'p99 before ms', format: 'one' },
      { header: 'p50 during ms', format: 'one' }, { header: 'p99 during ms', format: 'one' }, { header: 'Max during ms', format: 'one' },
      { header: 'Delivered during %', format: 'percent' }, { header: 'p99 after ms', format: 'one' }, { header: 'Viewers lost', format: 'int' }],
    rows: runs.map((r) => [label(r), r.before.p50Ms, r.before.p99Ms, r.during.p50Ms, r.during.p99Ms, r.during.maxMs,
      r.during.expected > 0 ? r.during.received / r.during.expected : null, r.after.p99Ms, r.viewersDropped])
  }
  const node: FigureTable = {
    caption: 'The node during the storm and after (/healthz every 500 ms, RSS from /proc); drain: from the storm\'s end until the last client that had been refused got in (admission off: the last client; no lag sample, /healthz round trip only)',
    columns: [{ header: 'Node', format: 'text' }, { header: 'Peak RSS MiB', format: 'mib' }, { header: 'Peak lag ms', format: 'int' },
      { header: 'Peak /healthz ms', format: 'int' }, { header: '/healthz unanswered', format: 'text' }, { header: 'Broker cores', format: 'two' },
      { header: 'Refused (node, by reason)', format: 'text' }, { header: 'Clients in', format: 'text' }, { header: 'Join p99 s', format: 'one' },
      { header: 'Drain s', format: 'one' }],
    rows: runs.map((r) => [label(r), r.peakRssBytes, r.admission === 'off' ? null : r.peakLagMs, r.peakHealthzMs, `${r.healthzUnanswered} of ${r.healthzUnanswered + r.healthzAnswered}`, r.brokerCores,
      Object.entries(r.refused).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${int(n)}`).join(', ') || 'none',
      `${int(r.joined)} of ${int(r.arrived)}`, r.joinP99Ms / 1000, r.drainMs === null ? null : r.drainMs / 1000])
  }
  const generator: FigureTable = {
    caption: 'The load generator during the storm (worker threads on the same 2 cores): new clients asked and arrived per second, connections opened (first tries and retries) and counted by the node (taken + refused + shed) per second',
    columns: [{ header: 'Node', format: 'text' }, { header: 'Asked/s', format: 'int' }, { header: 'Arrived/s', format: 'int' },
      { header: 'Attempts/s', format: 'int' }, { header: 'Node saw/s', format: 'int' }, { header: 'Generator cores', format: 'two' },
      { header: 'Generator timer lag ms', format: 'int' }, { header: 'Held back', format: 'int' }, { header: 'Refused (clients: 503 / CONNACK 3 / shed)', format: 'text' }, { header: 'Errors (timed out)', format: 'text' }],
    rows: runs.map((r) => [label(r), r.askedRate, r.arrivedRate, r.attemptRate, r.nodeSeenRate, r.generatorCores, r.generatorTimerLagMs, r.generatorHeld,
      `${int(r.refused503)} / ${int(r.refusedConnack)} / ${int(r.shed ?? 0)}`, `${int(r.errors)} (${int(r.timeouts)})`])
  }
  const on = runs.find((r) => r.admission === 'on')
  const off = runs.find((r) => r.admission === 'off')
  const notes: string[] = []
  for (const r of runs) {
    // Who was the limit: the generator's schedule, the node (a full accept queue drops SYNs), the generator's sockets.
    const parts = [`${label(r)}: ${int(r.arrivedRate)} new clients/s arrived of ${int(r.askedRate)} asked; the node took or refused ${int(r.nodeSeenRate)} connections/s at ${r.brokerCores.toFixed(2)} cores, the generator used ${r.generatorCores.toFixed(2)}`]
    if (r.timeouts > 0) parts.push(`${int(r.timeouts)} connection attempts had no answer within 10 s (SYNs dropped from the node's full accept queue) and were tried again`)
    if (r.generatorHeld > 0) parts.push(`up to ${int(r.generatorHeld)} arrivals waited for one of the generator's sockets, most of them held by such attempts`)
    if (r.healthzUnanswered > 0) parts.push(`/healthz (on the node\'s --metrics-port) went unanswered ${r.healthzUnanswered === 1 ? 'once' : `${r.healthzUnanswered} times`} (5 s timeout) and took up to ${(r.peakHealthzMs / 1000).toFixed(1)} s`)
    notes.push(`${parts.join('; ')}.`)
  }
  if (on !== undefined) {
    const refused = on.refused503 + on.refusedConnack + (on.shed ?? 0)
    if (refused > 0) notes.push(`Retries: ${(on.attemptRate / on.arrivedRate).toFixed(1)} connections opened per new client during the storm; the ${int(on.refusedThenJoined)} clients refused at least once were refused ${(refused / Math.max(1, on.refusedThenJoined)).toFixed(1)} times each on average before they got in.`)
    notes.push(on.left === 0
      ? `Every one of the ${int(on.arrived)} clients got in; the last refused one ${((on.drainMs ?? 0) / 1000).toFixed(0)} s after the storm (at best ${int((o.factor - 1) * o.seconds)} s: the backlog of ${o.factor - 1} x ${o.seconds} s of arrivals at the node's rate).`
      : `${int(on.left)} of ${int(on.arrived)} clients were still out at the ${o.drainCap} s cap.`)
  }
  if (off !== undefined) {
    notes.push(`Admission off: viewers' p99 ${off.during.p99Ms.toFixed(0)} ms during the storm (${(off.during.p99Ms / off.before.p99Ms).toFixed(2)} x before), peak RSS ${int(off.peakRssBytes / 2 ** 20)} MiB; ${off.left === 0 ? `every client got in, the last ${((off.drainMs ?? 0) / 1000).toFixed(0)} s after the storm` : `${int(off.left)} clients not in at the ${o.offCap} s cap`}.`)
  }
  return {
    kind: 'storm',
    title: `join storm: ${o.factor} x --max-conn-rate ${int(o.rate)} for ${o.seconds} s, ${int(o.viewers)} viewers watching`,
    ...m,
    params: { viewers: o.viewers, transport: o.transport, maxConnRate: o.rate, maxConnBurst: o.burst, factor: o.factor, stormSeconds: o.seconds, beforeSeconds: o.before, drainCapSeconds: o.drainCap, offCapSeconds: o.offCap },
    tables: [viewers, node, generator],
    notes,
    targets: on === undefined
      ? []
      : [{ what: `viewers' p99 during a storm of ${o.factor} x --max-conn-rate (limits on)`, target: '<= 2 x p99 before', reached: `${(on.during.p99Ms / on.before.p99Ms).toFixed(2)} x (${on.during.p99Ms.toFixed(1)} vs ${on.before.p99Ms.toFixed(1)} ms)`, met: on.during.p99Ms <= 2 * on.before.p99Ms }]
  }
}

/** The order of the scenarios above the Admission section, by kind. */
const SCENARIO_ORDER: Array<BenchRun['scenarios'][number]['kind']> = ['fanout', 'joins', 'memory', 'cluster', 'metrics']

/** The order of the Admission section's entries, by kind. */
const ORDER: Array<AdmissionResult['kind']> = ['join-capacity', 'refusal-cost', 'storm', 'herd', 'node-loss']

/**
 * What a run writes when RESULTS.md was written before (`previous`, from results.json): the Admission entries of the
 * kinds this run measured replace those of the previous run, the others are kept; likewise the scenarios above it, by
 * kind (a `--only metrics` run keeps the fan-out figures); a run that measured only admission scenarios keeps the
 * previous run's scenarios, date, machine and versions too.
 */
export function carryOver (previous: BenchRun | undefined, run: BenchRun): BenchRun {
  if (previous === undefined) return run
  const fresh = run.admission ?? []
  const kinds = new Set(fresh.map((a) => a.kind))
  const admission = [...fresh, ...(previous.admission ?? []).filter((a) => !kinds.has(a.kind))]
    .map((a, i) => ({ a, i }))
    .sort((x, y) => (ORDER.indexOf(x.a.kind) - ORDER.indexOf(y.a.kind)) || x.i - y.i)
    .map(({ a }) => a)
  if (run.scenarios.length === 0) return { ...previous, admission }
  // Scenarios of the kinds this run measured replace the previous ones; the other kinds are kept (`--only metrics`).
  const measured = new Set(run.scenarios.map((sc) => sc.kind))
  const scenarios = [...run.scenarios, ...previous.scenarios.filter((sc) => !measured.has(sc.kind))]
    .map((sc, i) => ({ sc, i }))
    .sort((x, y) => (SCENARIO_ORDER.indexOf(x.sc.kind) - SCENARIO_ORDER.indexOf(y.sc.kind)) || x.i - y.i)
    .map(({ sc }) => sc)
  return { ...run, scenarios, admission }
}
