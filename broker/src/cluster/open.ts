/**
 * Opens a node's link to the cluster: the Redis connections, the message stream (cluster/emitter.ts), the aedes
 * persistence (cluster/persistence.ts) and the feed store (feeds/redis-store.ts). Every key and channel starts with
 * the configured prefix.
 *
 * Before anything else is done under the node's id, the node takes the lease on it (cluster/node-lease.ts): a start
 * under an id a live node of the cluster holds fails; one under the id of a run that died waits for its lease to
 * expire (at most 3 heartbeat intervals).
 *
 * Connections (four per node, five with `--redis-min-replicas`), all to one server or all to the master the sentinels
 * elect (cluster/redis-target.ts): `pub` publishes messages and runs the feed store's scripts; `sub` receives
 * messages; `state` holds sessions and retained messages (ioredis `keyPrefix`); `notices` receives retained-message
 * notices; `appends`, with `--redis-min-replicas` N > 0, writes feed appends and waits on them for N replicas (Redis
 * WAIT blocks the connection it runs on, so it never holds up `pub`, which carries every message).
 * While Redis is unreachable every command waits in ioredis' offline queue and runs after the reconnect, so a publish
 * is acknowledged only once it is in Redis; viewers stay connected, and clean-session viewers can still join.
 * The node is ready (/readyz) while every connection is up and Redis answers a PING on `state` within 1.5 s (sent every
 * second): a Redis that holds its connections open without answering (stopped, swapping) makes the node unready too.
 */
import type { Redis, RedisOptions } from 'ioredis'
import type { Logger } from '../log.js'
import { RedisFeedStore } from '../feeds/redis-store.js'
import { ReplicaWait } from '../feeds/replica-wait.js'
import { connectRedis, databaseOf, describeTarget, type RedisTarget } from './redis-target.js'
import { probeRedis } from './redis-probe.js'
import { watchSentinelSwitches } from './sentinel-switch.js'
import { ClusterEmitter, type ClusterEmitterOptions } from './emitter.js'
import { takeNodeLease, type NodeLease } from './node-lease.js'

export type ClientInfo = ClusterEmitterOptions['clientInfo']
import { ClusterPersistence } from './persistence.js'

export interface ClusterLink {
  mq: ClusterEmitter
  persistence: ClusterPersistence
  store: RedisFeedStore
  /** True while every connection to Redis is up and Redis answers (a PING within 1.5 s). */
  ready: () => boolean
  /** Registers a call made each time the message stream is back after a cut (to catch feeds up). */
  onResubscribed: (fn: () => void) => void
  /**
   * Closes the feed store, releases the node id's lease, closes the persistence, then every connection; within about
   * 4 s even when Redis is down.
   */
  close: () => Promise<void>
}

export interface ClusterOptions {
  /** One Redis server, or sentinels and a master name. */
  target: RedisTarget
  /** Replicas a feed append must reach before it is acknowledged (Redis WAIT); 0: none. */
  minReplicas?: number
  prefix: string
  nodeId: string
  /** ms between the node's heartbeats: its lease on `nodeId` lives 3 of them and is renewed every one. */
  heartbeatInterval: number
  history: number
  /** The client with this id on this node, if any: its clean session flag and identity. */
  clientInfo: ClientInfo
  /** Called when a connection on another node takes over this node's client `clientId` (MQTT 3.1.4). */
  onTakeover?: (clientId: string, byNode: string) => void
  log: Logger
  /** Told the round trip of a Redis command (the lease's renewal, once per heartbeat interval), in seconds. */
  onRoundTrip?: (seconds: number) => void
}

/**
 * Connects to Redis (4 or 5 connections), takes the lease on the node id, and builds the node's cluster parts.
 * @throws Error naming the URL (or the sentinels) when Redis cannot be reached within 5 s at start
 * @throws NodeIdInUseError (cluster/node-lease.ts) naming the id when a live node of the cluster holds it
 */
