/**
 * The node's prom-client registry, declared as one table: each row a Prometheus metric read from the statistics
 * document (metrics/stats.ts) when scraped, so counting stays a plain increment where things happen. Labels have
 * bounded values only (transport, role, reason, return code), never a client id or a topic. The two timings are
 * prom-client histograms fed as they are observed (metrics/timings.ts).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { CONNECT_REFUSALS } from './counters.js'
import type { StatsSnapshot } from './stats.js'
import { Timings } from './timings.js'

type Labels = Record<string, string>
/** A metric's value: one number, or one per label set. */
type Series = number | Array<[Labels, number]>

interface Row {
  name: string
  help: string
  type: 'counter' | 'gauge'
  labels?: string[]
  read: (s: StatsSnapshot) => Series
}

const byKey = (record: Record<string, number>, label: string): Array<[Labels, number]> =>
  Object.entries(record).map(([k, v]) => [{ [label]: k }, v])

/** Every counter and gauge of a node, in the order `GET /metrics` lists them. */
export const METRICS: readonly Row[] = [
  { name: 'tribune_info', help: 'Always 1; the labels name the node, its version and its store.', type: 'gauge', labels: ['node_id', 'version', 'store'], read: ({ stats: s }) => [[{ node_id: s.id, version: s.version, store: s.store.kind }, 1]] },
  { name: 'tribune_uptime_seconds', help: 'Seconds since the node started.', type: 'gauge', read: ({ stats: s }) => s.uptimeSeconds },
  {
    name: 'tribune_clients_connected',
    help: 'Clients connected (CONNECT accepted), by transport (mqtt, mqtts, ws, wss) and role (viewer, publisher, operator).',
    type: 'gauge',
    labels: ['transport', 'role'],
    read: (s) => [...s.clientsByTransportAndRole].map(([key, n]) => {
      const [transport, role] = key.split('/')
      return [{ transport, role }, n]
    })
  },
  { name: 'tribune_client_connects_total', help: 'Clients that completed CONNECT (CONNACK 0 sent).', type: 'counter', read: ({ stats: s }) => s.clients.connects },
  { name: 'tribune_client_disconnects_total', help: 'Connected clients that went away.', type: 'counter', read: ({ stats: s }) => s.clients.disconnects },
  { name: 'tribune_slow_consumers_disconnected_total', help: 'Connections closed because too many bytes waited to be sent to them (--max-queued-bytes).', type: 'counter', read: ({ stats: s }) => s.clients.slowConsumers },
  { name: 'tribune_connections_open', help: 'Network connections held (TCP, TLS, WebSocket), CONNECT sent or not.', type: 'gauge', read: ({ stats: s }) => s.connections.open },
  { name: 'tribune_connections_accepted_total', help: 'Network connections taken by admission control.', type: 'counter', read: ({ stats: s }) => s.connections.accepted },
  { name: 'tribune_connections_refused_total', help: 'Network connections refused by admission control (CONNACK 3, HTTP 503, TLS closed), by reason.', type: 'counter', labels: ['reason'], read: ({ stats: s }) => byKey(s.connections.refused, 'reason') },
  { name: 'tribune_connections_shed_total', help: 'Network connections closed at accept without an answer (beyond --max-refusal-rate).', type: 'counter', read: ({ stats: s }) => s.connections.shed },
  {
    name: 'tribune_connect_refused_total',
    help: 'CONNECT packets refused, by CONNACK return code and reason.',
    type: 'counter',
    labels: ['return_code', 'reason'],
    read: ({ stats: s }) => Object.entries(s.connect.refused).map(([reason, n]) => [{ return_code: String(CONNECT_REFUSALS[reason as keyof typeof CONNECT_REFUSALS]), reason }, n])
  },
  { name: 'tribune_messages_received_total', help: 'PUBLISH packets received from clients.', type: 'counter', read: ({ stats: s }) => s.messages.received },
  { name: 'tribune_messages_sent_total', help: 'PUBLISH packets sent to clients (deliveries).', type: 'counter', read: ({ stats: s }) => s.messages.sent },
  { name: 'tribune_feed_messages_stored_total', help: 'Feed messages stamped and stored by this node.', type: 'counter', read: ({ stats: s }) => s.messages.feedStored },
  { name: 'tribune_publish_refused_total', help: 'PUBLISH packets refused (the connection is closed), by reason.', type: 'counter', labels: ['reason'], read: ({ stats: s }) => byKey(s.messages.refused, 'reason') },
  { name: 'tribune_bytes_received_total', help: 'Bytes received from clients.', type: 'counter', read: ({ stats: s }) => s.bytes.received },
  { name: 'tribune_bytes_sent_total', help: 'Bytes sent to clients.', type: 'counter', read: ({ stats: s }) => s.bytes.sent },
  { name: 'tribune_subscriptions', help: 'Topic filters held by connected clients, $replay ones included.', type: 'gauge', read: ({ stats: s }) => s.subscriptions.count },
  { name: 'tribune_replay_viewers', help: '$replay subscriptions being served.', type: 'gauge', read: ({ stats: s }) => s.subscriptions.replayViewers },
  { name: 'tribune_feeds_cached', help: 'Feeds whose history this node holds in memory.', type: 'gauge', read: ({ stats: s }) => s.feeds.cached },
  { name: 'tribune_retained_messages', help: 'Topics with a retained message.', type: 'gauge', read: ({ stats: s }) => s.retained.count },
  { name: 'tribune_session_queue_dropped_total', help: 'Messages dropped because a persistent session\'s queue was full.', type: 'counter', read: ({ stats: s }) => s.sessions.queueDrops },
  { name: 'tribune_store_reachable', help: '1 while the node reaches its store (Redis for a cluster member), else 0.', type: 'gauge', read: ({ stats: s }) => s.store.reachable ? 1 : 0 },
  { name: 'tribune_redis_foreign_messages_total', help: 'Messages on the cluster\'s Redis channels that were not Tribune\'s, dropped.', type: 'counter', read: ({ stats: s }) => s.redis?.foreignMessages ?? 0 },
  { name: 'tribune_event_loop_delay_p50_seconds', help: 'Median event-loop delay over the last 10 s.', type: 'gauge', read: ({ stats: s }) => s.eventLoop.delayP50Seconds },
  { name: 'tribune_event_loop_delay_p99_seconds', help: '99th percentile of the event-loop delay over the last 10 s.', type: 'gauge', read: ({ stats: s }) => s.eventLoop.delayP99Seconds },
  { name: 'tribune_event_loop_delay_max_seconds', help: 'Largest event-loop delay over the last 10 s.', type: 'gauge', read: ({ stats: s }) => s.eventLoop.delayMaxSeconds },
  { name: 'tribune_heap_used_bytes', help: 'V8 heap in use.', type: 'gauge', read: ({ stats: s }) => s.memory.heapUsedBytes },
  { name: 'tribune_resident_memory_bytes', help: 'Resident set size of the process.', type: 'gauge', read: ({ stats: s }) => s.memory.rssBytes }
]

