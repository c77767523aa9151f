/**
 * Where a node keeps its state: the embedded store (one node; LevelDB or memory) or Redis (a cluster member, with
 * `--redis` or `--redis-sentinels`). Either way the node gets an aedes persistence, a feed store and, for a cluster,
 * a message stream.
 */
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { BrokerConfig } from './config.js'
import type { Logger } from './log.js'
import { openDatabase } from './store/db.js'
import { CachedRetainedPersistence } from './store/persistence.js'
import { LevelFeedStore } from './feeds/level-store.js'
import type { FeedStore } from './feeds/store.js'
import { openCluster, type ClientInfo } from './cluster/open.js'
import { redisTarget } from './cluster/redis-target.js'
import type { Emitter } from './cluster/emitter.js'
import type { SessionOwners } from './auth/access.js'
import type { StoreFigures } from './metrics/stats.js'
import type { RetainedStore } from './store/retained.js'

export interface NodeStores {
  /** This node's id (aedes `id`): `--node-id`, or the host name and a random suffix. */
  nodeId: string
  /** The aedes persistence. */
  persistence: unknown
  /** The same persistence's retained messages (admin `retained.delete`). */
  retained: RetainedStore
  feeds: FeedStore
  /** The message stream between nodes; undefined for a single node (aedes' in-memory one). */
  mq: Emitter | undefined
  /** Wills an earlier run of this node left behind (its clients are gone); publish them at start. */
  orphanWills: () => Promise<Array<{ clientId: string, brokerId: string, topic: string, payload: Buffer, qos: number, retain: boolean }>>
  /** Deletes a will once published. */
  delWill: (will: { clientId: string, brokerId: string }) => Promise<void>
  /** Owners of persistent sessions, kept in the store (in a cluster, Redis: the same on every node). */
  sessionOwners: SessionOwners | undefined
  /** Retained messages held, session-queue drops and foreign Redis messages, for the statistics (metrics/stats.ts). */
  figures: () => StoreFigures
  /** 'embedded' or 'redis', and whether the node can reach it now. */
  kind: 'embedded' | 'redis'
  ready: () => boolean
  /** Registers a call made when the message stream is back after a cut. */
  onResubscribed: (fn: () => void) => void
  /** Closes the stores; call after aedes has closed. */
  close: () => Promise<void>
}

/**
 * Opens the node's stores for `config`.
 * @param clientInfo the client with this id on this node, if any: clean session flag and identity (cluster: takeover
 *   checks; embedded store: whether a session is connected, for its queue limit)
 * @param onTakeover a cluster member calls this when a connection on another node takes over this node's client
 * @param onRedisRoundTrip told the round trip of a Redis command in seconds, once per heartbeat interval (cluster)
 * @throws Error naming the data dir or the Redis URL when it cannot be opened; NodeIdInUseError naming the id when a
 *   live node of the cluster holds it (a cluster member waits up to 3 heartbeat intervals for a run that died)
 */
export async function openStores (config: BrokerConfig, log: Logger, clientInfo: ClientInfo,
  onTakeover?: (clientId: string, byNode: string) => void, onRedisRoundTrip?: (seconds: number) => void): Promise<NodeStores> {
  const nodeId = config.nodeId ?? `${hostname().replace(/[^A-Za-z0-9_.-]/g, '-')}-${randomBytes(3).toString('hex')}`
  const target = redisTarget(config)
  if (target !== undefined) {
    const link = await openCluster({ target, minReplicas: config.redisMinReplicas, prefix: config.redisPrefix, nodeId, heartbeatInterval: config.heartbeatInterval, history: config.feedHistory, clientInfo, onTakeover, log, onRoundTrip: onRedisRoundTrip })
    return {
      nodeId,
      persistence: link.persistence,
      retained: link.persistence,
      feeds: link.store,
      mq: link.mq,
      sessionOwners: link.persistence,
      // Persistent sessions' queues are not bounded per session in Redis: nothing is dropped there.
      figures: () => ({ retained: link.persistence.retainedCount, sessionQueueDrops: 0, foreignMessages: link.mq.foreignMessages }),
      orphanWills: async () => await link.persistence.orphanWills(),
      delWill: async (w) => { await link.persistence.delWill({ id: w.clientId, brokerId: w.brokerId }) },
      kind: 'redis',
      ready: link.ready,
      onResubscribed: link.onResubscribed,
      close: async () => {
        await link.close()
      }
    }
  }
  const db = await openDatabase(config.dataDir)
  const persistence = new CachedRetainedPersistence((db as unknown as { sublevel: (name: string, opts: object) => unknown }).sublevel('aedes', { valueEncoding: 'buffer' }),
    (id) => clientInfo(id) !== undefined)
  const feeds = new LevelFeedStore(db as never, config.feedHistory)
  return {
    nodeId,
    persistence,
    retained: persistence,
    feeds,
    mq: undefined,
    sessionOwners: persistence,
    figures: () => ({ retained: persistence.retainedCount, sessionQueueDrops: persistence.droppedQueued, foreignMessages: 0 }),
    orphanWills: async () => await persistence.orphanWills(),
    delWill: async (w) => { await persistence.delWill({ id: w.clientId }) },
    kind: 'embedded',
    ready: () => true,
    onResubscribed: () => {},
    close: async () => {
      await feeds.close()
      await persistence.destroy()
      await db.close()
    }
  }
}
