/**
 * CONNECT: `preConnect` notes what aedes does not check, `authenticate` turns credentials into an identity
 * (auth/access.ts) or a CONNACK refusal: 2 identifier rejected, 3 server unavailable (the node's password checks are
 * all taken: auth/password-gate.ts), 4 bad user name or password, 5 not authorized.
 * A client that asks for keep alive 0 (MQTT 3.1.1 section 3.1.2.10) is accepted and its connection watched for a dead
 * peer (listeners/liveness.ts), unless the node refuses keep alive 0 (`--keepalive-zero refuse`: CONNACK 2).
 * Secrets never reach the log: only the reason and the identity or user name.
 */
import type { Client, ConnectPacket } from 'aedes'
import type { AccessClient } from '../auth/access.js'
import { reservedPrefix, refusal, topicTooBig, type HookContext } from './context.js'
import type { ConnectRefusal } from '../metrics/counters.js'
import { connDetailsOf, connectWillOf } from '../aedes-internals.js'
import { refusalLogFields } from '../connection-log.js'
import { markDisconnect } from '../disconnect-reason.js'
import { hasWildcard } from '../feeds/topic-filter.js'

type Callback = (error: (Error & { returnCode: number }) | null, success: boolean | null) => void

export function connectHooks (ctx: HookContext): {
  preConnect: (client: Client, packet: ConnectPacket, cb: (err: Error | null, ok: boolean) => void) => void
  authenticate: (client: Client, username: Readonly<string | undefined>, password: Readonly<Buffer | undefined>, cb: Callback) => void
} {
  const { access, log } = ctx
  const emptyIdPersistent = new WeakSet<Client>()
  const badKeepalive = new WeakMap<Client, number>()
  /** Clients that asked for keep alive 0 (MQTT 3.1.1 section 3.1.2.10): aedes never times them out. */
  const noKeepalive = new WeakSet<Client>()

  return {
    preConnect (client, packet, cb) {
      if (packet.clientId === '' && !packet.clean) emptyIdPersistent.add(client)
      const keepalive = packet.keepalive ?? 0
      if ((keepalive === 0 && ctx.limits.keepaliveZero === 'refuse') || keepalive > ctx.limits.maxKeepalive) badKeepalive.set(client, keepalive)
      else if (keepalive === 0) noKeepalive.add(client)
      cb(null, true)
    },
    authenticate (client, username, password, cb) {
      /** Answers CONNACK `returnCode` and logs the refusal with the fields every refusal has (connection-log.ts). */
      const refuse = (returnCode: 2 | 4 | 5, reason: string, kind?: ConnectRefusal, extra: Record<string, unknown> = {}): void => {
        log.warn({ ...refusalLogFields(client, access, reason, returnCode), username, ...extra }, 'CONNECT refused')
        cb(refusal(returnCode, reason, kind), false)
      }
      if (emptyIdPersistent.has(client)) {
        // [MQTT-3.1.3-8]: a zero-length client id with clean session off is refused with CONNACK 2.
        refuse(2, 'identifier rejected: a persistent session (clean session off) needs a client id', 'empty-client-id')
        return
      }
      const keepalive = badKeepalive.get(client)
      if (keepalive !== undefined) {
        // MQTT 3.1.1 has no code for this; like Mosquitto, answer "identifier rejected" (2).
        const allowed = ctx.limits.keepaliveZero === 'refuse' ? `1 to ${ctx.limits.maxKeepalive} s (keep alive 0 is refused here)` : `0 to ${ctx.limits.maxKeepalive} s`
        refuse(2, `keep alive ${keepalive} s refused: it must be ${allowed}`, 'keepalive')
        return
      }
      const will = connectWillOf(client)
      const willTooBig = will != null ? topicTooBig(will.topic, ctx.limits) : null
      if (willTooBig !== null) {
        refuse(5, `not authorized: will ${willTooBig}`, 'will-topic')
        return
      }
      const willReserved = will != null ? reservedPrefix(will.topic) : null
      if (will != null && (willReserved !== null || will.topic.includes('\u0000'))) {
        refuse(5, `not authorized: will topic ${will.topic} ${willReserved !== null ? `is a ${willReserved} topic` : 'holds U+0000'}`, 'will-topic', { topic: will.topic })
        return
      }
      if (will != null && hasWildcard(will.topic)) {
        // A will topic is a topic name: no wildcards (MQTT 3.1.1 sections 3.1.3.3 and 4.7.1 [MQTT-4.7.1-1]).
        refuse(5, `not authorized: will topic ${will.topic} holds a wildcard (+ or #), which a topic name may not`, 'will-topic', { topic: will.topic })
        return
      }
      const holder: AccessClient | undefined = ctx.clients()[client.id]
      access.connect(client, { username, password, will, holder }).then((result) => {
        if ('returnCode' in result) {
          const code = result.returnCode
          if (code === 3) {
            // The password was not checked (auth/password-gate.ts): the node's checks were all taken (counted and
            // logged in admission's summary lines, not a line each: a storm must not write one per CONNECT), or the
            // client left.
            log.debug({ ...refusalLogFields(client, access, result.reason, 3), username }, 'CONNECT refused')
            cb(refusal(3, result.reason, 'server-unavailable'), false)
            return
          }
          // Access refuses with 2 only for a client id that belongs to another identity.
          refuse(code, result.reason, code === 2 ? 'client-id-taken' : undefined)
          return
        }
        const watched = noKeepalive.has(client)
        log.debug({ clientId: client.id, identity: result.id, role: result.role, method: result.method, listener: connDetailsOf(client)?.listener, ...(watched ? { keepalive: 0 } : {}) }, 'CONNECT accepted')
        if (watched) ctx.watchLiveness(client)
        // aedes closes the connection that holds this client id next (registerClient, [MQTT-3.1.4-2]).
        const held = ctx.clients()[client.id]
        if (held !== undefined && held !== client) markDisconnect(held, 'takeover', 'by a new connection on this node')
        cb(null, true)
      }, (err: Error) => {
        log.error({ ...refusalLogFields(client, access, 'authentication failed', 5), err }, 'CONNECT refused')
        cb(refusal(5, 'authentication failed'), false)
      })
    }
  }
}
