// The operations page's view of the cluster: one table row per node (its latest figures) and one small chart per
// figure with a line per node over the last minutes. Rows and charts are redrawn from the series (series.ts).
import { h } from '../shared/dom.js'
import { lineChart } from './chart.js'
import { NodeSeries, type Point, type StatsDoc } from './series.js'

/** How much history the charts show, ms. */
export const WINDOW_MS = 5 * 60_000
const COLORS = ['#4aa3ff', '#f39c12', '#2ecc71', '#e74c3c', '#9b59b6', '#1abc9c', '#e67e22', '#bdc3c7']

type Figure = 'clients' | 'joinsPerSec' | 'refusalsPerSec' | 'inPerSec' | 'outPerSec' | 'latencyMs' | 'lagP99Ms' | 'rssMB'
const CHARTS: ReadonlyArray<{ figure: Figure, title: string, minMax: number }> = [
  { figure: 'clients', title: 'Clients connected', minMax: 4 },
  { figure: 'joinsPerSec', title: 'Joins /s', minMax: 1 },
  { figure: 'refusalsPerSec', title: 'Refusals /s', minMax: 1 },
  { figure: 'inPerSec', title: 'Messages in /s', minMax: 1 },
  { figure: 'outPerSec', title: 'Messages out /s', minMax: 1 },
  { figure: 'latencyMs', title: 'Delivery latency, ms (mean)', minMax: 1 },
  { figure: 'lagP99Ms', title: 'Event-loop lag p99, ms', minMax: 10 },
  { figure: 'rssMB', title: 'Memory (RSS), MB', minMax: 64 }
]

const num = (v: number | null | undefined, digits = 0): string => v === null || v === undefined ? '–' : v.toFixed(digits)
const rate = (v: number | null): string => v === null ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(1)

/** The table and charts of the page. */
export class ClusterView {
  readonly #table: HTMLTableElement
  readonly #charts: HTMLElement
  readonly #summary: HTMLElement
  readonly #nodes = new Map<string, NodeSeries>()
  readonly #rows = new Map<string, HTMLTableRowElement>()
  #drawPending = false
  /** When the last document of any node arrived, ms since 1970 (0: none yet). */
  lastDocAt = 0

  constructor (table: HTMLTableElement, charts: HTMLElement, summary: HTMLElement) {
    this.#table = table
    this.#charts = charts
    this.#summary = summary
    this.clear()
  }

  /** Forgets every node (a new login). */
  clear (): void {
    this.#nodes.clear()
    this.#rows.clear()
    this.lastDocAt = 0
    const head = ['Node', 'Store', 'Clients', 'Viewers', 'Publishers', 'Operators', 'Transports', 'Joins/s', 'Refused/s', 'In/s', 'Out/s', 'Latency ms', 'Lag p99 ms', 'Heap / RSS MB', 'Up']
    this.#table.replaceChildren(h('thead', {}, h('tr', {}, ...head.map((t) => h('th', { scope: 'col' }, t)))), h('tbody'))
    this.#charts.replaceChildren()
    this.#summary.textContent = ''
  }

  /** A statistics document of a node (`$SYS` or `$admin`). */
  add (doc: StatsDoc): void {
    const series = this.#series(doc.id)
    if (series.add(doc) === null) return
    this.lastDocAt = Date.now()
    this.#fillRow(series)
    this.#scheduleDraw()
  }

