/**
 * Builds the aedes broker and installs Tribune's hooks. Policy lives in the modules the hooks call (feeds/);
 * this file only connects them to aedes' hook slots and events.
 */
import { Aedes, type Client } from 'aedes'
import type { Logger } from './log.js'
import type { Feeds, FeedClient } from './feeds/feeds.js'

export interface BrokerParts {
  id?: string
  persistence: unknown
  feeds: Feeds
  log: Logger
}

const isDollar = (topic: string): boolean => topic.charCodeAt(0) === 36 // '$'

/** An authenticate error carrying a CONNACK return code (MQTT 3.1.1 section 3.2.2.3): 2 identifier rejected, 5 not authorized. */
function refusal (returnCode: 2 | 4 | 5, message: string): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode })
}

/**
 * Creates the aedes broker (not yet listening on any port).
 * - PUBLISH to a `$` topic by a client is refused (those topics belong to the broker); the connection is closed,
 *   as aedes does for every refused PUBLISH.
 * - PUBLISH to a feed is stamped and stored before aedes acknowledges it (QoS 1 PUBACK means stored); feed
 *   messages are not retained (the feed history is their memory).
 * - SUBSCRIBE to `$replay/...` is answered 0x80 when invalid (MQTT 3.1.1 section 3.9.3), else attached to the hub.
 */
export async function createBroker (parts: BrokerParts): Promise<Aedes> {
  const { feeds, log } = parts
  const emptyIdPersistent = new WeakSet<Client>()
  const broker = await Aedes.createBroker({
    id: parts.id,
    persistence: parts.persistence,
    preConnect (client, packet, callback) {
      if (packet.clientId === '' && !packet.clean) emptyIdPersistent.add(client)
      callback(null, true)
    },
    authenticate (client, _username, _password, callback) {
      if (emptyIdPersistent.has(client)) {
        // [MQTT-3.1.3-8]: a zero-length client id with clean session off is refused with CONNACK 2.
        callback(refusal(2, 'identifier rejected: a persistent session (clean session off) needs a client id'), false)
        return
      }
      const will = (client as unknown as { _will?: { topic: string } | null })._will
      if (will != null && isDollar(will.topic)) {
        log.warn({ clientId: client.id, topic: will.topic }, 'refused CONNECT: will topic is a $ topic')
        callback(refusal(5, `not authorized: will topic ${will.topic} is a $ topic`), false)
        return
      }
      callback(null, true)
    },
    authorizePublish (client, packet, callback) {
      // Also wills published by the broker for a client that is gone (client null): `$` topics belong to the broker.
      if (isDollar(packet.topic)) {
        log.warn({ clientId: client?.id, topic: packet.topic }, 'refused PUBLISH to a $ topic')
        callback(new Error(`PUBLISH to ${packet.topic} refused: $ topics belong to the broker`))
        return
      }
      if (!feeds.isFeed(packet.topic)) {
        callback(null)
        return
      }
      feeds.stamp(packet.topic, packet.payload as Buffer).then((bytes) => {
        packet.payload = bytes
        packet.retain = false
        callback(null)
      }, (err: Error) => {
        log.error({ err, topic: packet.topic }, 'feed store failed; PUBLISH not acknowledged')
        callback(err)
      })
    },
    authorizeSubscribe (client, sub, callback) {
      if (!feeds.isReplay(sub.topic)) {
        callback(null, sub)
        return
      }
      let request
      try {
        request = feeds.parseReplay(sub.topic)
      } catch (err) {
        log.info({ clientId: client.id, topic: sub.topic, reason: (err as Error).message }, 'SUBSCRIBE refused (0x80)')
        callback(null, null)
        return
      }
      callback(null, sub)
      feeds.attach(client as unknown as FeedClient, sub.topic, request, sub.qos).catch((err: Error) => {
        log.error({ err, clientId: client.id, topic: sub.topic }, 'replay failed')
      })
    }
  })
  broker.on('unsubscribe', (topics: string[], client: Client) => {
    for (const topic of topics) if (feeds.isReplay(topic)) feeds.detach(client as unknown as FeedClient, topic)
  })
  broker.on('connackSent', (_packet, client: Client) => feeds.connackSent(client as unknown as FeedClient))
  broker.on('clientDisconnect', (client: Client) => feeds.detachAll(client as unknown as FeedClient))
  broker.on('clientError', (client: Client, err: Error) => log.debug({ clientId: client.id, err: err.message }, 'client error'))
  broker.on('connectionError', (_client: Client, err: Error) => log.debug({ err: err.message }, 'connection error'))
  ;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.error({ err }, 'broker error'))
  return broker
}
