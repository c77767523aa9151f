/**
 * Turns a benchmark run (bench/lib/results.ts) into the text of bench/RESULTS.md and a self-contained SVG chart.
 * Pure functions: nothing is read or written here, the caller writes the files.
 */
import type { AdmissionResult, BenchRun, BrokerFigures, FigureFormat, FigureTable, ScenarioResult } from './results.js'

const numberFormat = (min: number, max: number): Intl.NumberFormat =>
  new Intl.NumberFormat('en-US', { minimumFractionDigits: min, maximumFractionDigits: max })
const INT = numberFormat(0, 0)
const ONE = numberFormat(1, 1)
const UP_TO_ONE = numberFormat(0, 1)
const int = (n: number): string => INT.format(n)
const one = (n: number): string => ONE.format(n)

// ---- Markdown ----

interface Column { header: string, value: (f: BrokerFigures) => number | undefined, format: (n: number) => string }

/** Every figure a broker row may have, in table order; a scenario's table shows only the columns it has. */
const COLUMNS: Column[] = [
  { header: 'Deliveries/s', value: (f) => f.deliveriesPerSecond, format: int },
  { header: 'Rate msg/s', value: (f) => f.rate, format: int },
  { header: 'p50 ms', value: (f) => f.p50Ms, format: one },
  { header: 'p99 ms', value: (f) => f.p99Ms, format: one },
  { header: 'Max ms', value: (f) => f.maxMs, format: one },
  { header: 'Delivered %', value: (f) => f.deliveredShare, format: (n) => one(n * 100) },
  { header: 'Joins/s', value: (f) => f.joinsPerSecond, format: int },
  { header: 'Last join ms', value: (f) => f.lastJoinMs, format: int },
  { header: 'Messages/join', value: (f) => f.messagesPerJoin, format: (n) => UP_TO_ONE.format(n) },
  { header: 'Broker CPU µs/delivery', value: (f) => f.cpuUsPerDelivery, format: (n) => TWO.format(n) },
  { header: 'Broker CPU µs/join', value: (f) => f.cpuUsPerJoin, format: int },
  { header: 'Generator CPU µs/join', value: (f) => f.generatorCpuUsPerJoin, format: int },
  { header: 'Cold joins/s', value: (f) => f.coldJoinsPerSecond, format: int },
  { header: 'Cold broker CPU µs/join', value: (f) => f.coldCpuUsPerJoin, format: int },
  { header: 'Memory/viewer', value: (f) => f.bytesPerViewer, format: (n) => `${one(n / 1024)} KB` },
  { header: 'RSS MiB', value: (f) => f.rssBytes, format: (n) => int(n / 1048576) }
]

/** Escapes what would break a table cell or read as an HTML tag. */
const TWO = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2, minimumFractionDigits: 2 })

const md = (s: string): string => s.replace(/\|/g, '\\|').replace(/<(?=[A-Za-z/!?])/g, '&lt;').replace(/\n/g, ' ')

/** A GitHub table; columns from index `rightFrom` on are right-aligned (numbers). */
function table (headers: string[], rows: string[][], rightFrom = headers.length): string[] {
  const line = (cells: string[]): string => `| ${cells.map(md).join(' | ')} |`
  const rule = `| ${headers.map((_, i) => (i >= rightFrom ? '---:' : '---')).join(' | ')} |`
  return [line(headers), rule, ...rows.map(line), '']
}

