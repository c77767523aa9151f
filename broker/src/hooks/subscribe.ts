/**
 * SUBSCRIBE and delivery: each topic filter is checked against the identity's rules (0x80 when denied, the other
 * topics of the packet unaffected, MQTT 3.1.1 section 3.9.3); filters with Redis pattern characters (* ? [ ] \) are refused; `$replay` filters are parsed and limited per client.
 * `$SYS` (the broker's statistics and notices) is for operators only, whatever topic rules a configuration gives
 * another role.
 * `authorizeForward` re-checks messages queued for persistent sessions, whose rules may have changed since (SIGHUP).
 * A refused filter is not stored in a persistent session (patches/aedes+1.2.0.patch), and one stored before is
 * removed when the session is restored and the filter refused again.
 */
import type { Client, Subscription, AedesPublishPacket } from 'aedes'
import type { FeedClient } from '../feeds/feeds.js'
import { reservedPrefix, topicTooBig, type HookContext } from './context.js'
import { asFeedClient, subscriptionsOf } from '../aedes-internals.js'

/** Characters Redis pub/sub patterns give a meaning to. */
const GLOB = /[*?[\]\\]/

export function subscribeHooks (ctx: HookContext, startReplay: (client: FeedClient, topic: string, qos: number) => void): {
  authorizeSubscribe: (client: Client, sub: Subscription, cb: (err: Error | null, sub?: Subscription | null) => void) => void
  authorizeForward: (client: Client, packet: AedesPublishPacket) => AedesPublishPacket | null
} {
  const { access, feeds, log } = ctx
  return {
    authorizeSubscribe (client, sub, callback) {
      authorize(client, sub, callback)
    },
    authorizeForward (client, packet) {
      if (access.mayForward(client, packet.topic)) return packet
      log.info({ clientId: client.id, topic: packet.topic }, 'message to a persistent session dropped: topic not allowed')
      return null
    }
  }

  function authorize (client: Client, sub: Subscription, callback: (err: Error | null, sub?: Subscription | null) => void): void {
    {
      const topic = sub.topic
      if (topic.includes('\u0000')) {
        callback(null, null) // MQTT 3.1.1 section 1.5.3: no U+0000 in topic filters
        return
      }
      if (GLOB.test(topic)) {
        // Redis pub/sub reads these as pattern characters: in a cluster `matches/*/state` would be a pattern (or take
        // the place of `matches/+/state`'s). Refused on every node, clustered or not, so clients see one behaviour.
        log.info({ clientId: client.id, topic }, 'SUBSCRIBE refused (0x80): topic filters may not contain * ? [ ] or \\')
        callback(null, null)
        return
      }
      const tooBig = topicTooBig(topic, ctx.limits)
      const subscriptions = subscriptionsOf(client)
      const full = subscriptions[topic] === undefined && Object.keys(subscriptions).length >= ctx.limits.maxSubscriptionsPerClient
      if (tooBig !== null || full) {
        log.info({ clientId: client.id, reason: tooBig ?? `more than ${ctx.limits.maxSubscriptionsPerClient} subscriptions` }, 'SUBSCRIBE refused (0x80)')
        callback(null, null)
        return
      }
      if (reservedPrefix(topic) === '$SYS' && access.identity(client)?.role !== 'operator') {
        log.info({ clientId: client.id, identity: access.identity(client)?.id, topic }, 'SUBSCRIBE refused (0x80): only operators may read $SYS')
        callback(null, null)
        return
      }
      if (!access.maySubscribe(client, topic)) {
        log.info({ clientId: client.id, identity: access.identity(client)?.id, topic }, 'SUBSCRIBE denied by the topic rules (0x80)')
        callback(null, null)
        return
      }
      if (!feeds.isReplay(topic)) {
        callback(null, sub)
        return
      }
      const feedClient = asFeedClient(client)
      try {
        feeds.authorizeReplay(feedClient, topic)
      } catch (err) {
        log.info({ clientId: client.id, topic, reason: (err as Error).message }, 'SUBSCRIBE refused (0x80)')
        callback(null, null)
        return
      }
      callback(null, sub)
      // A persistent session's subscriptions restored before CONNACK emit no `subscribe` event: start them here.
      if (!feedClient.connackSent) startReplay(feedClient, topic, sub.qos)
    }
  }
}
