// What the operations page shows of each node, from its `$SYS/<node-id>/stats` documents (README "Monitoring"; the
// same document `$admin` node.stats answers): the figures of the latest document, and per-second rates from two
// successive ones (counters count since the node started), kept for the last minutes. Pure, tested on its own.

/** The fields of the statistics document the page reads (broker/src/metrics/stats.ts has them all). */
export interface StatsDoc {
  id: string
  /** When the node read its figures, ms since 1970. */
  ts: number
  uptimeSeconds?: number
  clients: { connected: number, transport: Record<string, number>, role: Record<string, number>, connects: number }
  connections: { refused: Record<string, number>, shed: number }
  connect: { refused: Record<string, number> }
  messages: { received: number, sent: number }
  store: { kind: string, reachable: boolean }
  eventLoop: { delayP99Seconds: number, delayMaxSeconds: number }
  memory: { heapUsedBytes: number, rssBytes: number }
  latency: { publishToDelivery: { count: number, meanSeconds: number, p99Seconds: number } }
}

/** One point of a node's history. */
export interface Point {
  ts: number
  clients: number
  viewers: number
  publishers: number
  operators: number
  /** Per second since the previous document (null for a node's first document, or after it restarted). */
  joinsPerSec: number | null
  refusalsPerSec: number | null
  inPerSec: number | null
  outPerSec: number | null
  /** Mean publish-to-delivery time of the messages timed since the previous document, ms (null: none timed). */
  latencyMs: number | null
  /** Since the node started, ms (the upper bound of the histogram bucket holding the 99th percentile); null: none timed. */
  latencyP99Ms: number | null
  lagP99Ms: number
  lagMaxMs: number
  heapMB: number
  rssMB: number
  /** Redis reachable (a cluster member), the embedded store (null). */
  redis: boolean | null
}

/** Reads a payload as a statistics document; null when it is not one. */
export function parseStats (payload: unknown): StatsDoc | null {
  if (payload === null || typeof payload !== 'object') return null
  const d = payload as Partial<StatsDoc>
  if (typeof d.id !== 'string' || typeof d.ts !== 'number' || typeof d.clients?.connected !== 'number') return null
  if (d.messages === undefined || d.memory === undefined || d.eventLoop === undefined || d.store === undefined) return null
  return d as StatsDoc
}

const sum = (r: Record<string, number> | undefined): number => Object.values(r ?? {}).reduce((a, b) => a + b, 0)

/** Refusals counted by a document: admission control's, the CONNECTs refused, and the connections shed. */
export function refusals (d: StatsDoc): number {
  return sum(d.connections?.refused) + sum(d.connect?.refused) + (d.connections?.shed ?? 0)
}

/** The point of `doc`, its rates taken against `prev` (the node's previous document, if any). */
export function pointOf (doc: StatsDoc, prev: StatsDoc | undefined): Point {
  const dt = prev === undefined ? 0 : (doc.ts - prev.ts) / 1000
  // A counter that went down: the node restarted under the same id; no rate across it.
  const rate = (now: number, before: number | undefined): number | null =>
    prev === undefined || before === undefined || dt <= 0 || now < before ? null : (now - before) / dt
  const lat = doc.latency?.publishToDelivery
  const prevLat = prev?.latency?.publishToDelivery
  let latencyMs: number | null = null
  if (lat !== undefined && prevLat !== undefined && lat.count > prevLat.count) {
    latencyMs = ((lat.meanSeconds * lat.count - prevLat.meanSeconds * prevLat.count) / (lat.count - prevLat.count)) * 1000
    if (latencyMs < 0) latencyMs = null // rounding of the means, or a restart
  }
  const role = doc.clients.role ?? {}
  return {
    ts: doc.ts,
    clients: doc.clients.connected,
    viewers: role.viewer ?? 0,
    publishers: role.publisher ?? 0,
    operators: role.operator ?? 0,
    joinsPerSec: rate(doc.clients.connects, prev?.clients.connects),
    refusalsPerSec: rate(refusals(doc), prev === undefined ? undefined : refusals(prev)),
    inPerSec: rate(doc.messages.received, prev?.messages.received),
    outPerSec: rate(doc.messages.sent, prev?.messages.sent),
    latencyMs,
    latencyP99Ms: lat === undefined || lat.count === 0 ? null : lat.p99Seconds * 1000,
    lagP99Ms: doc.eventLoop.delayP99Seconds * 1000,
    lagMaxMs: doc.eventLoop.delayMaxSeconds * 1000,
    heapMB: doc.memory.heapUsedBytes / 1048576,
    rssMB: doc.memory.rssBytes / 1048576,
    redis: doc.store.kind === 'redis' ? doc.store.reachable : null
  }
}

/** One node as the page knows it: its latest document and the points of the last `windowMs`. */
export class NodeSeries {
  readonly id: string
  last: StatsDoc | undefined
  points: Point[] = []
  /** When a document of this node last arrived, ms since 1970 (page clock). */
  seenAt = 0
  readonly #windowMs: number

  constructor (id: string, windowMs: number) {
    this.id = id
    this.#windowMs = windowMs
  }

  /**
   * Adds a document (from `$SYS` or an `$admin` answer); one not newer than the latest is ignored (the same figures
   * reach the page both ways).
   * @returns the new point, or null when ignored
   */
  add (doc: StatsDoc, now = Date.now()): Point | null {
    if (this.last !== undefined && doc.ts <= this.last.ts) return null
    const point = pointOf(doc, this.last)
    this.last = doc
    this.seenAt = now
    this.points.push(point)
    const from = doc.ts - this.#windowMs
    while (this.points.length > 0 && this.points[0].ts < from) this.points.shift()
    return point
  }

  /** The latest point, if any. */
  get latest (): Point | undefined {
    return this.points[this.points.length - 1]
  }

  /** Typical time between two documents, ms (the node's --sys-interval), or undefined with fewer than two. */
  get intervalMs (): number | undefined {
    const n = this.points.length
    return n < 2 ? undefined : (this.points[n - 1].ts - this.points[0].ts) / (n - 1)
  }

  /**
   * True while documents keep coming: the last one arrived within 3 intervals (at least 15 s; 35 s before the
   * interval is known).
   */
  fresh (now = Date.now()): boolean {
    const interval = this.intervalMs
    return now - this.seenAt <= (interval === undefined ? 35_000 : Math.max(15_000, 3 * interval))
  }
}