/** Bucket bounds, seconds. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const
export const REDIS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5] as const

export class MetricsRegistry {
  readonly registry = new Registry()
  /** Publish accepted to last byte handed to the socket, sampled (metrics/latency.ts). */
  readonly publishToDelivery: Timings
  /** Redis round trips of the node's lease renewal. */
  readonly redisCommand: Timings
  readonly #read: () => StatsSnapshot
  #scrape: StatsSnapshot | null = null

  /** @param read reads the statistics; called once per scrape */
  constructor (read: () => StatsSnapshot) {
    this.#read = read
    const current = (): StatsSnapshot => this.#scrape ?? this.#read()
    for (const row of METRICS) {
      const labelNames = row.labels ?? []
      if (row.type === 'counter') {
        new Counter({
          name: row.name, help: row.help, labelNames, registers: [this.registry],
          collect () {
            const v = row.read(current())
            this.reset()
            if (typeof v === 'number') this.inc(v)
            else for (const [labels, n] of v) this.inc(labels, n)
          }
        })
      } else {
        new Gauge({
          name: row.name, help: row.help, labelNames, registers: [this.registry],
          collect () {
            const v = row.read(current())
            this.reset()
            if (typeof v === 'number') this.set(v)
            else for (const [labels, n] of v) this.set(labels, n)
          }
        })
      }
    }
    this.publishToDelivery = new Timings(LATENCY_BUCKETS, new Histogram({
      name: 'tribune_publish_delivery_seconds',
      help: 'From a PUBLISH accepted (a feed message: stored) to the last byte of its last delivery handed to a socket; sampled, at most 100 messages a second.',
      buckets: [...LATENCY_BUCKETS],
      registers: [this.registry]
    }))
    this.redisCommand = new Timings(REDIS_BUCKETS, new Histogram({
      name: 'tribune_redis_command_seconds',
      help: 'Round trip of a Redis command: the node\'s lease renewal, once per heartbeat interval (cluster members).',
      buckets: [...REDIS_BUCKETS],
      registers: [this.registry]
    }))
  }

  /** The Content-Type of {@link text}: Prometheus text format 0.0.4. */
  get contentType (): string {
    return this.registry.contentType
  }

  /** Every metric in the Prometheus text format, read now. */
  async text (): Promise<string> {
    this.#scrape = this.#read()
    try {
      return await this.registry.metrics()
    } finally {
      this.#scrape = null
    }
  }
}
