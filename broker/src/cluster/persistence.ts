/**
 * aedes persistence for a cluster node: aedes-persistence-redis 12 (sessions, subscriptions, QoS 1/2 state, wills
 * in Redis, shared by every node), changed so that a viewer's join costs Redis nothing:
 *  - retained messages are served from memory (store/retained.ts). Each retained write is one MULTI that sets the
 *    `retained` hash (the layout aedes-persistence-redis uses) and publishes a notice on `<prefix>retained`; every node
 *    (the writer too) loads the hash once at start and applies the notices, in the order Redis executed the writes;
 *  - a clean-session client (MQTT 3.1.1 section 3.1.2.4) whose id never held a persistent session in the cluster has
 *    no session state in Redis, so the reads and deletes aedes does at its connect and disconnect are skipped.
 *    The ids that did are known to every node: loaded at start (the `clients` set) and kept current from the
 *    `$SYS/<node>/new/clients` notices persistent sessions send to every node.
 * Persistent sessions (clean session off) keep aedes-persistence-redis' full behaviour.
 */
import { createRequire } from 'node:module'
import type { Readable } from 'node:stream'
import type { Redis } from 'ioredis'
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js'
import { RetainedCache, type RetainedPacket } from '../store/retained.js'
import type { Emitter, StreamPacket } from './emitter.js'
import { markRedeliveries, nextFreeIdentifier, type QueuedPacket } from '../store/redelivery.js'
import { setNextPacketIdentifier } from '../aedes-internals.js'
import { queueTargets, type QueueTarget } from '../store/queue-targets.js'

const require = createRequire(import.meta.url)

/** The hash of a persistent session's messages sent and not yet acknowledged (see outgoingUpdate). */
const sentKey = (clientId: string): string => `outgoing-sent:${encodeURIComponent(clientId)}`
const msgpack = require('msgpack-lite') as { encode: (v: unknown) => Buffer, decode: (b: Buffer) => unknown }

interface SessionClient {
  id: string
  clean?: boolean
  will?: unknown
  brokerId?: string
}

export interface ClusterPersistenceOptions {
  /** Commands (with the key prefix set as ioredis `keyPrefix`). */
  conn: Redis
  /** A connection for the retained notices (put in subscriber mode). */
  subscriber: Redis
  /** Channel prefix, e.g. `tribune:`. */
  prefix: string
  /** Called when a retained notice cannot be decoded. */
  onError?: (err: Error) => void
}

export class ClusterPersistence extends AsyncRedisPersistence {
  readonly #conn: Redis
  readonly #subscriber: Redis
  readonly #channel: string
  readonly #retained = new RetainedCache()
  readonly #onError: (err: Error) => void
  /** Client ids that hold (or held) a persistent session somewhere in the cluster. */
  readonly #persistent = new Set<string>()
  /** Clean-session clients of this node that stored QoS 2 state (it must be deleted when they go). */
  readonly #incoming = new Set<string>()
  #nodeId = ''
  /** Retained notices that came while a load of the whole set is under way (applied after it, in order). */
  #queued: Buffer[] = []
  #loads = 1 // the first load, at setup
  /** This node's retained writes waiting for their own notice, by token. */
  readonly #own = new Map<string, () => void>()
  #writes = 0

  constructor (opts: ClusterPersistenceOptions) {
    super({ conn: opts.conn })
    this.#conn = opts.conn
    this.#subscriber = opts.subscriber
    this.#channel = `${opts.prefix}retained`
    this.#onError = opts.onError ?? (() => {})
  }