  /** The live nodes as a node knows them (`$admin` answers): rows for those not heard from yet. */
  knownNodes (ids: readonly string[]): void {
    for (const id of ids) if (!this.#nodes.has(id)) this.#fillRow(this.#series(id))
  }

  /** Once a second: freshness of every row. */
  tick (): void {
    for (const series of this.#nodes.values()) this.#fillRow(series)
  }

  #series (id: string): NodeSeries {
    let series = this.#nodes.get(id)
    if (series === undefined) {
      series = new NodeSeries(id, WINDOW_MS)
      this.#nodes.set(id, series)
      const ids = [...this.#nodes.keys()].sort()
      const row = h('tr', { 'data-node': id })
      this.#rows.set(id, row)
      const body = this.#table.tBodies[0]
      body.replaceChildren(...ids.map((n) => this.#rows.get(n) as HTMLTableRowElement))
    }
    return series
  }

  #color (id: string): string {
    return COLORS[[...this.#nodes.keys()].sort().indexOf(id) % COLORS.length]
  }

  #fillRow (series: NodeSeries): void {
    const row = this.#rows.get(series.id)
    const p = series.latest
    const doc = series.last
    if (row === undefined) return
    const fresh = series.fresh()
    row.dataset.fresh = String(p !== undefined && fresh)
    const ago = p === undefined ? 'waiting for figures' : fresh ? '' : `silent for ${Math.round((Date.now() - series.seenAt) / 1000)} s`
    const cell = (k: string, text: string, cls?: string): HTMLTableCellElement => h('td', { 'data-k': k, class: cls }, text)
    const transports = Object.entries(doc?.clients.transport ?? {}).filter(([, n]) => n > 0).map(([t, n]) => `${t} ${n}`).join(' · ')
    const store = p === undefined ? '' : p.redis === null ? 'embedded' : p.redis ? 'Redis up' : 'REDIS DOWN'
    row.replaceChildren(
      h('td', { 'data-k': 'node' }, h('span', { class: 'swatch' }, '■ '), series.id, ago === '' ? null : h('div', { class: 'small' }, ago)),
      cell('store', store, p?.redis === false ? 'down' : p?.redis === true ? 'ok' : undefined),
      cell('clients', num(p?.clients)),
      cell('viewers', num(p?.viewers)),
      cell('publishers', num(p?.publishers)),
      cell('operators', num(p?.operators)),
      cell('transports', transports),
      cell('joins', p === undefined ? '–' : rate(p.joinsPerSec)),
      cell('refusals', p === undefined ? '–' : rate(p.refusalsPerSec)),
      cell('in', p === undefined ? '–' : rate(p.inPerSec)),
      cell('out', p === undefined ? '–' : rate(p.outPerSec)),
      cell('latency', p === undefined || p.latencyP99Ms === null ? '–' : `${num(p.latencyMs, 1)} (p99 ≤ ${num(p.latencyP99Ms, 1)})`),
      cell('lag', num(p?.lagP99Ms, 1)),
      cell('memory', p === undefined ? '–' : `${num(p.heapMB)} / ${num(p.rssMB)}`),
      cell('uptime', doc?.uptimeSeconds === undefined ? '–' : uptime(doc.uptimeSeconds)))
    const swatch = row.querySelector<HTMLElement>('.swatch')
    if (swatch !== null) swatch.style.color = this.#color(series.id)
    this.#summarize()
  }

  #summarize (): void {
    const all = [...this.#nodes.values()]
    const live = all.filter((s) => s.latest !== undefined && s.fresh())
    const clients = live.reduce((a, s) => a + (s.latest?.clients ?? 0), 0)
    const out = live.reduce((a, s) => a + (s.latest?.outPerSec ?? 0), 0)
    this.#summary.textContent = `${live.length} of ${all.length} node${all.length === 1 ? '' : 's'} reporting · ${clients} clients · ${rate(out)} messages out/s · charts: up to the last ${WINDOW_MS / 60_000} minutes`
  }

  #scheduleDraw (): void {
    if (this.#drawPending) return
    this.#drawPending = true
    setTimeout(() => {
      this.#drawPending = false
      this.#draw()
    }, 250)
  }

  #draw (): void {
    const now = Date.now()
    const nodes = [...this.#nodes.values()].sort((a, b) => a.id.localeCompare(b.id))
    // The last WINDOW_MS, or since the first figure when the page has less (a fresh login shows what it has).
    const oldest = Math.min(...nodes.map((s) => s.points[0]?.ts ?? now))
    const from = Math.max(now - WINDOW_MS, Math.min(oldest, now - 10_000))
    this.#charts.replaceChildren(...CHARTS.map(({ figure, title, minMax }) => {
      const lines = nodes.map((s) => ({ color: this.#color(s.id), points: s.points.map((p: Point) => [p.ts, p[figure]] as const) }))
      const legend = nodes.map((s) => {
        const v = s.latest?.[figure]
        return h('span', { class: 'legend' }, h('span', { class: 'swatch' }, '■ '), `${s.id} ${v === undefined || v === null ? '–' : figure === 'clients' ? String(v) : rate(v)}  `)
      })
      legend.forEach((el, i) => { (el.firstChild as HTMLElement).style.color = this.#color(nodes[i].id) })
      return h('figure', { class: 'chart', 'data-figure': figure }, h('h3', {}, title), lineChart(lines, from, now, { minMax }), h('figcaption', {}, ...legend))
    }))
  }
}

/** `3 h 12 min`, `4 min`, `12 s`. */
function uptime (seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`
}
