/**
 * Feeds, wired to aedes: the one place that decides what a feed message and a `$replay` subscription do.
 *  - publish to a feed topic: the store stamps it (seq, epoch, ts) and keeps it before the publish goes on, so a
 *    QoS 1 PUBACK means "stored" (aedes acknowledges only after authorizePublish calls back);
 *  - every feed message the node's message stream carries goes to the hub, which serves `$replay` viewers;
 *  - `$replay/...` subscriptions are parsed (SUBACK 0x80 when invalid), limited per client, and attached to the hub
 *    (replay-subscriptions.ts), sending through client-sink.ts;
 *  - a reset (admin `feeds.reset`) drops a feed's history and starts a new epoch in the store; the node that did it
 *    publishes a notice (`$SYS/<node-id>/feeds/reset`) from which every node's hub tells its viewers.
 */
import { peekPosition } from './envelope.js'
import type { FeedHub } from './hub.js'
import { parseReplayFilter, isReplayFilter, ReplayFilterError, type ReplayRequest } from './replay-filter.js'
import type { FeedInfo, FeedReset, FeedStore } from './store.js'
import { topicMatches } from './topic-filter.js'
import { ClientSinks, type FeedClient, type OutgoingQueue } from './client-sink.js'
import { ReplaySubscriptions } from './replay-subscriptions.js'

export type { FeedClient, OutgoingQueue } from './client-sink.js'
export type { FeedInfo, FeedReset } from './store.js'

/** The topic filter of the notices nodes publish after a feed reset (see {@link feedResetNotice}). */
export const FEED_RESET_FILTER = '$SYS/+/feeds/reset'

/**
 * The notice node `nodeId` publishes after it reset a feed: topic `$SYS/<node-id>/feeds/reset`, payload
 * `{"feed","epoch","previous"}`. Only the broker publishes under `$SYS` (clients are refused), so nodes trust it.
 */
export function feedResetNotice (nodeId: string, feed: string, reset: FeedReset): { topic: string, payload: Buffer } {
  return { topic: `$SYS/${nodeId}/feeds/reset`, payload: Buffer.from(JSON.stringify({ feed, epoch: reset.epoch, previous: reset.previous })) }
}

/** Refused: the topic is not a feed, or nothing was ever published to it. */
export class FeedResetError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'FeedResetError'
  }
}

/** The part of aedes' message emitter (mqemitter or mqemitter-redis) that feeds use. */
export interface MessageStream {
  on: (topic: string, listener: (packet: { topic: string, payload: Buffer }, cb: () => void) => void, done?: () => void) => void
}

export interface FeedsOptions {
  /** Topic filters whose matching topics are feeds (e.g. `matches/+/events`). */
  filters: readonly string[]
  store: FeedStore
  hub: FeedHub
  /** aedes persistence, to queue persistent sessions' QoS 1 messages; null to send directly. */
  outgoing?: OutgoingQueue | null
  /** `$replay` subscriptions one client may hold. */
  maxReplaysPerClient?: number
  /** The largest envelope accepted, in bytes (the broker's maximum packet size less the PUBLISH header). */
  maxEnvelopeBytes?: number
}

export class Feeds {
  readonly filters: readonly string[]
  readonly #store: FeedStore
  readonly #hub: FeedHub
  readonly #sinks: ClientSinks
  readonly #replays: ReplaySubscriptions
  readonly #maxEnvelopeBytes: number

  constructor (opts: FeedsOptions) {
    this.filters = opts.filters
    this.#store = opts.store
    this.#hub = opts.hub
    this.#sinks = new ClientSinks(opts.outgoing ?? null)
    this.#replays = new ReplaySubscriptions(opts.hub, this.#sinks, opts.maxReplaysPerClient ?? 256)
    this.#maxEnvelopeBytes = opts.maxEnvelopeBytes ?? Infinity
  }

  /** True when `topic` (a topic name) is a feed. */
  isFeed (topic: string): boolean {
    return this.filters.some((f) => topicMatches(f, topic))
  }

  /**
   * Stamps and stores one publish to a feed; resolves with the envelope bytes that replace the payload.
   * A resend (same data `id` still in the history) resolves with the stored envelope, and gets no new seq.
   * @throws EnvelopeTooLargeError when the envelope would exceed the maximum size; the store's error when it fails
   */
  async stamp (topic: string, payload: Buffer): Promise<Buffer> {
    const { entry } = await this.#store.append(topic, payload, Date.now(), this.#maxEnvelopeBytes)
    return entry.payload
  }

