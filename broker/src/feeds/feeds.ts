/**
 * Feeds, wired to aedes: the one place that decides what a feed message and a `$replay` subscription do.
 *  - publish to a feed topic: the store stamps it (seq, epoch, ts) and keeps it before the publish goes on, so a
 *    QoS 1 PUBACK means "stored" (aedes acknowledges only after authorizePublish calls back);
 *  - every feed message the node's message stream carries goes to the hub, which serves `$replay` viewers;
 *  - `$replay/...` subscriptions are parsed (SUBACK 0x80 when invalid) and attached to the hub.
 */
import { peekPosition } from './envelope.js'
import type { FeedHub, Attachment, FeedSink } from './hub.js'
import { parseReplayFilter, isReplayFilter, type ReplayRequest } from './replay-filter.js'
import type { FeedStore } from './store.js'
import { topicMatches } from './topic-filter.js'

/** The part of an aedes client that feeds use (aedes lib/client.js). */
export interface FeedClient {
  readonly id: string
  readonly closed: boolean
  deliverQoS: (packet: { cmd: 'publish', topic: string, payload: Buffer, qos: 0 | 1 | 2, retain: boolean, dup: boolean }, cb: () => void) => void
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

  /**
   * @param filters the topic filters whose matching topics are feeds (e.g. `matches/+/events`)
   */
  constructor (filters: readonly string[], store: FeedStore, hub: FeedHub) {
    this.filters = filters
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
    const sink: FeedSink = {
      send: (payload) => client.deliverQoS({ cmd: 'publish', topic: filter, payload, qos: deliverQoS, retain: false, dup: false }, noop),
      get closed () { return client.closed }
    }
    // The slot is taken before the (possibly async) load, so an UNSUBSCRIBE or a disconnect during the load wins.
    const slot: Slot = { att: null, released: false }
    mine.set(filter, slot)
    const att = await this.#hub.attach(request.feed, request.from, sink)
    slot.att = att
    if (slot.released || client.closed) this.#hub.detach(att)
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
    for (const slot of mine.values()) this.#release(slot)
    this.#attached.delete(client)
  }

  #release (slot: Slot): void {
    slot.released = true
    if (slot.att !== null) this.#hub.detach(slot.att)
  }
}
