/**
 * AdminNode: what admin commands may see and do on the node they run on, and nothing else. main.ts builds it from
 * the node's parts ({@link createAdminNode}); the node's figures and drain come from one function of main.ts.
 */
import { closeClient } from '../disconnect-reason.js'
import type { Aedes } from 'aedes'
import type { Access } from '../auth/access.js'
import type { BrokerConfig } from '../config.js'
import { feedResetNotice, type Feeds, type FeedInfo, type FeedReset } from '../feeds/feeds.js'
import type { RetainedStore } from '../store/retained.js'
import { clientLogFields, type ClientLogFields } from '../connection-log.js'
import { connectedClients, subscriptionsOf } from '../aedes-internals.js'
import type { NodeDirectory } from './nodes.js'

/** A connected client as admin commands show it: the connect log line's fields, and its subscription count. */
export interface AdminClient extends ClientLogFields {
  /** Topic filters it holds (`$replay` ones included). */
  subscriptions: number
}

/** A feed as `feeds.list` shows it: the store's epoch and last seq, and what this node holds of it. */
export interface FeedListing extends FeedInfo {
  /** Messages of its history this node holds in memory (0 when no viewer replayed it here lately). */
  held: number
  /** `$replay` viewers of it on this node. */
  viewers: number
}

/** The node's figures (`node.stats`): a plain JSON object. */
export type NodeStats = Record<string, unknown>

/** The node's figures and drain: supplied by main.ts. */
export interface NodeControls {
  stats: () => NodeStats
  /**
   * Stops taking connections and disconnects the node's clients over `seconds`; the node stays up, empty.
   * @throws Error saying why it cannot
   */
  drain: (seconds: number) => Promise<void>
  /** Takes connections again after a drain (a drain under way stops where it is). */
  undrain: () => void
  /** True from a drain until undrain. */
  draining: () => boolean
}

export interface AdminNode extends NodeControls {
  readonly id: string
  /** The live nodes of the cluster as this node knows them (itself included), sorted. */
  nodes: () => string[]
  /** The clients connected to this node. */
  clients: () => AdminClient[]
  /** Closes the connection of client `clientId` on this node; false when it is not connected here. */
  kick: (clientId: string) => boolean
  feeds: () => Promise<FeedListing[]>
  /**
   * Drops a feed's history and starts a new epoch, once per `token`, and tells the viewers of every node.
   * @throws FeedResetError (feeds.ts) when it is not a feed or has no history
   */
  resetFeed: (feed: string, token: string) => Promise<FeedReset>
  isFeed: (topic: string) => boolean
  /** Whether this node holds a retained message on topic name `topic`. */
  hasRetained: (topic: string) => boolean
  /** Deletes the retained message on `topic` from the store, on every node; nothing is delivered. */
  deleteRetained: (topic: string) => Promise<void>
  /** The effective configuration (secrets included: config.get redacts them). */
  config: () => Readonly<BrokerConfig>
}

export interface AdminNodeParts {
  broker: Aedes
  access: Access
  feeds: Feeds
  retained: RetainedStore
  config: Readonly<BrokerConfig>
  directory: NodeDirectory
  controls: NodeControls
}

/** Builds the AdminNode of a running node. */
export function createAdminNode (parts: AdminNodeParts): AdminNode {
  const { broker, access, feeds, retained } = parts
  return {
    id: broker.id,
    nodes: () => parts.directory.live(),
    clients: () => Object.values(connectedClients(broker)).map((client) => ({
      ...clientLogFields(client, access),
      subscriptions: Object.keys(subscriptionsOf(client)).length
    })),
    kick: (clientId) => {
      const client = connectedClients(broker)[clientId]
      if (client === undefined) return false
      closeClient(client, 'kicked', 'clients.kick by an operator')
      return true
    },
    feeds: async () => await feeds.list(),
    resetFeed: async (feed, token) => {
      const done = await feeds.reset(feed, token)
      const notice = feedResetNotice(broker.id, feed, done)
      broker.publish({ cmd: 'publish', topic: notice.topic, payload: notice.payload, qos: 0, retain: false, dup: false }, () => {})
      return done
    },
    isFeed: (topic) => feeds.isFeed(topic),
    hasRetained: (topic) => retained.retainedFor([topic]).length > 0,
    deleteRetained: async (topic) => { await retained.storeRetained({ topic, payload: Buffer.alloc(0), qos: 0, retain: true }) },
    stats: () => parts.controls.stats(),
    drain: async (seconds) => { await parts.controls.drain(seconds) },
    undrain: () => parts.controls.undrain(),
    draining: () => parts.controls.draining(),
    config: () => parts.config
  }
}
