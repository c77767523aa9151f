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
import { clientLogFields, disconnectLogFields, refusalLogFields } from './connection-log.js'
import { disconnectInfo, markClientError, markDisconnect } from './disconnect-reason.js'
import { isHookRefusal } from './hooks/context.js'
import { watchLiveness } from './listeners/guard.js'
import { asFeedClient, connectedClients, onBrokerError, startMessageCounterAt, unregisterClient } from './aedes-internals.js'
import type { LivenessOptions } from './listeners/liveness.js'
import type { Observers } from './metrics/node-metrics.js'
import { connectRefusal } from './metrics/counters.js'

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
  /** The node's counters and latency sampling (metrics/); null with `--metrics off`. */
  metrics: Observers | null
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
  const { feeds, log, metrics } = parts
  const counters = metrics?.counters ?? null
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
    metrics,
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
  // A stored message is named `<node id>:<counter>`, and a node may start again under its id (after a crash, on the
  // same store) while messages of its earlier run are still queued for persistent sessions: the counter starts at the
  // start time in microseconds, so a later run's names follow, and never take, an earlier run's (unless that run
  // averaged more than a million messages a second). Before any client connects.
  startMessageCounterAt(broker, Date.now() * 1000)
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
  broker.on('clientReady', (client: Client) => {
    if (counters !== null) counters.connects++
    log.info(clientLogFields(client, parts.access), 'client connected')
  })
  // With why the connection ended (disconnect-reason.ts): marked by whoever closed it, or read from the client now.
  broker.on('clientDisconnect', (client: Client) => {
    if (counters !== null) counters.disconnects++
    log.info(disconnectLogFields(client, parts.access, disconnectInfo(client, broker?.closed === true)), 'client disconnected')
    feeds.disconnected(asFeedClient(client))
  })
  // aedes emits this, then an error, then closes the client.
  broker.on('keepaliveTimeout', (client: Client) => markDisconnect(client, 'keepalive-timeout'))
  // A refused CONNECT ends as one of these, its CONNACK return code in `errorCode` (aedes lib/handlers/connect.js).
  const countRefusal = (err: Error): void => {
    const { errorCode, kind } = err as Error & { errorCode?: unknown, kind?: unknown }
    const reason = counters !== null && typeof errorCode === 'number' ? connectRefusal(errorCode, kind) : undefined
    if (counters !== null && reason !== undefined) counters.connectRefused[reason]++
  }
  broker.on('clientError', (client: Client, err: Error) => {
    countRefusal(err)
    logConnectRefusal(client, err)
    markClientError(client, err)
    log.debug({ clientId: client.id, err }, 'client error')
  })
  broker.on('connectionError', (client: Client, err: Error) => {
    countRefusal(err)
    logConnectRefusal(client, err)
    log.debug({ err }, 'connection error')
  })
  /** CONNECT refusals aedes makes itself (CONNACK 1, protocol level not 3 or 4); the hooks log their own. */
  function logConnectRefusal (client: Client, err: Error): void {
    const returnCode = (err as Error & { errorCode?: unknown }).errorCode
    if (typeof returnCode !== 'number' || isHookRefusal(err)) return
    log.warn(refusalLogFields(client, parts.access, err.message, returnCode), 'CONNECT refused')
  }
  onBrokerError(broker, (err) => log.error({ err }, 'broker error'))
  return broker
}
