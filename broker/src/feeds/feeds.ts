/**
 * Feeds, wired to aedes: the one place that decides what a feed message and a `$replay` subscription do.
 *  - publish to a feed topic: the store stamps it (seq, epoch, ts) and keeps it before the publish goes on, so a
 *    QoS 1 PUBACK means "stored" (aedes acknowledges only after authorizePublish calls back);
 *  - every feed message the node's message stream carries goes to the hub, which serves `$replay` viewers;
 *  - `$replay/...` subscriptions are parsed (SUBACK 0x80 when invalid) and attached to the hub.
 */
import { randomUUID } from 'node:crypto'
import { peekPosition } from './envelope.js'
import type { FeedHub, Attachment, FeedSink } from './hub.js'
import { parseReplayFilter, isReplayFilter, type ReplayRequest } from './replay-filter.js'
import type { FeedStore } from './store.js'
import { topicMatches } from './topic-filter.js'

/** The part of an aedes client that feeds use (aedes lib/client.js). */
export interface FeedClient {
  readonly id: string
  readonly closed: boolean
  /** False for a persistent session (MQTT 3.1.1 section 3.1.2.4). */
  readonly clean: boolean
  /** False while aedes restores a persistent session's subscriptions, before CONNACK. */
  readonly connackSent: boolean
  deliverQoS: (packet: OutgoingPacket, cb: () => void) => void
}

/** A PUBLISH the hub sends. `brokerId`/`brokerCounter` identify it in aedes' outgoing store and duplicate filter. */
export interface OutgoingPacket {
  cmd: 'publish'
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  dup: boolean
  brokerId?: string
  brokerCounter?: number
}

/** The part of aedes persistence that persistent sessions need: QoS 1 messages are queued before they are sent. */
export interface OutgoingQueue {
  outgoingEnqueue: (sub: { clientId: string }, packet: OutgoingPacket) => Promise<void>
}

/** The part of aedes' message emitter (mqemitter or mqemitter-redis) that feeds use. */
export interface MessageStream {
  on: (topic: string, listener: (packet: { topic: string, payload: Buffer }, cb: () => void) => void, done?: () => void) => void
}

const noop = (): void => {}

/** A client's `$replay` subscription: its hub attachment once the history is loaded. */
interface Slot {
  att: Attachment | null
  released: boolean
}

export class Feeds {
  readonly filters: readonly string[]
  readonly #store: FeedStore
  readonly #hub: FeedHub
  readonly #attached = new WeakMap<FeedClient, Map<string, Slot>>()
  /** Where persistent sessions' `$replay` subscriptions stopped, by client id and filter, to resume on reconnect. */
  readonly #parked = new Map<string, { seq: number, epoch: string }>()
  readonly #maxParked: number

  readonly #outgoing: OutgoingQueue | null
  readonly #brokerId = `feeds-${randomUUID()}`
  #counter = 0
  readonly #connackWaiters = new WeakMap<FeedClient, Array<() => void>>()

  /**
   * @param filters the topic filters whose matching topics are feeds (e.g. `matches/+/events`)
   * @param outgoing aedes persistence, to queue QoS 1 messages of persistent sessions (MQTT 3.1.1 section 4.4)
   * @param maxParked how many persistent sessions' `$replay` positions are kept for their reconnect
   */
  constructor (filters: readonly string[], store: FeedStore, hub: FeedHub, outgoing: OutgoingQueue | null = null, maxParked = 100_000) {
    this.filters = filters
    this.#outgoing = outgoing
    this.#maxParked = maxParked
    this.#store = store
    this.#hub = hub
  }

  /** True when `topic` (a topic name) is a feed. */
  isFeed (topic: string): boolean {
    return this.filters.some((f) => topicMatches(f, topic))
  }

  /**
   * Stamps and stores one publish to a feed; resolves with the envelope bytes that replace the payload.
   * @throws when the store fails: the publish must then be refused, not acknowledged
   */
  async stamp (topic: string, payload: Buffer): Promise<Buffer> {
    const { entry } = await this.#store.append(topic, payload, Date.now())
    return entry.payload
  }

  /** Subscribes the hub to every feed on the node's message stream; resolves once subscribed. */
  async listen (mq: MessageStream): Promise<void> {
    await Promise.all(this.filters.map(async (filter) => await new Promise<void>((resolve) => {
      mq.on(filter, (packet, cb) => {
        const pos = peekPosition(packet.payload)
        if (pos !== null) this.#hub.onLive(packet.topic, pos.epoch, { seq: pos.seq, payload: packet.payload })
        cb()
      }, () => resolve())
    })))
  }

