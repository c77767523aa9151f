/**
 * Why a client's connection ended, for the `client disconnected` log line (and anything counted by reason): one
 * bounded set of names, never free text (the words go in `detail`).
 *
 * Whoever closes a client on purpose says why first ({@link closeClient}, or {@link markDisconnect} where aedes does
 * the closing); the first reason given wins, so a refused PUBLISH, which aedes then reports as a client error, stays
 * `publish-refused`. What nobody marked is read at the disconnect ({@link disconnectInfo}): the connection guard's
 * reason (slow consumer, packet size, ...), a DISCONNECT packet, an error, the node closing, else the peer.
 */
import type { Client } from 'aedes'
import { sentDisconnect } from './aedes-internals.js'
import { guardCloseReason } from './listeners/guard.js'

/** The reasons a connection ends, and what each means. */
export const DISCONNECT_REASONS = {
  'client-disconnect': 'the client sent DISCONNECT (MQTT 3.1.1 section 3.14)',
  'connection-lost': 'closed by the peer or the network without a DISCONNECT (a reset, a closed socket or tab)',
  'keepalive-timeout': 'nothing from the client for 1.5 times its keep alive [MQTT-3.1.2-24]',
  takeover: 'a new connection with the same client id, on this node or another [MQTT-3.1.4-2]',
  kicked: 'an operator disconnected it',
  revoked: 'a reload (SIGHUP) removed, revoked or changed its credential, or took away a subscription it held (its will is not published)',
  'slow-consumer': 'too many bytes waiting to be sent to it (--max-queued-bytes)',
  'packet-too-large': 'it sent a packet over --max-packet-size',
  'slow-packet': 'a packet or WebSocket message it began was not complete within --packet-timeout',
  'protocol-error': 'it broke the framing: a malformed Remaining Length, a WebSocket text frame',
  idle: 'a keep alive 0 client that sent nothing (--idle-timeout) or left a WebSocket ping unanswered',
  'publish-refused': 'a PUBLISH refused (topic rules, a broker topic, a feed message not stored): MQTT 3.1.1 section 3.3.5',
  drain: 'the node is draining (node.drain, SIGTERM with --drain-seconds)',
  shutdown: 'the node is stopping',
  error: 'an error on the connection or in handling its packets (the line carries it as err)'
} as const

export type DisconnectReason = keyof typeof DISCONNECT_REASONS

/** Why one connection ended: the reason, the words behind it, the error when there was one. */
export interface DisconnectInfo {
  reason: DisconnectReason
  detail?: string
  err?: Error
}

const marked = new WeakMap<Client, DisconnectInfo>()

/** Socket error codes that mean the peer or the network went away, not that something is broken. */
const LOST = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH'])

/**
 * Records why `client` is about to be closed, unless a reason was recorded already (the first wins).
 * @param detail words for the log line (no secret)
 */
export function markDisconnect (client: Client, reason: DisconnectReason, detail?: string, err?: Error): void {
  if (marked.has(client)) return
  marked.set(client, { reason, ...(detail !== undefined ? { detail } : {}), ...(err !== undefined ? { err } : {}) })
}

/**
 * Records an error aedes reports for `client` (its `clientError` event, which comes before the close): a lost peer
 * (ECONNRESET, EPIPE, ...) is `connection-lost`, anything else `error`; both keep the error.
 */
export function markClientError (client: Client, err: Error): void {
  const code = (err as NodeJS.ErrnoException).code
  markDisconnect(client, code !== undefined && LOST.has(code) ? 'connection-lost' : 'error', err.message, err)
}

/**
 * Closes `client` for `reason` (aedes `client.close()`: its will, if any, is published, as for any connection the
 * server closes, MQTT 3.1.1 section 3.1.2.5; except after a reload, see auth/access.ts `revoke`). The way for an
 * operator's kick (`kicked`), a reload (`revoked`) or a drain (`drain`) to close a client.
 */
export function closeClient (client: Client, reason: DisconnectReason, detail?: string): void {
  markDisconnect(client, reason, detail)
  client.close()
}

/**
 * Why `client`'s connection ended, read at its disconnect: the guard's reason first (it closed the connection
 * itself), then a recorded reason other than an error, then a DISCONNECT packet, then a recorded error, then
 * `shutdown` while the node closes, else `connection-lost`.
 * @param closing whether the node is closing (aedes `broker.closed`)
 */
export function disconnectInfo (client: Client, closing: boolean): DisconnectInfo {
  const guard = guardCloseReason(client.conn)
  if (guard !== null) return guard
  const mark = marked.get(client)
  if (mark !== undefined && mark.reason !== 'error' && mark.reason !== 'connection-lost') return mark
  if (sentDisconnect(client)) return { reason: 'client-disconnect' }
  if (mark !== undefined) return mark
  if (closing) return { reason: 'shutdown' }
  return { reason: 'connection-lost' }
}
