/**
 * aedes persistence on the embedded store, with retained messages also held in memory: a viewer's SUBSCRIBE is
 * answered from memory (no database read per join), while every retained write still goes to disk first.
 * Sessions, subscriptions, QoS 1/2 state and wills are aedes-persistence-level's, with one change: a clean-session
 * client (MQTT 3.1.1 section 3.1.2.4) whose id never had state stored (subscriptions of a persistent session, queued
 * or incoming QoS 1/2 messages, a will) has nothing to delete or read, so the range deletes and reads aedes does at
 * its connect and disconnect are skipped: a viewer's join and leave touch no database. The ids with state are read
 * from the keys at start and kept current as state is written.
 * It also keeps who owns each persistent session (auth/access.ts SessionOwners), on disk, so a restart forgets none.
 */
import type { Readable } from 'node:stream'
import AsyncLevelPersistence from 'aedes-persistence-level/asyncPersistence.js'
import { RetainedCache, type RetainedPacket } from './retained.js'
import { markRedeliveries } from './redelivery.js'
import { queueTargets, type QueueTarget } from './queue-targets.js'

/**
 * QoS 1/2 messages queued for one persistent session that is offline at most; later ones are dropped until it
 * catches up (as Mosquitto's max_queued_messages, default 1000), so a session that never returns cannot grow the
 * store without end.
 */
export const MAX_QUEUED_PER_SESSION = 1000
/**
 * Unacknowledged QoS 1/2 messages one connected persistent session may hold in the store at most. aedes stores each
 * message before it sends it to such a session, and closes the connection when one is missing; a viewer joining two
 * feeds with long histories legitimately has more than {@link MAX_QUEUED_PER_SESSION} in flight. Past this, the client
 * is not acknowledging, and it is closed.
 */
export const MAX_IN_FLIGHT_PER_SESSION = 10 * MAX_QUEUED_PER_SESSION

/** The owner of a persistent session: `owner:<encodeURIComponent(id)>` -> the identity (UTF-8), beside aedes' keys. */
const OWNER = 'owner:'
const ownerKey = (clientId: string): string => `${OWNER}${encodeURIComponent(clientId)}`

/**
 * The key prefixes kept per client id (`<prefix><encodeURIComponent(id)>[:...]`): aedes-persistence-level's, and
 * the session's owner.
 */
const CLIENT_KEY_PREFIXES = ['subscriptions:', 'outgoing:', 'outgoing-id:', 'incoming:', 'will:', OWNER]

interface SessionClient { id: string, clean?: boolean }

/** A will as aedes-persistence-level stores it: the CONNECT's will, its client id and the node id it was stored by. */
export interface StoredWill { clientId: string, brokerId: string, topic: string, payload: Buffer, qos: number, retain: boolean }

/** The part of abstract-level this store uses itself (the sublevel's values are Buffers). */
interface KeyStore {
  keys: (range: { gte: string, lt: string }) => AsyncIterable<string>
  get: (key: string) => Promise<Buffer | undefined>
  put: (key: string, value: Buffer) => Promise<void>
  del: (key: string) => Promise<void>
}

export class CachedRetainedPersistence extends AsyncLevelPersistence {
  readonly #retained = new RetainedCache()
  readonly #db: KeyStore
  /** Client ids that have (or may have) state stored. */
  readonly #stateful = new Set<string>()
  /** Clean-session client ids with a will or inbound QoS 2 state stored, until aedes deletes it. */
  readonly #wills = new Set<string>()
  readonly #incoming = new Set<string>()
  /** Messages queued and not yet acknowledged, per client id (counted since start). */
  readonly #queued = new Map<string, number>()
  /** Messages dropped because a session's queue was full. */
  droppedQueued = 0
  /** The claim under way per client id: claims of one id run one after the other. */
  readonly #claims = new Map<string, Promise<boolean>>()

  readonly #isConnected: (clientId: string) => boolean

  /**
   * @param db the abstract-level database (or sublevel) aedes-persistence-level stores in
   * @param isConnected whether a client with this id is connected to this node (its queue limit is higher)
   */
  constructor (db: unknown, isConnected: (clientId: string) => boolean = () => false) {
    super(db)
    this.#db = db as KeyStore
    this.#isConnected = isConnected
  }