  /** True when `filter` is a `$replay/...` filter, valid or not. */
  isReplay (filter: string): boolean {
    return isReplayFilter(filter)
  }

  /**
   * Parses a `$replay/...` filter.
   * @throws ReplayFilterError naming what is wrong
   */
  parseReplay (filter: string): ReplayRequest {
    return parseReplayFilter(filter, this.filters)
  }

  /**
   * Starts sending a feed's history then live messages to a client, on the PUBLISH topic `filter` (the `$replay`
   * filter it subscribed to), at QoS min(granted, 1). Replaces an earlier attachment of the same filter.
   */
  async attach (client: FeedClient, filter: string, request: ReplayRequest, qos: 0 | 1 | 2): Promise<void> {
    let mine = this.#attached.get(client)
    if (mine === undefined) {
      mine = new Map()
      this.#attached.set(client, mine)
    }
    const before = mine.get(filter)
    if (before !== undefined) this.#release(before)
    const deliverQoS = (qos > 0 ? 1 : 0) as 0 | 1
    const sink = this.#sink(client, filter, deliverQoS)
    // The slot is taken before the (possibly async) load, so an UNSUBSCRIBE or a disconnect during the load wins.
    const slot: Slot = { att: null, released: false }
    mine.set(filter, slot)
    let from = request.from
    const key = `${client.id}\u0000${filter}`
    const parked = this.#parked.get(key)
    if (parked !== undefined) {
      this.#parked.delete(key)
      // aedes restores a persistent session's subscriptions before CONNACK: go on from where the session stopped.
      if (!client.connackSent) from = { kind: 'after', seq: parked.seq, epoch: parked.epoch }
    }
    const att = await this.#hub.attach(request.feed, from, sink)
    slot.att = att
    if (slot.released || client.closed) this.#hub.detach(att)
  }

  /**
   * Where the hub sends one client's messages. A clean session gets them straight away; a persistent session's
   * QoS 1 messages are queued in aedes persistence first, in order, so they survive a disconnect like any other.
   */
  #sink (client: FeedClient, topic: string, qos: 0 | 1): FeedSink {
    const outgoing = this.#outgoing
    if (client.clean || qos === 0 || outgoing === null) {
      return {
        send: (payload) => client.deliverQoS({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, noop),
        get closed () { return client.closed }
      }
    }
    // A restored session gets nothing before its CONNACK (MQTT 3.1.1 section 3.2.0 [MQTT-3.2.0-1]).
    let chain = client.connackSent ? Promise.resolve() : this.#afterConnack(client)
    return {
      send: (payload) => {
        const packet: OutgoingPacket = { cmd: 'publish', topic, payload, qos, retain: false, dup: false, brokerId: this.#brokerId, brokerCounter: ++this.#counter }
        chain = chain.then(async () => await outgoing.outgoingEnqueue({ clientId: client.id }, packet))
          .then(() => client.deliverQoS(packet, noop), noop)
      },
      get closed () { return client.closed }
    }
  }

  #afterConnack (client: FeedClient): Promise<void> {
    return new Promise((resolve) => {
      const waiting = this.#connackWaiters.get(client)
      if (waiting === undefined) this.#connackWaiters.set(client, [resolve])
      else waiting.push(resolve)
    })
  }

  /** Tells feeds that aedes has sent a client its CONNACK (aedes event `connackSent`). */
  connackSent (client: FeedClient): void {
    const waiting = this.#connackWaiters.get(client)
    if (waiting === undefined) return
    this.#connackWaiters.delete(client)
    for (const resolve of waiting) resolve()
  }

  /** Stops a client's `$replay` subscription (UNSUBSCRIBE). */
  detach (client: FeedClient, filter: string): void {
    const mine = this.#attached.get(client)
    const slot = mine?.get(filter)
    if (slot === undefined) return
    this.#release(slot)
    mine?.delete(filter)
  }

  /** Stops all of a client's `$replay` subscriptions (disconnect). */
  detachAll (client: FeedClient): void {
    const mine = this.#attached.get(client)
    if (mine === undefined) return
    for (const [filter, slot] of mine) {
      this.#release(slot)
      if (!client.clean && slot.att !== null && slot.att.epoch !== null) this.#park(`${client.id}\u0000${filter}`, slot.att.lastSeq, slot.att.epoch)
    }
    this.#attached.delete(client)
  }

  #park (key: string, seq: number, epoch: string): void {
    this.#parked.delete(key)
    this.#parked.set(key, { seq, epoch })
    if (this.#parked.size > this.#maxParked) this.#parked.delete(this.#parked.keys().next().value as string)
  }

  #release (slot: Slot): void {
    slot.released = true
    if (slot.att !== null) this.#hub.detach(slot.att)
  }
}
