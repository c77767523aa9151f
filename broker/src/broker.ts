/**
 * Builds the aedes broker and installs Tribune's hooks. Policy lives in the modules the hooks call (feeds/);
 * this file only connects them to aedes' hook slots and events.
 */
import { Aedes, type Client } from 'aedes'
import type { Logger } from './log.js'
import type { Feeds, FeedClient } from './feeds/feeds.js'

/** The part of aedes persistence the hooks use: QoS 2 retransmissions (MQTT 3.1.1 section 4.3.3). */
export interface IncomingStore {
  incomingGetPacket: (client: Client, packet: { messageId?: number }) => Promise<unknown>
}

export interface BrokerParts {
  id?: string
  persistence: IncomingStore
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
  const { feeds, log, persistence } = parts
  const emptyIdPersistent = new WeakSet<Client>()
  /**
   * Ends `$replay` subscriptions in the order the client's packets arrive. aedes handles the packets of one read
   * concurrently and has no hook at UNSUBSCRIBE, so its `unsubscribe` event can come after a SUBSCRIBE sent later
   * (MQTT 3.1.1 section 4.6 wants them in order). Its parser's `packet` event comes in order; SUBSCRIBE is
   * authorized synchronously from the same event.
   */
  const watchUnsubscribes = (client: Client): void => {
    const parser = (client as unknown as { _parser?: NodeJS.EventEmitter })._parser
    parser?.on('packet', (packet: { cmd: string, unsubscriptions?: string[] }) => {
      if (packet.cmd !== 'unsubscribe' || packet.unsubscriptions === undefined) return
      for (const topic of packet.unsubscriptions) if (feeds.isReplay(topic)) feeds.unsubscribed(client as unknown as FeedClient, topic)
    })
  }
  const broker = await Aedes.createBroker({
    id: parts.id,
    persistence: parts.persistence,
    preConnect (client, packet, callback) {
      if (packet.clientId === '' && !packet.clean) emptyIdPersistent.add(client)
      watchUnsubscribes(client)
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
      const topic = packet.topic
      // Also wills published by the broker for a client that is gone (client null): `$` topics belong to the broker.
      if (isDollar(topic) || topic.includes('\u0000')) {
        log.warn({ clientId: client?.id, topic }, 'refused PUBLISH to a $ topic or a topic with U+0000')
        callback(new Error(`PUBLISH to ${JSON.stringify(topic)} refused: $ topics belong to the broker, and U+0000 is not allowed (MQTT 3.1.1 section 1.5.3)`))
        return
      }
      if (!feeds.isFeed(topic)) {
        callback(null)
        return
      }
      const stamp = (): void => {
        feeds.stamp(topic, packet.payload as Buffer).then((bytes) => {
          packet.payload = bytes
          packet.retain = false
          callback(null)
        }, (err: Error) => {
          log.error({ clientId: client?.id, topic, reason: err.message }, 'feed PUBLISH refused; not acknowledged')
          callback(err)
        })
      }
      if (packet.qos === 2 && client !== null && packet.dup === true) {
        // aedes asks before it checks for a QoS 2 retransmission: one it already holds must not get a new seq.
        // Let it through unstamped; aedes then finds it stored and only answers PUBREC (MQTT 3.1.1 section 4.3.3).
        persistence.incomingGetPacket(client, packet).then(() => callback(null), stamp)
        return
      }
      stamp()
    },
    authorizeSubscribe (client, sub, callback) {
      if (!feeds.isReplay(sub.topic)) {
        if (sub.topic.includes('\u0000')) {
          callback(null, null) // MQTT 3.1.1 section 1.5.3: no U+0000 in topic filters
          return
        }
        callback(null, sub)
        return
      }
      const feedClient = client as unknown as FeedClient
      try {
        feeds.authorizeReplay(feedClient, sub.topic)
      } catch (err) {
        log.info({ clientId: client.id, topic: sub.topic, reason: (err as Error).message }, 'SUBSCRIBE refused (0x80)')
        callback(null, null)
        return
      }
      callback(null, sub)
      // A persistent session's subscriptions restored before CONNACK emit no `subscribe` event: start them here.
      if (!feedClient.connackSent) startReplay(feedClient, sub.topic, sub.qos)
    }
  })
  const startReplay = (client: FeedClient, topic: string, qos: number): void => {
    feeds.startReplay(client, topic, qos).catch((err: Error) => {
      log.error({ err, clientId: client.id, topic }, 'replay failed')
    })
  }
  broker.on('subscribe', (subs: Array<{ topic: string, qos: number }>, client: Client) => {
    for (const sub of subs) {
      if (sub.qos !== 128 && feeds.isReplay(sub.topic)) startReplay(client as unknown as FeedClient, sub.topic, sub.qos)
    }
  })
  broker.on('connackSent', (_packet, client: Client) => feeds.connackSent(client as unknown as FeedClient))
  broker.on('clientDisconnect', (client: Client) => feeds.disconnected(client as unknown as FeedClient))
  broker.on('clientError', (client: Client, err: Error) => log.debug({ clientId: client.id, err: err.message }, 'client error'))
  broker.on('connectionError', (_client: Client, err: Error) => log.debug({ err: err.message }, 'connection error'))
  ;(broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.error({ err }, 'broker error'))
  return broker
}