  /** Loads sessions (aedes-persistence-level), the ids with state, and every retained message into memory. MQTT 3.1.1 section 3.3.1.3. */
  override async setup (broker: unknown): Promise<void> {
    await super.setup(broker)
    for (const prefix of CLIENT_KEY_PREFIXES) {
      for await (const key of this.#db.keys({ gte: prefix, lt: `${prefix.slice(0, -1)};` })) {
        this.#stateful.add(decodeURIComponent(key.slice(prefix.length).split(':')[0]))
      }
    }
    for await (const packet of super.createRetainedStream('#') as AsyncIterable<RetainedPacket>) {
      this.#retained.apply(packet)
    }
  }

  /** Stores (or, with an empty payload, deletes) a retained message: on disk first, then in memory. */
  override async storeRetained (packet: RetainedPacket): Promise<void> {
    await super.storeRetained(packet)
    this.#retained.apply(packet)
  }

  /** Retained messages matching `pattern` (a topic filter), from memory. */
  override createRetainedStream (pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern])
  }

  /** Retained messages matching any of `patterns`, from memory; each message once. */
  override createRetainedStreamCombi (patterns: string[]): Readable {
    return this.#retained.stream(patterns)
  }

  /** The same as an array, which aedes' SUBSCRIBE takes instead of the stream (patches/aedes+1.2.0.patch). */
  /** Retained topics held in memory. */
  get retainedCount (): number {
    return this.#retained.size
  }

  retainedFor (patterns: string[]): RetainedPacket[] {
    return this.#retained.list(patterns)
  }

  /**
   * Queues a message for a persistent session, unless its queue is full (then it is dropped and counted): at
   * {@link MAX_QUEUED_PER_SESSION} while it is offline, {@link MAX_IN_FLIGHT_PER_SESSION} while it is connected.
   */
  override async outgoingEnqueue (sub: { clientId: string }, packet: unknown): Promise<void> {
    const n = this.#queued.get(sub.clientId) ?? 0
    if (n >= MAX_IN_FLIGHT_PER_SESSION || (n >= MAX_QUEUED_PER_SESSION && !this.#isConnected(sub.clientId))) {
      this.droppedQueued++
      return
    }
    this.#queued.set(sub.clientId, n + 1)
    await super.outgoingEnqueue(sub, packet)
  }

  /**
   * Queues a message for the persistent sessions whose filters match its topic: once per session, and never for a
   * filter starting with a wildcard when the topic starts with `$` [MQTT-4.7.2-1] (store/queue-targets.ts).
   */
  override async outgoingEnqueueCombi (subs: QueueTarget[], packet: { topic?: string }): Promise<void> {
    await super.outgoingEnqueueCombi(queueTargets(packet.topic, subs), packet)
  }

  /** An acknowledged message leaves the session's queue (MQTT 3.1.1 section 4.3.2). */
  override async outgoingClearMessageId (client: SessionClient, packet: unknown): Promise<unknown> {
    // aedes sends a clean session's QoS 1 messages without storing them: its PUBACKs have nothing to clear.
    if (this.#stateless(client)) return undefined
    const cleared = await super.outgoingClearMessageId(client, packet)
    const n = this.#queued.get(client.id)
    if (cleared !== undefined && n !== undefined) {
      if (n <= 1) this.#queued.delete(client.id)
      else this.#queued.set(client.id, n - 1)
    }
    return cleared
  }

  /** A session started clean: its queue is gone (MQTT 3.1.1 section 3.1.2.4). */
  override async cleanSubscriptions (client: SessionClient): Promise<void> {
    if (this.#stateless(client)) return
    this.#queued.delete(client.id)
    await super.cleanSubscriptions(client)
  }

  override async addSubscriptions (client: SessionClient, subs: unknown[]): Promise<void> {
    this.#stateful.add(client.id)
    await super.addSubscriptions(client, subs)
  }

  override async subscriptionsByClient (client: SessionClient): Promise<unknown[]> {
    this.#stateful.add(client.id)
    return await super.subscriptionsByClient(client)
  }

  override async incomingStorePacket (client: SessionClient, packet: unknown): Promise<void> {
    if (client.clean === true) this.#incoming.add(client.id)
    else this.#stateful.add(client.id)
    await super.incomingStorePacket(client, packet)
  }

  override async cleanIncoming (client: SessionClient): Promise<void> {
    if (this.#stateless(client)) return
    await super.cleanIncoming(client)
    this.#incoming.delete(client.id)
  }

  /**
   * A session's queued messages for aedes to send at its connect. One sent before holds the packet identifier it was
   * sent with (aedes stores it before the write): it goes again with DUP set [MQTT-3.3.1-1].
   */
  override outgoingStream (client: SessionClient): AsyncIterable<unknown> {
    if (this.#stateless(client)) return (async function * () {})()
    return markRedeliveries(client, super.outgoingStream(client), (packet) => (packet.messageId ?? 0) > 0)
  }

  /**
   * Whether `client` may have QoS 1/2 messages queued (false only for a clean session whose id never had state): asked
   * by aedes' connect (patches/aedes+1.2.0.patch), which otherwise pipes {@link outgoingStream} through a stream
   * pipeline at every connect, an empty one for a viewer, to send or (clean session) clear what is queued.
   */
  hasOutgoing (client: SessionClient): boolean {
    return !this.#stateless(client)
  }

  override async putWill (client: SessionClient, packet: unknown): Promise<unknown> {
    if (client.clean === true) this.#wills.add(client.id)
    else this.#stateful.add(client.id)
    return await super.putWill(client, packet)
  }

  override async delWill (client: SessionClient): Promise<unknown> {
    if (this.#stateless(client)) return null
    const deleted = await super.delWill(client)
    this.#wills.delete(client.id)
    return deleted
  }

  /**
   * The wills stored when the node starts (MQTT 3.1.1 section 3.1.2.5). The embedded store belongs to one node
   * process, and no client is connected yet, so each is the will of a client of an earlier run that ended without a
   * DISCONNECT (a crash, kill -9): it is due now. aedes' own sweep would never publish those stored under the node's
   * own id (it counts its own heartbeats), and those of another id only after 4 heartbeat intervals. Call once at
   * start, before the listeners open.
   */
  async orphanWills (): Promise<StoredWill[]> {
    const out: StoredWill[] = []
    for await (const will of super.streamWill() as AsyncIterable<StoredWill>) out.push(will)
    return out
  }

  /**
   * Claims client id `clientId` for identity `identity` at CONNECT (auth/access.ts SessionOwners): a persistent
   * session (clean session off) belongs to the identity that made it, and its owner is stored with the session, so it
   * outlives a restart. A clean connect by the owner gives the id up (its session is discarded, MQTT 3.1.1 section
   * 3.1.2.4); a clean-session id that never had state costs nothing. Claims of one id run one after the other.
   * @returns false when another identity owns the id's persistent session
   */
  async claim (clientId: string, identity: string, clean: boolean): Promise<boolean> {
    if (clean && !this.#stateful.has(clientId)) return true
    const before = this.#claims.get(clientId) ?? Promise.resolve(true)
    const claim = before.then(async () => await this.#claim(clientId, identity, clean), async () => await this.#claim(clientId, identity, clean))
    this.#claims.set(clientId, claim)
    try {
      return await claim
    } finally {
      if (this.#claims.get(clientId) === claim) this.#claims.delete(clientId)
    }
  }

  async #claim (clientId: string, identity: string, clean: boolean): Promise<boolean> {
    const key = ownerKey(clientId)
    const owner = (await this.#db.get(key))?.toString('utf8')
    if (owner !== undefined && owner !== identity) return false
    if (clean) {
      if (owner !== undefined) await this.#db.del(key)
    } else if (owner === undefined) {
      this.#stateful.add(clientId)
      await this.#db.put(key, Buffer.from(identity, 'utf8'))
    }
    return true
  }

  /** Client ids this store counts as having state (memory kept per id; a clean viewer's leaves with its state). */
  get trackedIds (): number {
    return this.#stateful.size + this.#wills.size + this.#incoming.size
  }

  /** A clean-session client whose id never had state stored: nothing of it is in the database. */
  #stateless (client: SessionClient): boolean {
    return client.clean === true && !this.#stateful.has(client.id) && !this.#wills.has(client.id) && !this.#incoming.has(client.id)
  }

}