  /** Loads sessions (aedes-persistence-redis), the ids of persistent sessions and every retained message. */
  override async setup (broker: unknown): Promise<void> {
    const aedes = broker as { id: string, mq: Emitter }
    this.#nodeId = aedes.id
    this.#subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      if (channel.toString() !== this.#channel) return
      if (this.#loads > 0) this.#queued.push(message)
      else this.#applyNotice(message)
    })
    await this.#subscriber.subscribe(this.#channel)
    await super.setup(broker)
    for (const id of await this.#conn.smembers('clients')) this.#persistent.add(id)
    // aedes learns that a node is alive from its heartbeats only: until the first one, another node's will sweep would
    // take the new node's clients' wills for a dead node's. Its birth notice counts as a heartbeat.
    const brokers = (broker as { brokers: Record<string, number> }).brokers
    await new Promise<void>((resolve) => aedes.mq.on('$SYS/+/birth', (packet: StreamPacket, done) => {
      brokers[String(packet.payload)] = Date.now()
      done()
    }, resolve))
    await new Promise<void>((resolve) => aedes.mq.on('$SYS/+/new/clients', (packet: StreamPacket, done) => {
      // Only persistent sessions' notices reach other nodes (cluster/emitter.ts); this node's own are local.
      if (!packet.topic.startsWith(`$SYS/${this.#nodeId}/`)) this.#persistent.add(String(packet.payload))
      done()
    }, resolve))
    await this.#loadRetained(false)
    // Notices sent while the connection was down are lost: read the whole set again once it is back (the connection
    // is up already, so every 'ready' from now on is a reconnect), and once more after its SUBSCRIBE is surely back.
    const reload = (): void => {
      this.#loadRetained(true).catch((err: Error) => this.#onError(err))
    }
    this.#subscriber.on('ready', () => {
      reload()
      setTimeout(reload, 1000).unref()
    })
  }

  /**
   * Replaces the retained messages held in memory with Redis' set (one HGETALL). Notices that come from the start of
   * the first of overlapping loads are applied after the last one, in order: the last notice of a topic is at least as
   * new as what HGETALL read, and a topic without a later notice gets back the value HGETALL read.
   */
  async #loadRetained (again: boolean): Promise<void> {
    if (again) this.#loads++
    try {
      const all = await this.#conn.hgetallBuffer('retained')
      this.#retained.clear()
      for (const value of Object.values(all)) this.#retained.apply(msgpack.decode(value) as RetainedPacket)
    } finally {
      if (--this.#loads === 0) {
        const queued = this.#queued
        this.#queued = []
        for (const message of queued) this.#applyNotice(message)
      }
    }
  }

  /** Retained topics held in memory. */
  get retainedCount (): number {
    return this.#retained.size
  }

  /**
   * Stores (or, with an empty payload, deletes) a retained message and tells every node, in one MULTI; resolves once
   * this node has applied its own notice (at most 2 s), so every node, this one included, applies retained writes in
   * the one order Redis executed them. Rejects when Redis fails (aedes then does not acknowledge the PUBLISH).
   */
  override async storeRetained (packet: RetainedPacket): Promise<void> {
    const gone = packet.payload.length === 0
    const token = `${this.#nodeId}:${++this.#writes}`
    const encoded = msgpack.encode({ cmd: 'publish', topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: true })
    const notice = msgpack.encode({ topic: packet.topic, payload: gone ? Buffer.alloc(0) : packet.payload, qos: packet.qos, t: token })
    const applied = new Promise<void>((resolve) => {
      this.#own.set(token, resolve)
      // Without its notice (the notice connection is down) the write still stands: the reload after the reconnect
      // brings it into memory.
      setTimeout(() => { if (this.#own.delete(token)) resolve() }, 2000).unref()
    })
    const multi = this.#conn.multi()
    if (gone) multi.hdel('retained', packet.topic)
    else multi.hset('retained', packet.topic, encoded)
    multi.publish(this.#channel, notice)
    try {
      const results = await multi.exec()
      const failed = results?.find(([err]) => err !== null)
      if (results === null || failed !== undefined) throw failed?.[0] ?? new Error('retained write aborted')
    } catch (err) {
      this.#own.delete(token)
      throw err
    }
    await applied
  }

  override createRetainedStream (pattern: string): Readable {
    return this.#retained.stream([pattern])
  }

  /** Retained messages matching any of `patterns`, from memory. */
  override createRetainedStreamCombi (patterns: string[]): Readable {
    return this.#retained.stream(patterns)
  }

  /** The same as an array, which aedes' SUBSCRIBE takes instead of the stream (patches/aedes+1.2.0.patch). */
  retainedFor (patterns: string[]): RetainedPacket[] {
    return this.#retained.list(patterns)
  }

  /**
   * Claims a client id for an identity at CONNECT (auth/access.ts SessionOwners), in Redis' `owners` hash: a persistent
   * session belongs to the identity that made it, on every node. A clean-session id that never held a persistent
   * session costs nothing; a clean connect by the owner gives the id up (its session is being discarded).
   * @returns false when another identity owns the id's persistent session
   */
  async claim (clientId: string, identity: string, clean: boolean): Promise<boolean> {
    if (clean && !this.#persistent.has(clientId)) return true
    const result = await this.#conn.multi().hsetnx('owners', clientId, identity).hget('owners', clientId).exec()
    const owner = result?.[1]?.[1]
    if (owner !== identity) return false
    if (clean) await this.#conn.hdel('owners', clientId)
    return true
  }

  /** A persistent session's subscriptions: its id is now known to hold state. */
  override async addSubscriptions (client: SessionClient, subs: unknown[]): Promise<void> {
    this.#persistent.add(client.id)
    await super.addSubscriptions(client, subs)
  }

  /** Read at a persistent session's connect (MQTT 3.1.1 section 3.1.2.4): its id is now known to hold state. */
  override async subscriptionsByClient (client: SessionClient): Promise<unknown[]> {
    this.#persistent.add(client.id)
    return await super.subscriptionsByClient(client)
  }

  override async cleanSubscriptions (client: SessionClient): Promise<void> {
    if (this.#stateless(client)) return
    await Promise.all([super.cleanSubscriptions(client), this.#conn.del(sentKey(client.id))])
  }

  override async cleanIncoming (client: SessionClient): Promise<void> {
    if (this.#stateless(client) && !this.#incoming.has(client.id)) return
    this.#incoming.delete(client.id)
    await super.cleanIncoming(client)
  }

  override async incomingStorePacket (client: SessionClient, packet: unknown): Promise<void> {
    if (client.clean === true) this.#incoming.add(client.id)
    await super.incomingStorePacket(client, packet)
  }

  /**
   * Queues a message for the persistent sessions whose filters match its topic, once per session, never for a filter
   * starting with a wildcard when the topic starts with `$` (store/queue-targets.ts): aedes passes one entry per
   * matching filter, and aedes-persistence-redis would queue the message once for each (a session with two
   * overlapping filters got it twice on reconnect, and the message's count of sessions never reached 0).
   */
  override async outgoingEnqueueCombi (subs: QueueTarget[], packet: { topic?: string }): Promise<void> {
    await super.outgoingEnqueueCombi(queueTargets(packet.topic, subs), packet)
  }

  /**
   * Notes a message about to be sent to a persistent session: aedes-persistence-redis keeps one copy of a message
   * for all the sessions it is queued for, so which sessions it was sent to is kept apart, per session: the hash
   * `outgoing-sent:<client id>`, packet identifier -> the message's `<brokerId>:<brokerCounter>` (a reused
   * identifier replaces its entry; the session's PUBACK or PUBCOMP deletes it). Both commands go out at once.
   */
  override async outgoingUpdate (client: SessionClient, packet: QueuedPacket): Promise<void> {
    if (packet.cmd !== 'publish' || packet.brokerId === undefined || packet.messageId == null) {
      await super.outgoingUpdate(client, packet)
      return
    }
    await Promise.all([
      super.outgoingUpdate(client, packet),
      this.#conn.hset(sentKey(client.id), packet.messageId, `${packet.brokerId}:${String(packet.brokerCounter)}`)
    ])
  }

  /** A message acknowledged (PUBACK, or PUBCOMP for QoS 2): it leaves the session's queue and its sent record. */
  override async outgoingClearMessageId (client: SessionClient, packet: { messageId?: number }): Promise<unknown> {
    if (packet.messageId === undefined || this.#stateless(client)) return await super.outgoingClearMessageId(client, packet)
    const [cleared] = await Promise.all([super.outgoingClearMessageId(client, packet), this.#conn.hdel(sentKey(client.id), String(packet.messageId))])
    return cleared
  }

  /**
   * A session's queued messages for aedes to send at its connect (one HGETALL per reconnect of a persistent session).
   * aedes-persistence-redis keeps one copy of a message for all the sessions it is queued for, and that copy holds the
   * packet identifier of the last session it was sent to; here each PUBLISH gets this session's own: the one it was
   * sent with before, with DUP set [MQTT-4.4.0-1], [MQTT-3.3.1-1], or none for a first delivery (aedes then gives it
   * the session's next one), and the session's next identifiers start clear of those still in flight.
   */
  override outgoingStream (client: SessionClient): AsyncIterable<unknown> {
    if (this.#stateless(client)) return (async function * () {})()
    const conn = this.#conn
    const queue = super.outgoingStream(client) // reads nothing before its first item is asked for
    return (async function * () {
      const idOf = new Map<string, number>()
      for (const [id, key] of Object.entries(await conn.hgetall(sentKey(client.id)))) idOf.set(key, Number(id))
      const next = nextFreeIdentifier(idOf.values())
      if (next !== undefined && client.clean === false) setNextPacketIdentifier(client, next)
      const keyOf = (packet: QueuedPacket): string => `${String(packet.brokerId)}:${String(packet.brokerCounter)}`
      const own = (async function * () {
        for await (const item of queue as AsyncIterable<QueuedPacket>) {
          if (item.cmd === 'publish') item.messageId = idOf.get(keyOf(item)) ?? null
          yield item
        }
      })()
      yield * markRedeliveries(client, own, (packet) => idOf.has(keyOf(packet)))
    })()
  }

  /**
   * Whether `client` may have QoS 1/2 messages queued (false only for a clean session whose id never had state): asked
   * by aedes' connect (patches/aedes+1.2.0.patch), which otherwise pipes {@link outgoingStream} through a stream
   * pipeline at every connect, an empty one for a viewer, to send or (clean session) clear what is queued.
   */
  hasOutgoing (client: SessionClient): boolean {
    return !this.#stateless(client)
  }

  /** aedes deletes the will of every connecting client; one without a will, of a clean session, has none stored. */
  override async delWill (client: SessionClient): Promise<unknown> {
    if (client.brokerId === undefined && client.will == null && this.#stateless(client)) return null
    return await super.delWill(client)
  }

  /**
   * The wills of dead nodes, for aedes' sweep to publish (MQTT 3.1.1 section 3.1.2.5). Every live node sweeps; each
   * will is claimed first (SET NX, 60 s), so only one node publishes it.
   */
  override async * streamWill (brokers: Record<string, number>): AsyncGenerator<{ clientId: string, brokerId: string }> {
    for await (const will of super.streamWill(brokers) as AsyncIterable<{ clientId: string, brokerId: string }>) {
      const claim = `will-claim:${will.brokerId}:${encodeURIComponent(will.clientId)}`
      if (await this.#conn.set(claim, this.#nodeId, 'PX', 60_000, 'NX') === 'OK') yield will
    }
  }

  /**
   * Wills stored under this node's own id by an earlier run of it (a node that died and came back with the same id
   * before the others noticed): their clients are gone, so they are due now (MQTT 3.1.1 section 3.1.2.5). Each is
   * claimed as in {@link streamWill}. Call once at start, before clients connect.
   */
  async orphanWills (): Promise<Array<{ clientId: string, brokerId: string, topic: string, payload: Buffer, qos: number, retain: boolean }>> {
    const out: Array<{ clientId: string, brokerId: string, topic: string, payload: Buffer, qos: number, retain: boolean }> = []
    for (const key of await this.#conn.lrange('will', 0, 10_000)) {
      if (!key.startsWith(`will:${this.#nodeId}:`)) continue
      const value = await this.#conn.getBuffer(key)
      if (value === null) continue
      const will = msgpack.decode(value) as (typeof out)[number]
      const claim = `will-claim:${will.brokerId}:${encodeURIComponent(will.clientId)}`
      if (await this.#conn.set(claim, this.#nodeId, 'PX', 60_000, 'NX') === 'OK') out.push(will)
    }
    return out
  }

  override async destroy (): Promise<void> {
    await super.destroy()
    this.#subscriber.disconnect()
  }

  /** A clean-session client whose id never held a persistent session: nothing of it is in Redis. */
  #stateless (client: SessionClient): boolean {
    return client.clean === true && !this.#persistent.has(client.id)
  }

  #applyNotice (message: Buffer): void {
    try {
      const packet = msgpack.decode(message) as RetainedPacket & { t?: unknown }
      if (typeof packet?.topic !== 'string' || !Buffer.isBuffer(packet.payload) || ![0, 1, 2].includes(packet.qos)) throw new Error('not a retained notice')
      this.#retained.apply(packet)
      if (typeof packet.t === 'string') {
        const done = this.#own.get(packet.t)
        this.#own.delete(packet.t)
        done?.()
      }
    } catch (err) {
      this.#onError(err as Error)
    }
  }
}