  /** Subscribes the hub to every feed on the node's message stream; resolves once subscribed. */
  async listen (mq: MessageStream): Promise<void> {
    await Promise.all(this.filters.map(async (filter) => await new Promise<void>((resolve) => {
      mq.on(filter, (packet, cb) => {
        const pos = Buffer.isBuffer(packet.payload) ? peekPosition(packet.payload) : null
        if (pos !== null) {
          this.#store.noteLive?.(packet.topic)
          this.#hub.onLive(packet.topic, pos.epoch, { seq: pos.seq, payload: packet.payload })
        }
        // Not synchronously: a backlog released at once by the emitter would otherwise recurse through here.
        process.nextTick(cb)
      }, () => resolve())
    })))
    await new Promise<void>((resolve) => mq.on(FEED_RESET_FILTER, (packet, cb) => {
      this.#applyResetNotice(packet.payload)
      cb()
    }, () => resolve()))
    await this.#store.watchLive?.()
  }

  /**
   * Drops the history of feed `feed` and starts a new epoch (once per `token`, whichever node is asked), and tells this
   * node's viewers of it at once; publish {@link feedResetNotice} for the other nodes'.
   * @throws FeedResetError when `feed` is not a feed or nothing was ever published to it; the store's error
   */
  async reset (feed: string, token: string): Promise<FeedReset> {
    if (!this.isFeed(feed)) throw new FeedResetError(`${JSON.stringify(feed)} is not a feed (feeds: ${this.filters.join(', ')})`)
    const done = await this.#store.reset(feed, token)
    if (done === null) throw new FeedResetError(`feed ${feed} has no history to reset: nothing was ever published to it`)
    this.#hub.reset(feed, done.epoch, done.previous)
    return done
  }

  /**
   * Every feed in the store, with what this node holds of it (messages held in memory, `$replay` viewers here).
   */
  async list (): Promise<Array<FeedInfo & { held: number, viewers: number }>> {
    const stored = await this.#store.list()
    return stored.map((f) => {
      const here = this.#hub.cached(f.feed)
      return { ...f, held: here?.held ?? 0, viewers: here?.viewers ?? 0 }
    })
  }

  #applyResetNotice (payload: Buffer | string): void {
    let notice: { feed?: unknown, epoch?: unknown, previous?: unknown }
    try {
      notice = JSON.parse(String(payload)) as typeof notice
    } catch {
      return
    }
    if (notice === null || typeof notice !== 'object' || typeof notice.feed !== 'string' || typeof notice.epoch !== 'string') return
    this.#hub.reset(notice.feed, notice.epoch, typeof notice.previous === 'string' ? notice.previous : null)
  }

  /** True when `filter` is a `$replay` filter, valid or not. */
  isReplay (filter: string): boolean {
    return isReplayFilter(filter)
  }

  /**
   * Authorizes a `$replay` SUBSCRIBE: parses it and takes a slot for the client.
   * @throws ReplayFilterError naming what is wrong, or that the client holds too many
   */
  authorizeReplay (client: FeedClient, filter: string): ReplayRequest {
    const request = parseReplayFilter(filter, this.filters)
    if (!this.#replays.reserve(client, filter, request)) {
      throw new ReplayFilterError(filter, 'this client holds the most $replay subscriptions allowed')
    }
    return request
  }

  /** Starts a `$replay` subscription aedes has made (its `subscribe` event, or a restore before CONNACK). */
  async startReplay (client: FeedClient, filter: string, qos: number): Promise<void> {
    await this.#replays.start(client, filter, qos)
  }

  /** On an UNSUBSCRIBE, as the client's packets arrive. */
  unsubscribed (client: FeedClient, filter: string): void {
    this.#replays.unsubscribed(client, filter)
  }

  /** After a disconnect (aedes event `clientDisconnect`). */
  disconnected (client: FeedClient): void {
    this.#replays.disconnected(client)
  }

  /** After CONNACK (aedes event `connackSent`). */
  connackSent (client: FeedClient): void {
    this.#sinks.connackSent(client)
  }
}
