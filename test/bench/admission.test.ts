// Tests the benchmark report's Admission section: entries rendered with their date, parameters, tables (each cell in
// its column's format), notes and targets; partial runs keeping what they did not measure (carryOver); the storm
// entry's target (viewers' p99 during the storm at most twice the p99 before).
import { describe, it, expect } from 'vitest'
import { renderMarkdown, admissionSection } from '../../bench/lib/report.js'
import { carryOver, stormEntry } from '../../bench/lib/admission-tables.js'
import type { AdmissionResult, BenchRun } from '../../bench/lib/results.js'
import type { StormOptions, StormRun } from '../../bench/storm.js'

const entry = (kind: AdmissionResult['kind'], title: string): AdmissionResult => ({
  kind, title, date: '2026-12-07T10:20:30.000Z', tribune: '0.1.0 (abc1234)', quick: false, params: { viewers: 1000 }, notes: [], targets: [], tables: []
})

const herd: AdmissionResult = {
  ...entry('herd', 'reconnect herd, 5,000 viewers'),
  quick: true,
  tables: [{
    caption: 'Herd | figures',
    columns: [{ header: 'Case', format: 'text' }, { header: 'Count', format: 'int' }, { header: 'p99 ms', format: 'one' }, { header: 'Share %', format: 'percent' },
      { header: 'RSS MiB', format: 'mib' }, { header: 'Cores', format: 'two' }, { header: 'Refused', format: 'text' }],
    rows: [['node A', 12345.6, 3.14159, 0.9876, 200 * 1048576, 0.5, 'rate 12'], ['node B', null, 7, 1, 0, 1.234, null]]
  }],
  notes: ['all 5,000 back within 40 s'],
  targets: [{ what: 'herd back', target: '<= 60 s', reached: '40 s', met: true }]
}

const run: BenchRun = {
  date: '2026-12-01T00:00:00.000Z',
  quick: false,
  machine: { cpus: 2, cpuModel: 'EPYC', memoryGiB: 24, os: 'Debian', node: 'v20', openFileLimit: 20000 },
  versions: { tribune: '0.1.0' },
  seconds: 300,
  scenarios: [{ kind: 'memory', title: 'idle memory', params: {}, brokers: [{ broker: 'tribune', bytesPerViewer: 12000 }], targets: [] }],
  admission: [entry('storm', 'join storm'), herd]
}

/** The table row whose first cell is `first`, as trimmed cells. */
function row (text: string, first: string): string[] {
  const line = text.split('\n').find((l) => l.startsWith(`| ${first} |`))
  expect(line).toBeDefined()
  return (line as string).split('|').slice(1, -1).map((c) => c.trim())
}

