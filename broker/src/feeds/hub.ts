/**
 * The feed hub: the node-local side of feeds. For each feed a viewer on this node replays, it keeps a cache of the
 * history (loaded once per node and feed; concurrent joins share the load) and keeps it current from the live
 * message stream the node already receives. It then serves `$replay` subscriptions from memory:
 * history, then live, in seq order, with no gap and no duplicate, whatever the interleaving of joins and publishes.
 *
 * Live messages are taken in seq order: one that arrives early is held until the ones before it arrive (or are read
 * from the store after `gapFillMs`); one already seen is dropped. Sending to a viewer goes through a {@link FeedSink}.
 */
import { encodeReset } from './envelope.js'
import type { ReplayFrom } from './replay-filter.js'
import type { FeedEntry, FeedStore } from './store.js'

/** Where the hub sends one viewer's messages: the client connection and the topic it subscribed with. */
export interface FeedSink {
  /** Sends one message; must keep the order of calls. */
  send: (payload: Buffer) => void
  /** True once the connection is gone; the hub then drops the sink. */
  readonly closed: boolean
}

/** One viewer attached to one feed. */
export interface Attachment {
  readonly feed: string
  readonly sink: FeedSink
  /** The last seq sent to this viewer, and its epoch (for persistent sessions that resume). */
  lastSeq: number
  epoch: string | null
}

interface FeedCache {
  ready: boolean
  loading: Promise<void> | null
  epoch: string | null
  last: number
  entries: FeedEntry[]
  held: Map<number, { epoch: string, entry: FeedEntry }>
  viewers: Set<Attachment>
  gapTimer: NodeJS.Timeout | null
  idleTimer: NodeJS.Timeout | null
  /** Epochs this feed left (a reset, a lost history): a late message of one is dropped, never taken as a new epoch. */
  retired: Set<string>
  /** A reset heard while the first load was under way: the epoch to take if the load read the one reset away. */
  resetTo: string | null
}

/** Epochs remembered as left, per feed. */
const RETIRED_KEPT = 16

export interface FeedHubOptions {
  /** Messages of history kept per feed, as in the store. */
  history: number
  /** How long an early message waits for the ones before it before they are read from the store, in ms (default 250). */
  gapFillMs?: number
  /** How long a feed's cache is kept once its last viewer has left, in ms (default 300000); a later join reloads it. */
  idleMs?: number
  /** Called on a store error during load or gap fill. */
  onError?: (err: Error, feed: string) => void
}

export class FeedHub {
  readonly #store: FeedStore
  readonly #history: number
  readonly #gapFillMs: number
  readonly #idleMs: number
  readonly #onError: (err: Error, feed: string) => void
  readonly #caches = new Map<string, FeedCache>()

  constructor (store: FeedStore, opts: FeedHubOptions) {
    this.#store = store
    this.#history = opts.history
    this.#gapFillMs = opts.gapFillMs ?? 250
    this.#idleMs = opts.idleMs ?? 300_000
    this.#onError = opts.onError ?? (() => {})
  }

  /**
   * Attaches a viewer: sends the history that `from` asks for, then every live message of the feed.
   * A resume from a position that is not in the current epoch, or that was trimmed away, first gets a reset notice
   * and then all the history held.
   * @returns the attachment (pass it to {@link detach}); resolves once the history has been handed to the sink
   */
  async attach (feed: string, from: ReplayFrom, sink: FeedSink): Promise<Attachment> {
    const cache = this.#cache(feed)
    this.#keep(cache)
    if (!cache.ready) await this.#load(feed, cache)
    const att: Attachment = { feed, sink, lastSeq: 0, epoch: cache.epoch }
    if (sink.closed) {
      if (cache.viewers.size === 0) this.#idle(feed, cache)
      return att
    }
    const entries = cache.entries
    let start = 0
    if (from.kind === 'last') {
      start = Math.max(0, entries.length - from.n)
    } else if (from.kind === 'after') {
      const first = entries.length > 0 ? entries[0].seq : cache.last + 1
      if (from.epoch !== cache.epoch || from.seq > cache.last) {
        sink.send(encodeReset(cache.epoch, 'epoch-changed'))
      } else if (from.seq < first - 1) {
        sink.send(encodeReset(cache.epoch, 'trimmed'))
      } else {
        start = firstAfter(entries, from.seq)
      }
    }
    for (let i = start; i < entries.length; i++) sink.send(entries[i].payload)
    att.lastSeq = cache.last
    cache.viewers.add(att)
    this.#keep(cache)
    return att
  }

  /** Stops sending to a viewer. Safe to call twice. */
  detach (att: Attachment): void {
    const cache = this.#caches.get(att.feed)
    if (cache === undefined) return
    cache.viewers.delete(att)
    if (cache.viewers.size === 0) this.#idle(att.feed, cache)
  }

