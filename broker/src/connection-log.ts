/**
 * The fields of the log lines about one client, so that every line can be searched by the same names:
 *  - one line per connect and disconnect (info): who (client id, identity, role, auth method), over what (transport
 *    and listener) and from where (peer address and port); a disconnect adds why (`reason`, disconnect-reason.ts,
 *    with `detail` and `err` when there are some);
 *  - every refusal (CONNECT refused, SUBSCRIBE 0x80, PUBLISH refused): `clientId`, `identity`, `role`, `transport`,
 *    `listener`, `peer` as far as known, `reason` (why, in words) and `returnCode` (the CONNACK return code, 128 for
 *    SUBACK 0x80; none when the connection is closed without an answer, as for a PUBLISH), plus the `topic` concerned.
 * Never a secret: an identity is a configured name (`apikey:<id>`, `user:<name>`, `jwt:<sub>`, `cert:<cn>`,
 * `anonymous`, `local`), never a password, key or token.
 */
import type { Client } from 'aedes'
import type { Access } from './auth/access.js'
import { connDetailsOf } from './aedes-internals.js'
import type { DisconnectInfo } from './disconnect-reason.js'

/** The fields of a connect or disconnect line. */
export interface ClientLogFields {
  clientId: string
  /** undefined when CONNECT was never accepted. */
  identity?: string
  role?: string
  method?: string
  clean: boolean
  /** The listener's protocol: `mqtt` (TCP), `mqtts` (TLS), `ws` or `wss` (WebSocket, plain or TLS). */
  transport?: string
  /** The listener's name, e.g. `mqtt:1883`. */
  listener?: string
  /** `address:port` of the client, `[address]:port` for IPv6. */
  peer?: string
}

/** The fields that describe `client` in a log line, its identity as `access` knows it. */
export function clientLogFields (client: Client, access: Access): ClientLogFields {
  const details = connDetailsOf(client) ?? undefined
  const who = access.identity(client)
  const address = details?.ipAddress
  return {
    clientId: client.id,
    identity: who?.id,
    role: who?.role,
    method: who?.method,
    clean: client.clean,
    // Listener names are `<protocol>:<port>` (listeners/plan.ts).
    transport: details?.listener?.split(':')[0],
    listener: details?.listener,
    peer: address === undefined || address === '' ? undefined : formatPeer(address, details?.port ?? 0)
  }
}

/** `address:port`, `[address]:port` for IPv6: the `peer` field of every line. */
export function formatPeer (address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`
}

/** The fields of a disconnect line: the client's, and why its connection ended. */
export function disconnectLogFields (client: Client, access: Access, info: DisconnectInfo): ClientLogFields & DisconnectInfo {
  return { ...clientLogFields(client, access), ...info }
}

/** The fields of a refusal line (see the module comment); `client` null for a will the broker publishes. */
export interface RefusalLogFields {
  clientId?: string
  identity?: string
  role?: string
  transport?: string
  listener?: string
  peer?: string
  /** Why, in words. */
  reason: string
  /** The CONNACK return code, or 128 (0x80) for a SUBACK refusal; absent when no answer is sent. */
  returnCode?: number
}

/**
 * The fields of a line that logs a refusal to `client`: who as far as known (a refused CONNECT has no identity), why,
 * and the return code it got.
 */
export function refusalLogFields (client: Client | null, access: Access, reason: string, returnCode?: number): RefusalLogFields {
  if (client === null) return returnCode === undefined ? { reason } : { reason, returnCode }
  const { clientId, identity, role, transport, listener, peer } = clientLogFields(client, access)
  return { clientId, identity, role, transport, listener, peer, reason, ...(returnCode !== undefined ? { returnCode } : {}) }
}