export async function openCluster (opts: ClusterOptions): Promise<ClusterLink> {
  const { target, prefix, log } = opts
  const minReplicas = opts.minReplicas ?? 0
  const base: RedisOptions = {
    // Commands wait for the reconnect rather than fail: an unacknowledged publish is retried by its publisher, and
    // an acknowledged one must be in Redis.
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(50 * times, 1000),
    connectionName: `tribune:${opts.nodeId}`,
    lazyConnect: true
  }
  const redact = describeTarget(target)
  // Keys live in the URL's database, but pub/sub channels are shared by every database of a Redis server: a
  // database other than 0 goes into the channel prefix, so two clusters on one server never hear each other.
  const db = databaseOf(target)
  const channels = db > 0 ? `${prefix}db${db}:` : prefix
  const connect = (name: string, extra: RedisOptions = {}): Redis => {
    const conn = connectRedis(target, { ...base, ...extra })
    let down = false
    let up = false // before the first connect, a failure is the start's to report (one error, below), not a warning
    conn.on('error', (err: Error) => {
      lastError = err
      if (!down && up) log.warn({ redis: redact, connection: name, err }, 'redis connection lost; retrying')
      down = true
    })
    // A sentinel that does not know the master name (or answered nothing useful): the likely reason a start fails.
    conn.on('sentinelError', (err: Error) => { lastSentinelError = err })
    conn.on('ready', () => {
      if (down && up) log.info({ redis: redact, connection: name }, 'redis connection back')
      down = false
      up = true
    })
    return conn
  }
  let lastError: Error | null = null
  let lastSentinelError: Error | null = null
  const pub = connect('pub', { enableAutoPipelining: true })
  const sub = connect('sub')
  const state = connect('state', { keyPrefix: prefix })
  const notices = connect('notices')
  // Not auto-pipelined: ioredis sends again, after a reconnect, every command of this connection under way, where it
  // would abort those of a pipeline cut short (a feed publish then refused instead of waiting for the new master).
  const appends = minReplicas > 0 ? connect('appends') : null
  const all = appends !== null ? [pub, sub, state, notices, appends] : [pub, sub, state, notices]
  const listeners: Array<() => void> = []
  let first = true
  sub.on('ready', () => {
    if (first) {
      first = false
      return
    }
    // ioredis subscribes again as it reconnects; catch up once now and once more a little later, after any
    // subscription still being restored.
    for (const fn of listeners) fn()
    setTimeout(() => { for (const fn of listeners) fn() }, 1000).unref()
  })
  try {
    await withTimeout(Promise.all(all.map(async (c) => await c.connect())), 5000)
  } catch (err) {
    for (const c of all) c.disconnect()
    // The connections' own errors say why (ECONNREFUSED, WRONGPASS, ENOTFOUND); the connect() error only that it closed.
    // With sentinels, what the last one answered says more than ioredis' summary ("All sentinels are unreachable").
    const reason = (lastSentinelError as Error | null)?.message ?? (lastError as Error | null)?.message ?? (err as Error).message
    const where = 'sentinels' in target ? `do the sentinels answer, and know a master named ${target.masterName}?` : 'is Redis running there?'
    throw new Error(`redis ${redact}: cannot connect (${reason}); ${where} (a running node rides out an outage, but does not start without Redis)`)
  }
  // On `state`, whose keyPrefix puts the key under the prefix; it is also the last connection to close (aedes closes
  // `pub` and `sub` with its message stream before the stores close).
  let lease: NodeLease
  try {
    lease = await takeNodeLease({ conn: state, prefix, nodeId: opts.nodeId, heartbeatInterval: opts.heartbeatInterval, log, onRoundTrip: opts.onRoundTrip })
  } catch (err) {
    for (const c of all) c.disconnect()
    throw err
  }
  const mq = new ClusterEmitter({
    nodeId: opts.nodeId,
    prefix: channels,
    pubConn: pub,
    subConn: sub,
    clientInfo: opts.clientInfo,
    onTakeover: opts.onTakeover,
    onForeign: (channel, err) => log.warn({ channel, err }, 'dropped a message that is not Tribune\'s on a channel under its prefix')
  })
  const persistence = new ClusterPersistence({
    conn: state,
    subscriber: notices,
    prefix: channels,
    onError: (err) => log.warn({ err }, 'dropped a retained notice that is not Tribune\'s')
  })
  const store = new RedisFeedStore(pub, {
    prefix,
    history: opts.history,
    replicated: appends !== null ? { conn: appends, wait: new ReplicaWait(appends, { replicas: minReplicas, log }) } : undefined
  })
  const switches = 'sentinels' in target ? watchSentinelSwitches(target.sentinels, target.masterName, all, log) : null
  const probe = probeRedis(state, {
    everyMs: 1000,
    timeoutMs: 1500,
    onChange: (answering, waitedMs) => {
      if (answering) log.info({ redis: redact }, 'redis answers again')
      else log.warn({ redis: redact, waitedMs }, 'redis does not answer (PING unanswered); node not ready')
    }
  })
  return {
    mq,
    persistence,
    store,
    ready: () => all.every((c) => c.status === 'ready') && probe.answering(),
    onResubscribed: (fn) => listeners.push(fn),
    close: async () => {
      // Appends in flight and the persistence's last commands wait for Redis; when it is unreachable, give up after
      // 2 s each and drop the connections (nothing unacknowledged is lost: publishers resend).
      probe.stop()
      switches?.stop()
      await withTimeout(store.close(), 2000).catch(() => {})
      // Deleted if still ours, so a clean restart under the same id starts at once; before the persistence
      // disconnects `state`.
      await lease.release(1000)
      await withTimeout(persistence.destroy(), 2000).catch(() => {})
      for (const c of all) c.disconnect()
    }
  }
}

async function withTimeout<T> (p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}