  /**
   * Takes one live message of a feed, as every node receives it from the message stream.
   * Messages of feeds nobody on this node replays are ignored: the store has them.
   */
  onLive (feed: string, epoch: string, entry: FeedEntry): void {
    const cache = this.#caches.get(feed)
    if (cache === undefined) return
    if (!cache.ready) {
      cache.held.set(entry.seq, { epoch, entry })
      return
    }
    this.#take(feed, cache, epoch, entry)
  }

  /**
   * Catches every cached feed up with the store: after the node's message stream was cut (a Redis reconnect), the
   * messages published meanwhile never arrive live. Each cached feed is read once and what is newer than the cache is
   * applied in seq order (a new epoch resets viewers, as a live one would).
   * @returns once every read has been applied (errors go to `onError`)
   */
  async resync (): Promise<void> {
    await Promise.all([...this.#caches].map(async ([feed, cache]) => {
      if (!cache.ready) return
      try {
        const snap = await this.#store.snapshot(feed)
        // The store lost the feed (Redis restarted empty): what viewers hold is gone; the next message starts anew.
        if (snap === null) {
          if (cache.epoch !== null) this.#startEpoch(cache, null)
          return
        }
        for (const entry of snap.entries) this.#take(feed, cache, snap.epoch, entry)
      } catch (err) {
        this.#onError(err as Error, feed)
      }
    }))
  }

  /**
   * A feed was reset (admin `feeds.reset`): its history dropped and `epoch` begun, replacing `previous`. Viewers of
   * the feed on this node get a reset notice (then the new epoch's messages); nothing happens when the node holds no
   * cache of the feed, already has `epoch`, or has left it since. Messages of `previous` that arrive later are dropped.
   */
  reset (feed: string, epoch: string, previous: string | null): void {
    const cache = this.#caches.get(feed)
    if (cache === undefined) return
    if (previous !== null) this.#retire(cache, previous)
    if (!cache.ready) {
      cache.resetTo = epoch
      return
    }
    if (cache.epoch === epoch || cache.retired.has(epoch)) return
    this.#startEpoch(cache, epoch)
  }

  /** What this node holds of `feed` (undefined when it holds no cache): epoch, last seq, messages held, viewers. */
  cached (feed: string): { epoch: string | null, last: number, held: number, viewers: number } | undefined {
    const cache = this.#caches.get(feed)
    if (cache === undefined || !cache.ready) return undefined
    return { epoch: cache.epoch, last: cache.last, held: cache.entries.length, viewers: cache.viewers.size }
  }

  /** Feeds whose history this node holds in memory (those replayed here since start), and `$replay` viewers attached. */
  stats (): { cachedFeeds: number, replayViewers: number } {
    let replayViewers = 0
    for (const c of this.#caches.values()) replayViewers += c.viewers.size
    return { cachedFeeds: this.#caches.size, replayViewers }
  }

  /** Stops timers. */
  close (): void {
    for (const c of this.#caches.values()) {
      if (c.gapTimer !== null) clearTimeout(c.gapTimer)
      if (c.idleTimer !== null) clearTimeout(c.idleTimer)
    }
  }

  /** A cache with a viewer (or a join under way) stays. */
  #keep (cache: FeedCache): void {
    if (cache.idleTimer !== null) {
      clearTimeout(cache.idleTimer)
      cache.idleTimer = null
    }
  }

  /** A cache without viewers is dropped after `idleMs`, unless someone joins meanwhile. */
  #idle (feed: string, cache: FeedCache): void {
    if (cache.idleTimer !== null) return
    if (cache.ready && cache.entries.length === 0 && cache.held.size === 0) {
      // Nothing to keep: a feed without history costs nothing to load again.
      if (cache.gapTimer !== null) clearTimeout(cache.gapTimer)
      if (this.#caches.get(feed) === cache) this.#caches.delete(feed)
      return
    }
    cache.idleTimer = setTimeout(() => {
      cache.idleTimer = null
      if (cache.viewers.size > 0 || cache.loading !== null && !cache.ready) return
      if (cache.gapTimer !== null) clearTimeout(cache.gapTimer)
      if (this.#caches.get(feed) === cache) this.#caches.delete(feed)
    }, this.#idleMs)
    cache.idleTimer.unref()
  }

  #cache (feed: string): FeedCache {
    let cache = this.#caches.get(feed)
    if (cache === undefined) {
      cache = { ready: false, loading: null, epoch: null, last: 0, entries: [], held: new Map(), viewers: new Set(), gapTimer: null, idleTimer: null, retired: new Set(), resetTo: null }
      this.#caches.set(feed, cache)
    }
    return cache
  }

  async #load (feed: string, cache: FeedCache): Promise<void> {
    if (cache.loading === null) {
      cache.loading = this.#store.snapshot(feed).then((snap) => {
        if (snap !== null) {
          cache.epoch = snap.epoch
          cache.last = snap.last
          cache.entries = snap.entries
        }
        // The load read the feed before a reset this node heard meanwhile: start at the new epoch instead.
        if (cache.resetTo !== null && cache.epoch !== null && cache.retired.has(cache.epoch)) {
          cache.epoch = cache.resetTo
          cache.last = 0
          cache.entries = []
        }
        cache.resetTo = null
        cache.ready = true
        this.#drain(feed, cache)
      }, (err: Error) => {
        cache.loading = null
        this.#onError(err, feed)
        throw err
      })
    }
    await cache.loading
  }

  /** Applies one message in order: deliver if next (then any held successors), hold if early, drop if seen. */
  #take (feed: string, cache: FeedCache, epoch: string, entry: FeedEntry): void {
    if (cache.epoch !== epoch) {
      if (cache.retired.has(epoch)) return // published before a reset, arriving after it
      this.#startEpoch(cache, epoch)
    }
    if (entry.seq <= cache.last) return
    if (entry.seq > cache.last + 1) {
      cache.held.set(entry.seq, { epoch, entry })
      this.#armGapFill(feed, cache)
      return
    }
    this.#append(cache, epoch, entry)
    let next = cache.held.get(cache.last + 1)
    while (next !== undefined) {
      cache.held.delete(cache.last + 1)
      this.#append(cache, epoch, next.entry)
      next = cache.held.get(cache.last + 1)
    }
    for (const seq of cache.held.keys()) if (seq <= cache.last) cache.held.delete(seq)
    if (cache.held.size === 0 && cache.gapTimer !== null) {
      clearTimeout(cache.gapTimer)
      cache.gapTimer = null
    }
  }

  /**
   * The feed's history was lost (a new epoch, or none while the store has nothing): start over, and tell every
   * viewer when it held an epoch before.
   */
  #startEpoch (cache: FeedCache, epoch: string | null): void {
    if (cache.epoch !== null) {
      this.#retire(cache, cache.epoch)
      const notice = encodeReset(epoch, 'epoch-changed')
      for (const v of cache.viewers) this.#send(cache, v, notice)
    }
    cache.epoch = epoch
    cache.last = 0
    cache.entries = []
    for (const [seq, h] of cache.held) if (h.epoch !== epoch) cache.held.delete(seq)
  }

  #retire (cache: FeedCache, epoch: string): void {
    cache.retired.add(epoch)
    if (cache.retired.size > RETIRED_KEPT) cache.retired.delete(cache.retired.values().next().value as string)
  }

  #append (cache: FeedCache, epoch: string, entry: FeedEntry): void {
    cache.last = entry.seq
    cache.entries.push(entry)
    if (cache.entries.length > this.#history) cache.entries.splice(0, cache.entries.length - this.#history)
    for (const v of cache.viewers) {
      if (this.#send(cache, v, entry.payload)) {
        v.lastSeq = entry.seq
        v.epoch = epoch
      }
    }
  }

  /** Sends to one viewer; false (and the viewer dropped) when its connection is gone. */
  #send (cache: FeedCache, v: Attachment, payload: Buffer): boolean {
    if (v.sink.closed) {
      cache.viewers.delete(v)
      return false
    }
    v.sink.send(payload)
    return true
  }

  /** Applies the messages held while the cache was loading, in seq order. */
  #drain (feed: string, cache: FeedCache): void {
    const held = [...cache.held.values()].sort((a, b) => a.entry.seq - b.entry.seq)
    cache.held.clear()
    for (const h of held) this.#take(feed, cache, h.epoch, h.entry)
  }

  #armGapFill (feed: string, cache: FeedCache): void {
    if (cache.gapTimer !== null) return
    cache.gapTimer = setTimeout(() => {
      cache.gapTimer = null
      if (cache.held.size === 0 || cache.epoch === null) return
      const epoch = cache.epoch
      // Everything up to the last held message: several messages may be missing between the held ones.
      const upTo = Math.max(...cache.held.keys()) - 1
      this.#store.range(feed, epoch, cache.last + 1, upTo).then((entries) => {
        for (const e of entries) this.#take(feed, cache, epoch, e)
        if (cache.held.size > 0 && cache.epoch === epoch) {
          const next = Math.min(...cache.held.keys())
          if (next > cache.last + 1) {
            // The missing messages are gone from the store too (trimmed): skip ahead rather than stall the feed.
            const notice = encodeReset(epoch, 'trimmed')
            for (const v of cache.viewers) this.#send(cache, v, notice)
            cache.last = next - 1
            this.#drain(feed, cache)
          }
        }
      }, (err: Error) => {
        this.#onError(err, feed)
        this.#armGapFill(feed, cache)
      })
    }, this.#gapFillMs)
    cache.gapTimer.unref()
  }
}

/** The index of the first entry with a seq above `seq` (entries are in seq order; holes allowed). */
function firstAfter (entries: readonly FeedEntry[], seq: number): number {
  let lo = 0
  let hi = entries.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (entries[mid].seq <= seq) lo = mid + 1
    else hi = mid
  }
  return lo
}
