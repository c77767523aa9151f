// Tests the benchmark report: the RESULTS.md text (formatted figures, columns per scenario, ratio, skipped reason,
// targets) and the SVG chart (well-formed, escaped, labelled, bar widths proportional to the values).
import { describe, it, expect } from 'vitest'
import { renderMarkdown, renderChart } from '../../bench/lib/report.js'
import type { BenchRun } from '../../bench/lib/results.js'

const MiB = 1048576

const run: BenchRun = {
  date: '2025-03-04T05:06:07.890Z',
  quick: true,
  machine: { cpus: 2, cpuModel: 'AMD EPYC 7B13', memoryGiB: 7.75, os: 'linux 6.1.0', node: 'v20.19.0', openFileLimit: 65536 },
  versions: { tribune: '0.1.0', aedes: '1.2.0', mosquitto: '2.0.18' },
  seconds: 312.4,
  scenarios: [
    {
      kind: 'fanout',
      title: 'fan-out, 1,000 WS viewers, QoS 0',
      params: { viewers: 1000, qos: 0, transport: 'ws' },
      brokers: [
        { broker: 'mosquitto', deliveriesPerSecond: 22400.4, rate: 11, p50Ms: 2.04, p99Ms: 12.34, maxMs: 20.01, deliveredShare: 1, rssBytes: 12 * MiB },
        { broker: 'tribune', deliveriesPerSecond: 41000, rate: 20, p50Ms: 3.21, p99Ms: 83.56, maxMs: 140.2, deliveredShare: 0.9987, rssBytes: 150 * MiB }
      ],
      ratio: { metric: 'deliveries/s', value: 1.8303 },
      targets: [
        { what: 'deliveries/s at 1,000 WS viewers vs Mosquitto', target: '>= 1.00 x Mosquitto', reached: '1.83 x', met: true },
        { what: 'p99 at 1,000 WS viewers', target: '<= 50 ms', reached: '83.6 ms', met: false }
      ]
    },
    {
      kind: 'fanout',
      title: 'fan-out, QoS 1 & payload < 1 KB',
      params: { viewers: 500, qos: 1 },
      brokers: [
        { broker: 'mosquitto', deliveriesPerSecond: 25000, p99Ms: 20 },
        { broker: 'tribune', deliveriesPerSecond: 30000, p99Ms: 40 }
      ],
      targets: []
    },
    {
      kind: 'joins',
      title: 'joins, 2,000 viewers',
      params: { viewers: 2000, history: 20 },
      brokers: [
        { broker: 'mosquitto', joinsPerSecond: 5000, lastJoinMs: 400, messagesPerJoin: 1.5 },
        { broker: 'tribune', joinsPerSecond: 4200.5, lastJoinMs: 2380.4, messagesPerJoin: 21, joinsRounds: [3900.2, 4200.5, 4410] }
      ],
      targets: [{ what: 'joins/s vs Mosquitto', target: '>= 0.50 x Mosquitto', reached: '0.84 x', met: true }]
    },
    {
      kind: 'memory',
      title: 'memory, 10,000 idle viewers',
      params: { viewers: 10000 },
      brokers: [
        { broker: 'mosquitto', bytesPerViewer: 3481.6, rssBytes: 45 * MiB },
        { broker: 'tribune', bytesPerViewer: 11776, rssBytes: 1234.5 * MiB }
      ],
      targets: []
    },
    {
      kind: 'cluster',
      title: 'cluster, 100,000 viewers',
      params: { viewers: 100000, nodes: 2 },
      brokers: [],
      targets: [],
      skipped: 'needs 100,000 connections, the open-file limit is 65,536'
    }
  ]
}

/** The section of the Markdown under the `## title` heading, up to the next heading. */
function section (markdown: string, title: string): string {
  const start = markdown.indexOf(`## ${title}\n`)
  expect(start).toBeGreaterThanOrEqual(0)
  const end = markdown.indexOf('\n## ', start + 3)
  return markdown.slice(start, end === -1 ? undefined : end)
}

/** The table row whose first cell is `first`, as trimmed cells. */
function row (text: string, first: string): string[] {
  const line = text.split('\n').find((l) => l.startsWith(`| ${first} |`))
  expect(line).toBeDefined()
  return (line as string).split('|').slice(1, -1).map((c) => c.trim())
}

