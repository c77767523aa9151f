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
  /** Flushes and closes. */
  close: () => Promise<void>
}