function when (iso: string): string {
  const t = Date.parse(iso)
  return Number.isNaN(t) ? iso : `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

function header (run: BenchRun): string[] {
  const m = run.machine
  return [
    '# Tribune benchmark results', '',
    `Run of ${when(run.date)}, took ${int(run.seconds)} s; ` +
      (run.quick ? 'a `--quick` run: indicative figures only.' : 'a full run (not `--quick`).'), '',
    '## Machine', '',
    `- CPUs: ${m.cpus} × ${md(m.cpuModel)}`,
    `- Memory: ${one(m.memoryGiB)} GiB`,
    `- OS: ${md(m.os)}`,
    `- Node: ${md(m.node)}`,
    `- Open-file limit: ${int(m.openFileLimit)}`, '',
    '## Versions', '',
    ...table(['Software', 'Version'], Object.entries(run.versions))
  ]
}

function scenarioSection (s: ScenarioResult): string[] {
  const params = Object.entries(s.params).map(([k, v]) => `\`${k}=${v}\``).join(', ')
  const columns = COLUMNS.filter((c) => s.brokers.some((f) => c.value(f) !== undefined))
  const rows = s.brokers.map((f) => [f.broker, ...columns.map((c) => {
    const v = c.value(f)
    return v === undefined ? '–' : c.format(v)
  })])
  return [
    `## ${md(s.title)}`, '',
    ...(params === '' ? [] : [`Parameters: ${params}`, '']),
    ...(rows.length > 0 && columns.length > 0 ? table(['Broker', ...columns.map((c) => c.header)], rows, 1) : []),
    ...(s.ratio === undefined ? [] : [`${md(s.ratio.of ?? 'Tribune / Mosquitto')} ${md(s.ratio.metric)}: ${s.ratio.value.toFixed(2)} x`, '']),
    ...roundsLine(s),
    ...(s.skipped === undefined ? [] : [`**Skipped:** ${md(s.skipped)}`, ''])
  ]
}

/** The joins/s of every measured round, per broker (the table shows each broker's median round). */
function roundsLine (s: ScenarioResult): string[] {
  const withRounds = s.brokers.filter((f) => (f.joinsRounds?.length ?? 0) > 1)
  if (withRounds.length === 0) return []
  return [`Joins/s of each measured round (the table shows the median one): ${withRounds.map((f) => `${md(f.broker)} ${(f.joinsRounds ?? []).map(int).join(' / ')}`).join('; ')}`, '']
}

function targetsSection (scenarios: ScenarioResult[]): string[] {
  const rows = scenarios.flatMap((s) => s.targets).map((t) => [t.what, t.target, t.reached, t.met ? 'met' : 'missed'])
  return ['## Targets', '', ...(rows.length > 0 ? table(['What', 'Target', 'Reached', 'Met'], rows) : ['No targets were checked.', ''])]
}

const FORMATS: Record<FigureFormat, (n: number) => string> = {
  int, one, two: (n) => TWO.format(n), percent: (n) => one(n * 100), mib: (n) => int(n / 1048576), text: (n) => String(n)
}

function figureTable (t: FigureTable): string[] {
  const rows = t.rows.map((r) => r.map((v, i) => v === null ? '–' : typeof v === 'string' || i === 0 ? String(v) : FORMATS[t.columns[i]?.format ?? 'text'](v)))
  return [...(t.caption === undefined ? [] : [md(t.caption), '']), ...table(t.columns.map((c) => c.header), rows, 1)]
}

function admissionEntry (a: AdmissionResult): string[] {
  const params = Object.entries(a.params).map(([k, v]) => `\`${k}=${v}\``).join(', ')
  const targets = a.targets.map((t) => [t.what, t.target, t.reached, t.met ? 'met' : 'missed'])
  return [
    `### ${md(a.title)}`, '',
    `Measured ${when(a.date)}, tribune ${md(a.tribune)}${a.quick ? '; a `--quick` run: indicative figures only' : ''}.` + (params === '' ? '' : ` Parameters: ${params}`), '',
    ...(a.skipped === undefined ? a.tables.flatMap(figureTable) : [`**Skipped:** ${md(a.skipped)}`, '']),
    ...(a.notes.length === 0 ? [] : [...a.notes.map((n) => `- ${md(n)}`), '']),
    ...(targets.length === 0 ? [] : table(['What', 'Target', 'Reached', 'Met'], targets))
  ]
}

/**
 * The "Admission" section: one subsection per entry (its date and version, parameters, its tables with their
 * captions, notes as a list, its targets), in the order given; nothing when there are none.
 */
