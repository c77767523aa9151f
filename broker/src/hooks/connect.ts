/**
 * CONNECT: `preConnect` notes what aedes does not check, `authenticate` turns credentials into an identity
 * (auth/access.ts) or a CONNACK refusal: 2 identifier rejected, 4 bad user name or password, 5 not authorized.
 * Secrets never reach the log: only the reason and the identity or user name.
 */
import type { Client, ConnectPacket } from 'aedes'
import type { AccessClient } from '../auth/access.js'
import { reservedPrefix, refusal, topicTooBig, type HookContext } from './context.js'

type Callback = (error: (Error & { returnCode: number }) | null, success: boolean | null) => void

export function connectHooks (ctx: HookContext): {
  preConnect: (client: Client, packet: ConnectPacket, cb: (err: Error | null, ok: boolean) => void) => void
  authenticate: (client: Client, username: Readonly<string | undefined>, password: Readonly<Buffer | undefined>, cb: Callback) => void
} {
  const { access, log } = ctx
  const emptyIdPersistent = new WeakSet<Client>()
  const badKeepalive = new WeakMap<Client, number>()

  return {
    preConnect (client, packet, cb) {
      if (packet.clientId === '' && !packet.clean) emptyIdPersistent.add(client)
      const keepalive = packet.keepalive ?? 0
      if (keepalive === 0 || keepalive > ctx.limits.maxKeepalive) badKeepalive.set(client, keepalive)
      cb(null, true)
    },
    authenticate (client, username, password, cb) {
      if (emptyIdPersistent.has(client)) {
        // [MQTT-3.1.3-8]: a zero-length client id with clean session off is refused with CONNACK 2.
        cb(refusal(2, 'identifier rejected: a persistent session (clean session off) needs a client id'), false)
        return
      }
      const keepalive = badKeepalive.get(client)
      if (keepalive !== undefined) {
        // MQTT 3.1.1 has no code for this; like Mosquitto, answer "identifier rejected" (2).
        cb(refusal(2, `keep alive ${keepalive} s refused: it must be 1 to ${ctx.limits.maxKeepalive} s`), false)
        return
      }
      const will = (client as unknown as { _will?: { topic: string } | null })._will
      const who = client as unknown as AccessClient
      const listener = who.connDetails?.listener
      const willTooBig = will != null ? topicTooBig(will.topic, ctx.limits) : null
      if (willTooBig !== null) {
        cb(refusal(5, `not authorized: will ${willTooBig}`), false)
        return
      }
      const willReserved = will != null ? reservedPrefix(will.topic) : null
      if (will != null && (willReserved !== null || will.topic.includes('\u0000'))) {
        log.warn({ clientId: client.id, topic: will.topic, listener }, 'refused CONNECT: will topic is a topic of the broker ($SYS, $replay, $admin) or holds U+0000')
        cb(refusal(5, `not authorized: will topic ${will.topic} ${willReserved !== null ? `is a ${willReserved} topic` : 'holds U+0000'}`), false)
        return
      }
      const holder = ctx.clients()[client.id] as unknown as AccessClient | undefined
      access.connect(who, { username, password, will, holder }).then((result) => {
        if ('returnCode' in result) {
          log.warn({ clientId: client.id, username, peer: who.connDetails?.ipAddress, listener, returnCode: result.returnCode, reason: result.reason }, 'CONNECT refused')
          cb(refusal(result.returnCode, result.reason), false)
          return
        }
        log.debug({ clientId: client.id, identity: result.id, role: result.role, method: result.method, listener }, 'CONNECT accepted')
        cb(null, true)
      }, (err: Error) => {
        log.error({ err, clientId: client.id }, 'authentication failed')
        cb(refusal(5, 'authentication failed'), false)
      })
    }
  }
}
