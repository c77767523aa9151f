/**
 * A node's statistics as one JSON document: what `$SYS/<node-id>/stats` carries, `BrokerNode.stats()` returns, and
 * `GET /metrics` shows in Prometheus form (metrics/registry.ts). Built on demand from what the node keeps (its
 * counters, its client table, the feed hub, admission control, the stores): nothing here runs per message.
 */
import type { Counters, ConnectRefusal, PublishRefusal } from './counters.js'
import type { EventLoopDelay, MemoryFigures } from './process.js'
import type { TimingSummary } from './timings.js'

/** One connected client as the statistics count it. */
export interface ClientFigure {
  /** The listener's protocol: `mqtt`, `mqtts`, `ws` or `wss` (`other` for a connection handed over without one). */
  transport: string
  /** `viewer`, `publisher` or `operator` (`none` before its CONNECT is accepted). */
  role: string
  /** Topic filters it holds, `$replay` ones included. */
  subscriptions: number
}

/** What the stores tell (stores.ts `figures`). */
export interface StoreFigures {
  /** Topics with a retained message. */
  retained: number
  /** Messages dropped because a persistent session's queue was full. */
  sessionQueueDrops: number
  /** Messages on the cluster's Redis channels that were not Tribune's, dropped (0 without Redis). */
  foreignMessages: number
}

/** Where the statistics are read from; each read once per document. */
export interface StatsSources {
  id: string
  version: string
  /** When the node started, ms since 1970. */
  startedAt: number
  storeKind: 'embedded' | 'redis'
  storeReachable: () => boolean
  store: () => StoreFigures
  clients: () => Iterable<ClientFigure>
  hub: () => { cachedFeeds: number, replayViewers: number }
  admission: () => { connections: number, accepted: number, refused: Record<string, number>, shed: number }
  counters: Counters
  eventLoop: () => EventLoopDelay
  memory: () => MemoryFigures
  publishToDelivery: () => TimingSummary
  /** Round trips of the node's lease renewal, once per heartbeat interval (cluster members). */
  redisCommand: () => TimingSummary
}

/**
 * The statistics document. Counters count since the node started; every number is a leaf whose path is also its
 * `$SYS/<node-id>/<path>` topic (README, "Monitoring").
 */
export interface NodeStats {
  id: string
  /** When the figures were read, ms since 1970. */
  ts: number
  version: string
  uptimeSeconds: number
  clients: {
    connected: number
    /** Connected clients by transport and by role (in Prometheus, one gauge with both labels). */
    transport: Record<string, number>
    role: Record<string, number>
    connects: number
    disconnects: number
    /** Disconnected as slow consumers (more than --max-queued-bytes waiting). */
    slowConsumers: number
  }
  /** Admission control: connections held, taken, refused by reason (README, "Admission control"), shed at accept. */
  connections: { open: number, accepted: number, refused: Record<string, number>, shed: number }
  connect: { refused: Record<ConnectRefusal, number> }
  messages: { received: number, sent: number, feedStored: number, refused: Record<PublishRefusal, number> }
  bytes: { received: number, sent: number }
  subscriptions: { count: number, replayViewers: number }
  feeds: { cached: number }
  retained: { count: number }
  sessions: { queueDrops: number }
  store: { kind: 'embedded' | 'redis', reachable: boolean }
  /** Cluster members only. */
  redis?: { foreignMessages: number, commandSeconds: TimingSummary }
  eventLoop: EventLoopDelay
  memory: MemoryFigures
  latency: { publishToDelivery: TimingSummary }
}

/** The document plus what only the Prometheus form shows (connected clients by transport and role together). */
export interface StatsSnapshot {
  stats: NodeStats
  /** `transport/role` -> connected clients. */
  clientsByTransportAndRole: Map<string, number>
}

/** Reads every source once and builds the document. */
export function readStats (src: StatsSources): StatsSnapshot {
  const now = Date.now()
  const transport: Record<string, number> = {}
  const role: Record<string, number> = {}
  const both = new Map<string, number>()
  let connected = 0
  let subscriptions = 0
  for (const c of src.clients()) {
    connected++
    subscriptions += c.subscriptions
    transport[c.transport] = (transport[c.transport] ?? 0) + 1
    role[c.role] = (role[c.role] ?? 0) + 1
    const key = `${c.transport}/${c.role}`
    both.set(key, (both.get(key) ?? 0) + 1)
  }
  const n = src.counters
  const admission = src.admission()
  const hub = src.hub()
  const store = src.store()
  const stats: NodeStats = {
    id: src.id,
    ts: now,
    version: src.version,
    uptimeSeconds: Math.round((now - src.startedAt) / 100) / 10,
    clients: { connected, transport, role, connects: n.connects, disconnects: n.disconnects, slowConsumers: n.slowConsumers },
    connections: { open: admission.connections, accepted: admission.accepted, refused: { ...admission.refused }, shed: admission.shed },
    connect: { refused: { ...n.connectRefused } },
    messages: { received: n.messagesReceived, sent: n.messagesSent, feedStored: n.feedMessagesStored, refused: { ...n.publishRefused } },
    bytes: { received: n.bytesReceived, sent: n.bytesSent },
    subscriptions: { count: subscriptions, replayViewers: hub.replayViewers },
    feeds: { cached: hub.cachedFeeds },
    retained: { count: store.retained },
    sessions: { queueDrops: store.sessionQueueDrops },
    store: { kind: src.storeKind, reachable: src.storeReachable() },
    ...(src.storeKind === 'redis' ? { redis: { foreignMessages: store.foreignMessages, commandSeconds: src.redisCommand() } } : {}),
    eventLoop: src.eventLoop(),
    memory: src.memory(),
    latency: { publishToDelivery: src.publishToDelivery() }
  }
  return { stats, clientsByTransportAndRole: both }
}

/**
 * The leaves of a statistics document as `path -> value` (`clients/connected -> 3`), the `$SYS` topics of the
 * individual values; `id` and `ts` are left out (the topic names the node; every value changes `ts`).
 */
export function leaves (stats: NodeStats): Map<string, string> {
  const out = new Map<string, string>()
  const walk = (value: unknown, path: string): void => {
    if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) walk(v, path === '' ? k : `${path}/${k}`)
    } else if (value !== undefined) {
      out.set(path, String(value))
    }
  }
  const { id: _id, ts: _ts, ...rest } = stats
  walk(rest, '')
  return out
}