/** Throws unless every tag closes in order and no `&` or `<` is left unescaped in text or attributes. */
function assertWellFormed (svg: string): void {
  const stack: string[] = []
  for (const m of svg.matchAll(/<(\/?)([A-Za-z]+)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    if (m[1] === '/') expect(stack.pop()).toBe(m[2])
    else if (m[4] !== '/') stack.push(m[2])
  }
  expect(stack).toEqual([])
  const textOnly = svg.replace(/<[^>]*>/g, '')
  expect(textOnly).not.toMatch(/&(?!(amp|lt|gt|quot|apos);)/)
  expect(textOnly).not.toContain('<')
}

/** Bar widths keyed by their tooltip ("broker: label"). */
function barWidths (svg: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const m of svg.matchAll(/<rect [^>]*width="([\d.]+)"[^>]*><title>([^<]*)<\/title><\/rect>/g)) out.set(m[2], Number(m[1]))
  return out
}

describe('renderMarkdown', () => {
  const markdown = renderMarkdown(run, 'results.svg')

  it('starts with the title, date, quick flag, machine and versions, then links the chart', () => {
    expect(markdown.startsWith('# Tribune benchmark results\n')).toBe(true)
    expect(markdown).toContain('Run of 2025-03-04 05:06 UTC, took 312 s; a `--quick` run')
    expect(markdown).toContain('- CPUs: 2 × AMD EPYC 7B13')
    expect(markdown).toContain('- Memory: 7.8 GiB')
    expect(markdown).toContain('- Node: v20.19.0')
    expect(markdown).toContain('- Open-file limit: 65,536')
    expect(markdown).toContain('| mosquitto | 2.0.18 |')
    expect(markdown).toContain('![Throughput and p99 latency per scenario and broker](results.svg)')
    expect(markdown.indexOf('## Versions')).toBeLessThan(markdown.indexOf('![')); expect(markdown.indexOf('![')).toBeLessThan(markdown.indexOf('## fan-out'))
    expect(markdown.endsWith('\n')).toBe(true)
    expect(markdown).not.toContain('## Admission') // a run without admission entries (test/bench/admission.test.ts)
    expect(renderMarkdown({ ...run, quick: false }, 'x.svg')).toContain('a full run (not `--quick`)')
  })

  it('formats fan-out figures with separators, one-decimal latency and the ratio', () => {
    const s = section(markdown, 'fan-out, 1,000 WS viewers, QoS 0')
    expect(s).toContain('Parameters: `viewers=1000`, `qos=0`, `transport=ws`')
    expect(s).toContain('| Broker | Deliveries/s | Rate msg/s | p50 ms | p99 ms | Max ms | Delivered % | RSS MiB |')
    expect(s).toContain('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    expect(row(s, 'tribune')).toEqual(['tribune', '41,000', '20', '3.2', '83.6', '140.2', '99.9', '150'])
    expect(row(s, 'mosquitto')).toEqual(['mosquitto', '22,400', '11', '2.0', '12.3', '20.0', '100.0', '12'])
    expect(s).toContain('Tribune / Mosquitto deliveries/s: 1.83 x')
  })

  it('shows only the columns a scenario has', () => {
    const joins = section(markdown, 'joins, 2,000 viewers')
    expect(joins).toContain('| Broker | Joins/s | Last join ms | Messages/join |')
    expect(row(joins, 'tribune')).toEqual(['tribune', '4,201', '2,380', '21'])
    expect(row(joins, 'mosquitto')).toEqual(['mosquitto', '5,000', '400', '1.5'])
    expect(joins).not.toContain('Tribune / Mosquitto')
    expect(joins).toContain('Joins/s of each measured round (the table shows the median one): tribune 3,900 / 4,201 / 4,410\n')

    const memory = section(markdown, 'memory, 10,000 idle viewers')
    expect(memory).toContain('| Broker | Memory/viewer | RSS MiB |')
    expect(row(memory, 'tribune')).toEqual(['tribune', '11.5 KB', '1,235'])
    expect(row(memory, 'mosquitto')).toEqual(['mosquitto', '3.4 KB', '45'])
  })

  it('gives the reason a scenario was skipped, without a table', () => {
    const s = section(markdown, 'cluster, 100,000 viewers')
    expect(s).toContain('**Skipped:** needs 100,000 connections, the open-file limit is 65,536')
    expect(s).not.toContain('| Broker |')
  })

  it('lists every target of every scenario, met or missed, in one table', () => {
    const s = section(markdown, 'Targets')
    expect(s).toContain('| What | Target | Reached | Met |')
    expect(row(s, 'deliveries/s at 1,000 WS viewers vs Mosquitto')).toEqual(['deliveries/s at 1,000 WS viewers vs Mosquitto', '>= 1.00 x Mosquitto', '1.83 x', 'met'])
    expect(row(s, 'p99 at 1,000 WS viewers')).toEqual(['p99 at 1,000 WS viewers', '<= 50 ms', '83.6 ms', 'missed'])
    expect(row(s, 'joins/s vs Mosquitto')[3]).toBe('met')
    expect(s.split('\n').filter((l) => l.startsWith('| ')).length).toBe(5) // header, rule, 3 targets
  })

  it('escapes pipes in table cells', () => {
    const piped = renderMarkdown({ ...run, versions: { 'a|b': '1' } }, 'c.svg')
    expect(piped).toContain('| a\\|b | 1 |')
  })
})

describe('renderChart', () => {
  const svg = renderChart(run)

  it('is one well-formed, self-contained svg element', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="900"')).toBe(true)
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true)
    expect(svg.match(/<g[\s>]/g)?.length).toBe(svg.match(/<\/g>/g)?.length)
    assertWellFormed(svg)
    expect(svg).not.toMatch(/<script|<image|href=|@import|url\(/)
  })

  it('labels groups and bars, escaping XML in titles, leaving out skipped and memory scenarios', () => {
    expect(svg).toContain('>fan-out, 1,000 WS viewers, QoS 0</text>')
    expect(svg).toContain('>fan-out, QoS 1 &amp; payload &lt; 1 KB</text>')
    expect(svg).not.toContain('QoS 1 & payload')
    expect(svg).toContain('>41,000/s</text>')
    expect(svg).toContain('>22,400/s</text>')
    expect(svg).toContain('>4,201 joins/s</text>')
    expect(svg).toContain('>83.6 ms</text>')
    expect(svg).toContain('>target 50 ms</text>')
    expect(svg).not.toContain('cluster, 100,000 viewers')
    expect(svg).toContain('>memory, 10,000 idle viewers</text>') // its own chart, in KB
    expect(svg).toContain('>11.5 KB</text>')
    expect(svg).toContain('>target 2,000/s</text>')
  })

  it('colours brokers consistently, with a legend', () => {
    expect(svg).toMatch(/<rect [^>]*fill="#888"\/>\n<text [^>]*>mosquitto<\/text>/)
    expect(svg).toMatch(/<rect [^>]*fill="#1f77b4"\/>\n<text [^>]*>tribune<\/text>/)
    expect(svg).toMatch(/width="[\d.]+" height="16" fill="#1f77b4"><title>tribune: 41,000\/s/)
    const cluster = renderChart({ ...run, scenarios: [{ ...run.scenarios[1], brokers: [{ broker: 'tribune-cluster-4', deliveriesPerSecond: 1 }, { broker: 'other', deliveriesPerSecond: 2 }] }] })
    expect(cluster).toContain('fill="#ff7f0e"><title>tribune-cluster-4: 1/s')
    expect(cluster).toContain('fill="#2ca02c"><title>other: 2/s')
  })

  it('draws bars proportional to their values, each chart scaled to its own maximum', () => {
    const w = barWidths(svg)
    expect(w.size).toBe(12) // 2 fan-out groups in throughput and in latency, 1 joins, 1 memory; 2 brokers each
    const tribune = w.get('tribune: 41,000/s') as number
    const mosquitto = w.get('mosquitto: 22,400/s') as number
    expect(tribune).toBe(580) // the largest throughput gets the full bar
    expect(tribune).toBeGreaterThan(mosquitto)
    expect(mosquitto / tribune).toBeCloseTo(22400.4 / 41000, 2)
    expect(w.get('mosquitto: 5,000 joins/s')).toBe(580) // joins have their own scale
    expect(w.get('tribune: 4,201 joins/s')).toBeCloseTo(580 * 4200.5 / 5000, 0)
    expect(w.get('tribune: 11.5 KB')).toBeCloseTo(580 * 11.5 / 12, 0) // memory: scaled to the 12 KB target
    const p99 = w.get('tribune: 83.6 ms') as number
    expect(p99).toBe(580) // the latency chart has its own scale
    expect(w.get('mosquitto: 12.3 ms')).toBeCloseTo(580 * 12.34 / 83.56, 0)
    expect(w.get('tribune: 40.0 ms')).toBeGreaterThan(w.get('mosquitto: 20.0 ms') as number)
  })

  it('draws the 50 ms target as a dashed line on the latency scale', () => {
    const line = svg.match(/<line x1="([\d.]+)"[^>]*stroke-dasharray/)
    expect(line).not.toBeNull()
    expect(Number(line?.[1])).toBeCloseTo(170 + 50 * 580 / 83.56, 0)
  })

  it('says "no data" for a chart with nothing to show', () => {
    const memoryOnly = renderChart({ ...run, scenarios: [run.scenarios[3], run.scenarios[4]] })
    expect(memoryOnly.match(/>no data<\/text>/g)?.length).toBe(3) // fan-out, latency, joins
    expect(memoryOnly.match(/stroke-dasharray/g)?.length).toBe(1) // the memory chart's 12 KB target
    assertWellFormed(memoryOnly)
  })
})
