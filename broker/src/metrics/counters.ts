/**
 * The counters a node keeps where things happen: plain numbers, so what a message costs is one increment (the
 * registry, metrics/registry.ts, reads them only when scraped or when `$SYS` statistics are published). One object per
 * node: several nodes can share a process (tests, embedding).
 */

/** Why a PUBLISH was refused (hooks/publish.ts); the `reason` label of `tribune_publish_refused_total`. */
export const PUBLISH_REFUSALS = ['reserved-topic', 'topic-limits', 'not-authorized', 'feed-refused'] as const
export type PublishRefusal = typeof PUBLISH_REFUSALS[number]

/**
 * Why a CONNECT was refused, and its CONNACK return code (MQTT 3.1.1 section 3.2.2.3): the `reason` and `return_code`
 * labels of `tribune_connect_refused_total`. A refusal without a reason of its own gets its return code's.
 */
export const CONNECT_REFUSALS = {
  'protocol-version': 1,
  'identifier-rejected': 2,
  'empty-client-id': 2,
  'client-id-taken': 2,
  keepalive: 2,
  'server-unavailable': 3,
  'bad-credentials': 4,
  'not-authorized': 5,
  'will-topic': 5
} as const
export type ConnectRefusal = keyof typeof CONNECT_REFUSALS

/** The reason of a return code when the refusal names none. aedes' own refusal 6 (keep alive limit) is not used. */
const BY_RETURN_CODE: Record<number, ConnectRefusal> = { 1: 'protocol-version', 2: 'identifier-rejected', 3: 'server-unavailable', 4: 'bad-credentials', 5: 'not-authorized', 6: 'keepalive' }

/**
 * The reason of a CONNECT refusal: `kind` when it is one of {@link CONNECT_REFUSALS} (hooks/context.ts `refusal`),
 * else the return code's.
 * @returns undefined when `returnCode` is not a refusal (0, or out of the MQTT 3.1.1 range)
 */
export function connectRefusal (returnCode: number, kind?: unknown): ConnectRefusal | undefined {
  if (typeof kind === 'string' && kind in CONNECT_REFUSALS) return kind as ConnectRefusal
  return BY_RETURN_CODE[returnCode]
}

/** A node's counters, all since start. */
export interface Counters {
  /** PUBLISH packets received from clients (wills and the broker's own messages not included). */
  messagesReceived: number
  /** PUBLISH packets handed to clients' connections. */
  messagesSent: number
  /** Feed messages stamped and stored (feeds/feeds.ts). */
  feedMessagesStored: number
  /** Bytes read from and written to clients' connections (MQTT over TCP, TLS, WebSocket payloads). */
  bytesReceived: number
  bytesSent: number
  /** Clients that completed CONNECT (CONNACK 0 sent), and clients gone. */
  connects: number
  disconnects: number
  /** Connections closed as slow consumers (listeners/guard.ts). */
  slowConsumers: number
  publishRefused: Record<PublishRefusal, number>
  connectRefused: Record<ConnectRefusal, number>
}

/** A node's counters, all 0. */
export function newCounters (): Counters {
  return {
    messagesReceived: 0,
    messagesSent: 0,
    feedMessagesStored: 0,
    bytesReceived: 0,
    bytesSent: 0,
    connects: 0,
    disconnects: 0,
    slowConsumers: 0,
    publishRefused: Object.fromEntries(PUBLISH_REFUSALS.map((r) => [r, 0])) as Record<PublishRefusal, number>,
    connectRefused: Object.fromEntries(Object.keys(CONNECT_REFUSALS).map((r) => [r, 0])) as Record<ConnectRefusal, number>
  }
}
