/**
 * SUBSCRIBE and delivery: each topic filter is checked against the identity's rules (0x80 when denied, the other
 * topics of the packet unaffected, MQTT 3.1.1 section 3.9.3); filters whose + or # is not a whole level (section 4.7.1)
 * and filters with Redis pattern characters (* ? [ ] \) are refused; `$replay` filters are parsed and limited per client.
 * `$SYS` (the broker's statistics and notices) is for operators only, whatever topic rules a configuration gives
 * another role.
 * `authorizeForward` re-checks messages queued for persistent sessions, whose rules may have changed since (SIGHUP).
 * A refused filter is not stored in a persistent session (patches/aedes+1.2.0.patch), and one stored before is
 * removed when the session is restored and the filter refused again.
 */
import type { Client, Subscription, AedesPublishPacket } from 'aedes'
import type { FeedClient } from '../feeds/feeds.js'
import type { Access } from '../auth/access.js'
import { isValidFilter } from '../feeds/topic-filter.js'
import { reservedPrefix, topicTooBig, type HookContext } from './context.js'
import { asFeedClient, subscriptionsOf } from '../aedes-internals.js'
import { refusalLogFields } from '../connection-log.js'

/** SUBACK's return code for a refused filter (MQTT 3.1.1 section 3.9.3). */
const SUBACK_FAILURE = 0x80

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
      // Per message and subscriber: debug, or a deny rule under a wide subscription would flood the log.
      log.debug({ ...refusalLogFields(client, access, 'topic not allowed by the topic rules (now)'), topic: packet.topic }, 'message not delivered: the topic rules do not allow it to this client')
      return null
    }
  }

  /** Answers 0x80 for this filter and logs it with the fields every refusal has (connection-log.ts). */
  function refuse (client: Client, topic: string, reason: string, callback: (err: Error | null, sub?: Subscription | null) => void): void {
    log.info({ ...refusalLogFields(client, access, reason, SUBACK_FAILURE), topic }, 'SUBSCRIBE refused (0x80)')
    callback(null, null)
  }

  function authorize (client: Client, sub: Subscription, callback: (err: Error | null, sub?: Subscription | null) => void): void {
    {
      const topic = sub.topic
      if (topic.includes('\u0000')) {
        refuse(client, topic, 'U+0000 in a topic filter (MQTT 3.1.1 section 1.5.3)', callback)
        return
      }
      if (!isValidFilter(topic, true)) {
        // aedes lets some through (`i+/x`, `a+/+`, `matches/+/+s`: its check is off by one next to the ends).
        refuse(client, topic, 'not a topic filter: + and # must each be a whole level, # the last (MQTT 3.1.1 section 4.7.1)', callback)
        return
      }
      if (GLOB.test(topic)) {
        // Redis pub/sub reads these as pattern characters: in a cluster `matches/*/state` would be a pattern (or take
        // the place of `matches/+/state`'s). Refused on every node, clustered or not, so clients see one behaviour.
        refuse(client, topic, 'topic filters may not contain * ? [ ] or \\', callback)
        return
      }
      const tooBig = topicTooBig(topic, ctx.limits)
      const subscriptions = subscriptionsOf(client)
      const full = subscriptions[topic] === undefined && Object.keys(subscriptions).length >= ctx.limits.maxSubscriptionsPerClient
      if (tooBig !== null || full) {
        refuse(client, topic, tooBig ?? `more than ${ctx.limits.maxSubscriptionsPerClient} subscriptions`, callback)
        return
      }
      if (!sysAllowed(access, client, topic)) {
        log.info({ clientId: client.id, identity: access.identity(client)?.id, topic }, 'SUBSCRIBE refused (0x80): only operators may read $SYS')
        callback(null, null)
        return
      }
      if (!access.maySubscribe(client, topic)) {
        refuse(client, topic, 'not allowed by the topic rules', callback)
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
        refuse(client, topic, (err as Error).message, callback)
        return
      }
      callback(null, sub)
      // A persistent session's subscriptions restored before CONNACK emit no `subscribe` event: start them here.
      if (!feedClient.connackSent) startReplay(feedClient, topic, sub.qos)
    }
  }
}

/** `$SYS` is for operators only, whatever topic rules a configuration gives another role. */
function sysAllowed (access: Access, client: Client, filter: string): boolean {
  return reservedPrefix(filter) !== '$SYS' || access.identity(client)?.role === 'operator'
}

/**
 * The topic filters `client` holds (aedes' subscriptions, `$replay` ones included) that its rules, as they are now,
 * would refuse at SUBSCRIBE: `$SYS` for a client no longer an operator, and what the topic rules no longer allow
 * (auth/access.ts `maySubscribe`). Asked after a reload (SIGHUP), for each connected client. Empty in local mode.
 */
export function subscriptionsNoLongerAllowed (access: Access, client: Client): string[] {
  return Object.keys(subscriptionsOf(client)).filter((filter) => !sysAllowed(access, client, filter) || !access.maySubscribe(client, filter))
}