export function admissionSection (entries: AdmissionResult[] | undefined): string[] {
  if (entries === undefined || entries.length === 0) return []
  return [
    '## Admission', '',
    'What one node does beyond its limits (README, "Admission control"): what a join and a refusal cost, and storms of new ' +
      'connections while viewers watch. Each scenario gives the time it was measured: `npm run bench -- --only storm --write` ' +
      'replaces these entries and keeps the rest of this file.', '',
    ...entries.flatMap(admissionEntry)
  ]
}

/**
 * The full text of bench/RESULTS.md for `run`: title, date, quick or full run, machine, versions table, an image
 * link to `chartFile` (a path relative to the Markdown file, e.g. "results.svg"), one section per scenario (its
 * parameters, a table with a row per broker and a column per figure the scenario has, the Tribune / Mosquitto ratio,
 * the reason it was skipped), a table of every target, then the "Admission" section ({@link admissionSection}). Numbers are en-US with thousands separators; latencies in
 * ms with one decimal, delivered share in % with one decimal, memory per viewer in KB (1,024 bytes) with one decimal,
 * RSS in MiB. Ends with a newline.
 */
export function renderMarkdown (run: BenchRun, chartFile: string): string {
  return [
    ...header(run),
    `![Throughput and p99 latency per scenario and broker](${chartFile.replace(/ /g, '%20')})`, '',
    ...run.scenarios.flatMap(scenarioSection),
    ...targetsSection(run.scenarios),
    ...admissionSection(run.admission)
  ].join('\n').replace(/\n+$/, '\n')
}

// ---- SVG ----

const WIDTH = 900
const LEFT = 170 // bars start here; broker names are right-aligned just before
const BAR_SPACE = 580 // the longest bar, leaving room for its value label
const BAR_H = 16
const BAR_GAP = 4
const GROUP_TITLE_H = 22
const GROUP_GAP = 10
const TARGET_COLOUR = '#d62728'

