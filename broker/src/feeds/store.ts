/**
 * The feed store: the durable, authoritative side of feeds. It assigns each message of a feed the next seq,
 * keeps the last `history` messages, and knows the feed's epoch. One interface; implementations in
 * level-store.ts (embedded, on disk or in memory) and, for clusters, a Redis one.
 */

/** One stored message: its seq and the encoded envelope bytes viewers receive. */
export interface FeedEntry {
  seq: number
  payload: Buffer
}

/** What a feed holds now: its epoch, and its entries in seq order (possibly empty). `last` is 0 before the first message. */
export interface FeedSnapshot {
  epoch: string
  last: number
  entries: FeedEntry[]
}

/** Result of an append. `duplicate` is true when the data's `id` was already in the history (a publisher resend). */
export interface AppendResult {
  epoch: string
  entry: FeedEntry
  duplicate: boolean
}

/** What a reset did: the feed's new epoch, the one it replaced, how many held messages were dropped. */
export interface FeedReset {
  epoch: string
  /** The epoch the reset replaced; null when `already`. */
  previous: string | null
  dropped: number
  /** True when this reset (same token) had been done already, by this node or another: nothing changed now. */
  already: boolean
}

/** One feed as the store holds it: its epoch and last seq (0 right after a reset). */
export interface FeedInfo {
  feed: string
  epoch: string
  last: number
}

export interface FeedStore {
  /**
   * Stamps `payload` with the feed's next seq and stores it; resolves once it is durable in the store.
   * @param ts the time stamp in ms since 1970
   * @param maxBytes the largest envelope accepted (default: no limit)
   * @throws EnvelopeTooLargeError over `maxBytes`; the store's error when it fails (the publish must then not be acknowledged)
   */
  append: (feed: string, payload: Buffer, ts: number, maxBytes?: number) => Promise<AppendResult>
  /** The feed's epoch and history, or null when nothing was ever published to it. */
  snapshot: (feed: string) => Promise<FeedSnapshot | null>
  /** Entries with `from <= seq <= to` still held, in seq order, for `epoch` (none if the epoch is no longer current). */
  range: (feed: string, epoch: string, from: number, to: number) => Promise<FeedEntry[]>
  /**
   * Optional: called once the node receives every feed's live messages; a store may then answer `snapshot` for feeds
   * it has never heard of without a read (the Redis store lists its feeds once). Resolves with the number of feeds.
   */
  watchLive?: () => Promise<number>
  /** Optional: a live message of `feed` reached the node (with `watchLive`, the feed is known to exist). */
  noteLive?: (feed: string) => void
  /**
   * Drops the feed's history and starts a new epoch, at seq 0 (the next message is seq 1 of the new epoch). Done
   * once per `token`: a second call with the token of the last reset changes nothing and answers `already` (every
   * node of a cluster may be asked to do the same reset).
   * @returns what was done, or null when nothing was ever published to the feed
   */
  reset: (feed: string, token: string) => Promise<FeedReset | null>
  /** Every feed the store holds, with its epoch and last seq, in no particular order. */
  list: () => Promise<FeedInfo[]>
  /** Flushes and closes. */
  close: () => Promise<void>
}