describe('the Admission section', () => {
  const markdown = renderMarkdown(run, 'results.svg')

  it('follows the targets, one subsection per entry with its date, version and parameters', () => {
    expect(markdown.indexOf('## Targets')).toBeLessThan(markdown.indexOf('## Admission'))
    expect(markdown.indexOf('### join storm')).toBeLessThan(markdown.indexOf('### reconnect herd, 5,000 viewers'))
    expect(markdown).toContain('Measured 2026-12-07 10:20 UTC, tribune 0.1.0 (abc1234). Parameters: `viewers=1000`')
    expect(markdown).toContain('tribune 0.1.0 (abc1234); a `--quick` run: indicative figures only.')
  })

  it('writes each cell in its column\'s format, a missing figure as a dash, and escapes the caption', () => {
    expect(markdown).toContain('Herd \\| figures\n')
    expect(markdown).toContain('| Case | Count | p99 ms | Share % | RSS MiB | Cores | Refused |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    expect(row(markdown, 'node A')).toEqual(['node A', '12,346', '3.1', '98.8', '200', '0.50', 'rate 12'])
    expect(row(markdown, 'node B')).toEqual(['node B', '–', '7.0', '100.0', '0', '1.23', '–'])
  })

  it('lists notes and the entry\'s targets', () => {
    expect(markdown).toContain('- all 5,000 back within 40 s\n')
    expect(row(markdown, 'herd back')).toEqual(['herd back', '<= 60 s', '40 s', 'met'])
  })

  it('is absent without entries', () => {
    expect(admissionSection(undefined)).toEqual([])
    expect(renderMarkdown({ ...run, admission: [] }, 'x.svg')).not.toContain('## Admission')
  })
})

describe('carryOver', () => {
  it('replaces the entries of the kinds measured, keeps the others, in the section\'s order', () => {
    const fresh = entry('storm', 'new storm')
    const merged = carryOver(run, { ...run, date: '2026-12-08T00:00:00.000Z', scenarios: [], admission: [fresh, entry('join-capacity', 'capacity')] })
    expect(merged.admission?.map((a) => a.title)).toEqual(['capacity', 'new storm', 'reconnect herd, 5,000 viewers'])
    expect(merged.date).toBe(run.date) // an admission-only run keeps the scenarios and the date of the run before
    expect(merged.scenarios).toBe(run.scenarios)
  })

  it('keeps the Admission entries through a run of the other scenarios', () => {
    const later: BenchRun = { ...run, date: '2026-12-09T00:00:00.000Z', admission: [] }
    const merged = carryOver(run, later)
    expect(merged.date).toBe(later.date)
    expect(merged.admission).toEqual(run.admission)
    expect(carryOver(undefined, later)).toBe(later)
  })

  it('keeps the scenarios of the kinds a partial run did not measure (--only metrics --write)', () => {
    const memory = run.scenarios[0]
    const fanout = { ...memory, kind: 'fanout' as const, title: 'fan-out' }
    const before: BenchRun = { ...run, scenarios: [fanout, memory, { ...memory, kind: 'metrics', title: 'old metrics' }] }
    const merged = carryOver(before, { ...run, date: '2026-12-09T00:00:00.000Z', scenarios: [{ ...memory, kind: 'metrics', title: 'new metrics' }], admission: [] })
    expect(merged.scenarios.map((sc) => sc.title)).toEqual(['fan-out', memory.title, 'new metrics'])
    expect(merged.date).toBe('2026-12-09T00:00:00.000Z')
    expect(merged.admission).toEqual(run.admission)
  })
})

describe('stormEntry', () => {
  const opts: StormOptions = { viewers: 1000, before: 10, seconds: 20, factor: 10, rate: 100, burst: 50, transport: 'ws', drainCap: 300, offCap: 60, off: true, history: 20 }
  const window = (p99Ms: number): StormRun['before'] => ({ p50Ms: 1, p99Ms, maxMs: p99Ms, received: 100, expected: 100 })
  const stormRun = (admission: 'on' | 'off', before: number, during: number): StormRun => ({
    admission, askedRate: 1000, arrivedRate: 1000, attemptRate: 1500, nodeSeenRate: 1480, generatorCores: 0.8, generatorTimerLagMs: 3, generatorHeld: 0,
    brokerCores: 0.4, before: window(before), during: window(during), after: window(before), peakRssBytes: 100 * 1048576, peakLagMs: 12, peakHealthzMs: 8,
    healthzUnanswered: 0, healthzAnswered: 100, refused: { rate: 18000, overload: 0 }, refusedConnack: 0, refused503: 18000, errors: 0, timeouts: 0, arrived: 20000,
    joined: 20000, refusedThenJoined: 18000, drainMs: 185_000, left: 0, joinP50Ms: 90_000, joinP99Ms: 190_000, viewersDropped: 0
  })

  it('meets its target when the p99 during the storm is at most twice the p99 before', () => {
    const met = stormEntry([stormRun('on', 20, 40)], opts, { date: run.date, tribune: '0.1.0', quick: false })
    expect(met.targets).toEqual([{ what: 'viewers\' p99 during a storm of 10 x --max-conn-rate (limits on)', target: '<= 2 x p99 before', reached: '2.00 x (40.0 vs 20.0 ms)', met: true }])
    expect(stormEntry([stormRun('on', 20, 41)], opts, { date: run.date, tribune: '0.1.0', quick: false }).targets[0].met).toBe(false)
  })

  it('has a row per node, the refusals by reason and the drain in seconds', () => {
    const e = stormEntry([stormRun('on', 20, 30), stormRun('off', 20, 900)], opts, { date: run.date, tribune: '0.1.0', quick: false })
    const markdown = admissionSection([e]).join('\n')
    expect(row(markdown, 'admission off')[4]).toBe('900.0') // the viewers' table comes first: p99 during
    const node = markdown.slice(markdown.indexOf('The node during the storm'))
    expect(row(node, 'limits on (rate 100/s, burst 50)')).toContain('rate 18,000')
    expect(row(node, 'limits on (rate 100/s, burst 50)')).toContain('185.0')
    expect(e.notes.some((n) => n.includes('the last refused one 185 s after the storm (at best 180 s'))).toBe(true)
  })
})