interface Bar { broker: string, value: number, label: string }
interface Group { title: string, bars: Bar[] }
interface Chart { title: string, groups: Group[], target?: { value: number, label: string } }
type Pick = (s: ScenarioResult, f: BrokerFigures) => Bar | undefined

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  .replace(/"/g, '&quot;').replace(/'/g, '&apos;')
const round1 = (n: number): number => Math.round(n * 10) / 10
const text = (x: number, y: number, s: string, attrs = ''): string => `<text x="${x}" y="${y}"${attrs === '' ? '' : ' ' + attrs}>${xml(s)}</text>`

function colour (broker: string): string {
  if (broker === 'mosquitto') return '#888'
  if (broker === 'tribune') return '#1f77b4'
  return broker.startsWith('tribune-cluster-') ? '#ff7f0e' : '#2ca02c'
}

const paced = (s: ScenarioResult): boolean => s.kind === 'fanout' || s.kind === 'cluster'
const bar = (broker: string, value: number | undefined, label: (v: number) => string): Bar | undefined =>
  value === undefined ? undefined : { broker, value, label: label(value) }

const throughput: Pick = (s, f) => paced(s) ? bar(f.broker, f.deliveriesPerSecond, (v) => `${int(v)}/s`) : undefined
const joinRate: Pick = (s, f) => s.kind === 'joins' ? bar(f.broker, f.joinsPerSecond, (v) => `${int(v)} joins/s`) : undefined
const memory: Pick = (s, f) => s.kind === 'memory' ? bar(f.broker, f.bytesPerViewer === undefined ? undefined : f.bytesPerViewer / 1024, (v) => `${one(v)} KB`) : undefined
const p99: Pick = (s, f) => paced(s) ? bar(f.broker, f.p99Ms, (v) => `${one(v)} ms`) : undefined

function groups (scenarios: ScenarioResult[], pick: Pick): Group[] {
  return scenarios
    .filter((s) => s.skipped === undefined)
    .map((s) => ({ title: s.title, bars: s.brokers.map((f) => pick(s, f)).filter((b): b is Bar => b !== undefined) }))
    .filter((g) => g.bars.length > 0)
}

function legend (brokers: string[]): string {
  const out = ['<g>']
  let x = 10
  for (const b of brokers) {
    out.push(`<rect x="${x}" y="8" width="12" height="12" fill="${colour(b)}"/>`, text(x + 16, 18, b))
    x += 40 + b.length * 7
  }
  return [...out, '</g>'].join('\n')
}

/** One grouped bar chart, drawn from y = `top`; returns its markup and height. */
function drawChart (chart: Chart, top: number): { svg: string, height: number } {
  const out = [`<g transform="translate(0,${top})">`, text(10, 16, chart.title, 'font-size="14" font-weight="bold"')]
  if (chart.groups.length === 0) return { svg: [...out, text(LEFT, 44, 'no data', 'fill="#666"'), '</g>'].join('\n'), height: 64 }
  const max = Math.max(chart.target?.value ?? 0, ...chart.groups.flatMap((g) => g.bars.map((b) => b.value)))
  const scale = max > 0 ? BAR_SPACE / max : 0
  let y = 28
  for (const g of chart.groups) {
    out.push('<g>', text(10, y + 14, g.title, 'font-weight="bold"'))
    y += GROUP_TITLE_H
    for (const b of g.bars) {
      const w = round1(Math.max(0, b.value) * scale)
      out.push(text(LEFT - 6, y + 12, b.broker, 'text-anchor="end"'),
        `<rect x="${LEFT}" y="${y}" width="${w}" height="${BAR_H}" fill="${colour(b.broker)}"><title>${xml(`${b.broker}: ${b.label}`)}</title></rect>`,
        text(LEFT + w + 4, y + 12, b.label))
      y += BAR_H + BAR_GAP
    }
    out.push('</g>')
    y += GROUP_GAP
  }
  if (chart.target !== undefined) {
    const x = round1(LEFT + chart.target.value * scale)
    out.push(`<line x1="${x}" y1="28" x2="${x}" y2="${y}" stroke="${TARGET_COLOUR}" stroke-width="1.5" stroke-dasharray="5 4"/>`,
      text(x, y + 12, chart.target.label, `fill="${TARGET_COLOUR}" text-anchor="middle"`))
    y += 16
  }
  return { svg: [...out, '</g>'].join('\n'), height: y + 10 }
}

/**
 * A self-contained SVG (900 px wide, no fonts, scripts or links) of `run`, four grouped horizontal bar charts one
 * above the other: (a) deliveries/s per fan-out and cluster scenario and broker; (b) p99 latency in ms per fan-out or
 * cluster scenario and broker, with a dashed line at the 50 ms target; (c) joins/s (target 2,000); (d) resident
 * memory per idle viewer in KB (target 12). Each chart scales its bars to its largest value or target; skipped
 * scenarios and missing figures are left out, and a chart with nothing to show says "no data". Returns the markup.
 */
export function renderChart (run: BenchRun): string {
  const charts: Chart[] = [
    { title: 'Fan-out: deliveries/s at saturation (higher is better)', groups: groups(run.scenarios, throughput) },
    { title: 'p99 latency at the paced rate, ms (lower is better)', groups: groups(run.scenarios, p99), target: { value: 50, label: 'target 50 ms' } },
    { title: 'Joins/s (higher is better)', groups: groups(run.scenarios, joinRate), target: { value: 2000, label: 'target 2,000/s' } },
    { title: 'Resident memory per idle viewer, KB (lower is better)', groups: groups(run.scenarios, memory), target: { value: 12, label: 'target 12 KB' } }
  ]
  const brokers = [...new Set(charts.flatMap((c) => c.groups.flatMap((g) => g.bars.map((b) => b.broker))))]
  const parts = [legend(brokers)]
  let y = 32
  for (const c of charts) {
    const drawn = drawChart(c, y)
    parts.push(drawn.svg)
    y += drawn.height + 12
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${y}" fill="#fff"/>`,
    ...parts,
    '</svg>'
  ].join('\n') + '\n'
}
