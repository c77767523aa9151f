/**
 * Builds the aedes broker and installs Tribune's hooks (hooks/: one file per protocol moment). Policy lives in the
 * modules the hooks call (auth/, feeds/); this file only connects them to aedes' hook slots and events.
 */
import { Aedes, type Client } from 'aedes'
import './parser.js' // mqtt-packet's parser without a stream per connection
import type { Logger } from './log.js'
import type { Feeds, FeedClient } from './feeds/feeds.js'
import type { Access } from './auth/access.js'
import type { AdminRequests, IncomingStore, HookLimits } from './hooks/context.js'
import { connectHooks } from './hooks/connect.js'
import { publishHook } from './hooks/publish.js'
import { subscribeHooks } from './hooks/subscribe.js'
import { clientLogFields } from './connection-log.js'
import { watchLiveness } from './listeners/guard.js'
import { asFeedClient, connectedClients, onBrokerError, unregisterClient } from './aedes-internals.js'
import type { LivenessOptions } from './listeners/liveness.js'

export type { IncomingStore } from './hooks/context.js'

export interface BrokerParts {
  id?: string
  persistence: IncomingStore
  /** The message stream between nodes (cluster/emitter.ts); default aedes' in-memory one. */
  mq?: unknown
  /** ms between heartbeats on `$SYS/<id>/heartbeat` (aedes `heartbeatInterval`). */
  heartbeatInterval?: number
  feeds: Feeds
  access: Access
  log: Logger
  limits: HookLimits & { connectTimeoutMs: number }
  /** How the connection of a client with keep alive 0 is watched for a dead peer. */
  liveness: LivenessOptions
  /** Where permitted PUBLISHes to `$admin/...` go (admin/service.ts). */
  admin?: AdminRequests
}

/**
 * Creates the aedes broker (not yet listening on any port), with:
 * - CONNECT: credentials -> identity, or CONNACK 2/4/5 (hooks/connect.ts);
 * - PUBLISH: topic rules, `$` topics refused, feed messages stamped and stored before the PUBACK, admin requests
 *   taken (hooks/publish.ts);
 * - SUBSCRIBE: topic rules per filter, `$replay` filters parsed and attached to the hub (hooks/subscribe.ts).
 */
export async function createBroker (parts: BrokerParts): Promise<Aedes> {
  const { feeds, log } = parts
  let broker: Aedes | null = null
  const ctx = {
    feeds,
    access: parts.access,
    log,
    persistence: parts.persistence,
    limits: parts.limits,
    publish: (topic: string, payload: Buffer) => {
      broker?.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, (err?: Error) => {
        if (err != null) log.error({ topic, err }, 'publishing a stored feed message failed')
      })
    },
    clients: () => connectedClients(broker),
    watchLiveness: (client: Client) => { watchLiveness(client.conn, parts.liveness) },
    admin: parts.admin
  }
  const startReplay = (client: FeedClient, topic: string, qos: number): void => {
    feeds.startReplay(client, topic, qos).catch((err: Error) => {
      log.error({ err, clientId: client.id, topic }, 'replay failed')
    })
  }
  broker = await Aedes.createBroker({
    id: parts.id,
    persistence: parts.persistence,
    ...(parts.mq !== undefined ? { mq: parts.mq } : {}),
    ...(parts.heartbeatInterval !== undefined ? { heartbeatInterval: parts.heartbeatInterval } : {}),
    connectTimeout: parts.limits.connectTimeoutMs,
    ...connectHooks(ctx),
    authorizePublish: publishHook(ctx),
    ...subscribeHooks(ctx, startReplay)
  })
  broker.on('subscribe', (subs: Array<{ topic: string, qos: number }>, client: Client) => {
    for (const sub of subs) {
      if (sub.qos !== 128 && feeds.isReplay(sub.topic)) startReplay(asFeedClient(client), sub.topic, sub.qos)
    }
  })
  // aedes (patched) handles a client's SUBSCRIBE and UNSUBSCRIBE packets one after the other, in arrival order, so a
  // `$replay` ends here in order too. Not at a persistent session's close (aedes emits no event then): its position stays.
  broker.on('unsubscribe', (topics: string[], client: Client) => {
    for (const topic of topics) if (feeds.isReplay(topic)) feeds.unsubscribed(asFeedClient(client), topic)
  })
  broker.on('client', (client: Client) => {
    // aedes registers a connection that closed while it was taking over a client id (its close ran before the
    // registration): take it out again, or it stays counted and held forever.
    if (client.closed && broker !== null) unregisterClient(broker, client)
  })
  broker.on('connackSent', (_packet, client: Client) => feeds.connackSent(asFeedClient(client)))
  // One line each at info (connection-log.ts); `clientReady` comes once CONNECT is complete (CONNACK 0 sent).
  broker.on('clientReady', (client: Client) => log.info(clientLogFields(client, parts.access), 'client connected'))
  broker.on('clientDisconnect', (client: Client) => {
    log.info(clientLogFields(client, parts.access), 'client disconnected')
    feeds.disconnected(asFeedClient(client))
  })
  broker.on('clientError', (client: Client, err: Error) => log.debug({ clientId: client.id, err: err.message }, 'client error'))
  broker.on('connectionError', (_client: Client, err: Error) => log.debug({ err: err.message }, 'connection error'))
  onBrokerError(broker, (err) => log.error({ err }, 'broker error'))
  return broker
}
