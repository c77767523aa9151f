/**
 * Test plumbing for `GET /metrics`: fetched over HTTP and parsed by a Prometheus text-format parser
 * (parse-prometheus-text-format, the port of the Prometheus Python client's parser), never by a regex here.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format'

/** One metric family as the parser gives it. */
export interface Family {
  name: string
  help: string
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
  metrics: Array<{ value?: string, labels?: Record<string, string>, buckets?: Record<string, string>, count?: string, sum?: string }>
}

/** A scrape: families by name. */
export type Scrape = Map<string, Family>

/**
 * GETs `url` (a node's `/metrics`) and parses it.
 * @throws when the answer is not 200 with the Prometheus text Content-Type, or does not parse
 */
export async function scrape (url: string): Promise<Scrape> {
  const res = await fetch(url)
  const text = await res.text()
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${text}`)
  const type = res.headers.get('content-type') ?? ''
  if (!type.startsWith('text/plain; version=0.0.4')) throw new Error(`GET ${url}: Content-Type ${type}, not Prometheus text 0.0.4`)
  const families = (parsePrometheusTextFormat as (text: string) => Family[])(text)
  return new Map(families.map((f) => [f.name, f]))
}

/**
 * The value of metric `name` summed over its series whose labels include `labels`; a histogram's count.
 * @throws when the scrape has no such metric
 */
export function value (s: Scrape, name: string, labels: Record<string, string> = {}): number {
  const family = s.get(name)
  if (family === undefined) throw new Error(`no metric ${name} in the scrape (has ${[...s.keys()].join(', ')})`)
  let total = 0
  for (const m of family.metrics) {
    if (!Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)) continue
    total += Number(family.type === 'HISTOGRAM' ? m.count : m.value)
  }
  return total
}
