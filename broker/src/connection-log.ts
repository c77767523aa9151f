/**
 * One log line per client connect and disconnect (info): who (client id, identity, role, auth method), over what
 * (transport and listener) and from where (peer address and port). Never a secret: an identity is a configured name
 * (`apikey:<id>`, `user:<name>`, `jwt:<sub>`, `cert:<cn>`, `anonymous`, `local`), never a password, key or token.
 */
import type { Client } from 'aedes'
import type { Access } from './auth/access.js'
import { connDetailsOf } from './aedes-internals.js'

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
    peer: address === undefined || address === '' ? undefined : `${address.includes(':') ? `[${address}]` : address}:${details?.port ?? 0}`
  }
}
