/**
 * A FeedStore in Redis, shared by every broker node of a cluster: seqs are assigned inside Redis, by one Lua script
 * per append, so nodes appending to the same feed at once never hand out a seq twice.
 * Keys of feed F (T = F with `%`, `{`, `}` written as %25, %7B, %7D; the mapping is one to one):
 *   <prefix>feed:{T}:meta  hash  epoch -> the epoch; last -> the last seq given out; reset -> the token of the last
 *                               reset (admin `feeds.reset`), so that every node asked to do it does it once
 *   <prefix>feed:{T}:log   list  envelope bytes of the held messages, oldest first (the last one has seq `last`)
 *   <prefix>feed:{T}:ids   hash  `i:<data id>` -> seq and `s:<seq>` -> data id, for the held messages that have an id
 * `{T}` is a Redis Cluster hash tag: T holds no brace, so the tag is all of T and a feed's keys share one slot, as a
 * script needs (the prefix must hold no brace either, or every feed lands in one slot). The seq of list index i is
 * last - len + 1 + i. Durability is Redis's own (appendfsync); an eviction policy other than noeviction can lose data.
 */
import type { Redis } from 'ioredis'
import { encodeEnvelope, EnvelopeTooLargeError, newEpoch } from './envelope.js'
import type { AppendResult, FeedEntry, FeedInfo, FeedReset, FeedSnapshot, FeedStore } from './store.js'
import { ConnectionChangedError, type ReplicaWait } from './replica-wait.js'

// Shared by the scripts: KEYS[1] meta, KEYS[2] log (KEYS[3] ids); seqs are written as integers ('%d', not 1e+14).
const COMMON = `
local meta, log, ids = KEYS[1], KEYS[2], KEYS[3]
local function fmt (n) return string.format('%d', n) end
`

// ARGV: new epoch, envelope tail (`,"ts":T,"data":RAW}`), max bytes (-1: none), history, has id ('1'/'0'), id,
// fence ('1'/'0'). Returns {'ok', epoch, seq} | {'dup', epoch, seq, bytes} | {'big', size}; a refused message changes
// nothing. With fence, a duplicate writes `last` again unchanged: a write of this connection that WAIT can count, made
// after the held entry (which may have come from another node, or a master that has since failed over).
const APPEND = COMMON + `
local history, hasId, id = tonumber(ARGV[4]), ARGV[5] == '1', ARGV[6]
local m = redis.call('HMGET', meta, 'epoch', 'last')
local epoch, last = m[1], tonumber(m[2]) or 0
if epoch and hasId then
  local s = tonumber(redis.call('HGET', ids, 'i:' .. id))
  local len = redis.call('LLEN', log)
  if s and s <= last and s > last - math.min(len, history) then
    local bytes = redis.call('LINDEX', log, len - 1 - (last - s))
    if bytes then
      if ARGV[7] == '1' then redis.call('HSET', meta, 'last', fmt(last)) end
      return {'dup', epoch, s, bytes}
    end
  end
end
local seq = last + 1
local head = '{"seq":' .. fmt(seq) .. ',"epoch":"' .. (epoch or ARGV[1]) .. '"'
local size = #head + #ARGV[2]
local max = tonumber(ARGV[3])
if max >= 0 and size > max then return {'big', size} end
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', log, ids) -- leftovers of a feed whose meta is gone (evicted): start clean
  redis.call('HSET', meta, 'epoch', epoch)
end
local len = redis.call('RPUSH', log, head .. ARGV[2])
redis.call('HSET', meta, 'last', fmt(seq))
if hasId then redis.call('HSET', ids, 'i:' .. id, fmt(seq), 's:' .. fmt(seq), id) end
if len > history then
  for old = seq - len + 1, seq - history do
    local f = 's:' .. fmt(old)
    local oldId = redis.call('HGET', ids, f)
    if oldId then
      redis.call('HDEL', ids, f)
      if redis.call('HGET', ids, 'i:' .. oldId) == fmt(old) then redis.call('HDEL', ids, 'i:' .. oldId) end
    end
  end
  redis.call('LTRIM', log, len - history, -1)
end
return {'ok', epoch, seq}
`

// ARGV: history. Returns false (no feed) or {epoch, last, {bytes...}}: the last `history` entries.
const SNAPSHOT = COMMON + `
local m = redis.call('HMGET', meta, 'epoch', 'last')
if not m[1] then return false end
local history = tonumber(ARGV[1])
local entries = {}
if history > 0 then entries = redis.call('LRANGE', log, -history, -1) end
return {m[1], m[2], entries}
`

// ARGV: epoch, from, to (integers), history. Returns {} or {first seq, {bytes...}}.
const RANGE = COMMON + `
local m = redis.call('HMGET', meta, 'epoch', 'last')
if m[1] ~= ARGV[1] then return {} end
local last, len = tonumber(m[2]), redis.call('LLEN', log)
local held = math.min(len, tonumber(ARGV[4]))
local first = last - held + 1
local lo, hi = math.max(tonumber(ARGV[2]), first), math.min(tonumber(ARGV[3]), last)
if lo > hi then return {} end
local skip = len - held - first
return {lo, redis.call('LRANGE', log, skip + lo, skip + hi)}
`

// ARGV: new epoch, token. Returns false (no feed), {'already', epoch} or {'ok', epoch, previous epoch, dropped}.
const RESET = COMMON + `
local m = redis.call('HMGET', meta, 'epoch', 'reset')
if not m[1] then return false end
if m[2] == ARGV[2] then return {'already', m[1]} end
local dropped = redis.call('LLEN', log)
redis.call('DEL', log, ids)
redis.call('HSET', meta, 'epoch', ARGV[1], 'last', '0', 'reset', ARGV[2])
return {'ok', ARGV[1], m[1], dropped}
`

type Arg = string | Buffer
type AppendReply = [Buffer, Buffer, number, Buffer?] | [Buffer, number]
interface Scripts {
  tribuneFeedAppendBuffer: (meta: string, log: string, ids: string, ...args: Arg[]) => Promise<AppendReply>
  tribuneFeedSnapshotBuffer: (meta: string, log: string, history: string) => Promise<[Buffer, Buffer, Buffer[]] | null>
  tribuneFeedRangeBuffer: (meta: string, log: string, ...args: string[]) => Promise<[number, Buffer[]] | []>
  tribuneFeedReset: (meta: string, log: string, ids: string, epoch: string, token: string) => Promise<[string, string, string?, number?] | null>
}

/** What `encodeEnvelope` writes before `,"ts":`; the script writes the same head with the real seq and epoch. */
const BLANK_HEAD = Buffer.byteLength('{"seq":0,"epoch":""')
const head = (seq: number, epoch: string): Buffer => Buffer.from(`{"seq":${seq},"epoch":"${epoch}"`, 'utf8')

/** Options of a {@link RedisFeedStore}. */
export interface RedisFeedStoreOptions {
  /** Put before every key, e.g. `tribune:`; must hold no `{` or `}` (see the header). */
  prefix: string
  /** The number of messages kept per feed (older ones are deleted as new ones arrive). Every node must agree. */
  history: number
  /**
   * With `--redis-min-replicas`: the connection appends and resets are written on (the caller owns it, and uses it for
   * nothing else), and the wait for the replicas on it; an append or reset resolves once the replicas have it.
   */
  replicated?: { conn: Redis, wait: ReplicaWait }
}

export class RedisFeedStore implements FeedStore {
  readonly #redis: Redis & Scripts
  /** Where appends and resets are written: `#redis`, or the connection WAIT runs on. */
  readonly #writer: Redis & Scripts
  readonly #wait: ReplicaWait | undefined
  readonly #prefix: string
  readonly #history: number
  readonly #inFlight = new Set<Promise<unknown>>()
  /** With `replicated`: the last write of each feed under way on this node (the next one waits for it). */
  readonly #tails = new Map<string, Promise<void>>()
  /** Every feed Redis holds, once {@link watchLive} has listed them (null before): a join to any other costs no read. */
  #known: Set<string> | null = null
  #listed = false

  /**
   * Defines the store's scripts on `redis` (as commands `tribuneFeedAppend`, `tribuneFeedSnapshot`, `tribuneFeedRange`,
   * `tribuneFeedReset`).
   * @param redis a connection the caller owns (and closes, after {@link close}); Redis errors are passed on, not retried
   */
  constructor (redis: Redis, opts: RedisFeedStoreOptions) {
    const writer = opts.replicated?.conn ?? redis
    writer.defineCommand('tribuneFeedAppend', { numberOfKeys: 3, lua: APPEND })
    redis.defineCommand('tribuneFeedSnapshot', { numberOfKeys: 2, lua: SNAPSHOT })
    redis.defineCommand('tribuneFeedRange', { numberOfKeys: 2, lua: RANGE })
    writer.defineCommand('tribuneFeedReset', { numberOfKeys: 3, lua: RESET })
    this.#redis = redis as Redis & Scripts
    this.#writer = writer as Redis & Scripts
    this.#wait = opts.replicated?.wait
    this.#prefix = opts.prefix
    this.#history = opts.history
  }

  /**
   * Appends with one script call (EVALSHA): a new seq, or the held entry when the data's `id` is held already.
   * A feed without meta (new, or Redis lost its data) starts at seq 1 under a new epoch. With `replicated`, resolves
   * once the entry is on the replicas (however long that takes); when the connection was made again before that (a
   * failover), appends again: a message with a data `id` is then found held, or appended if the failover lost it.
   * Then a feed's appends on this node are written one after the other, each once the one before is confirmed: a
   * message written again after a failover is never overtaken by a later one of the same feed (MQTT 3.1.1 section 4.6).
   * @throws EnvelopeTooLargeError over `maxBytes` (no seq used); the Redis error when the call fails
   */
  async append (feed: string, payload: Buffer, ts: number, maxBytes = Infinity): Promise<AppendResult> {
    const run = this.#wait === undefined ? this.#append(feed, payload, ts, maxBytes) : this.#inOrder(feed, async () => await this.#append(feed, payload, ts, maxBytes))
    this.#inFlight.add(run)
    try {
      return await run
    } finally {
      this.#inFlight.delete(run)
    }
  }

  async #append (feed: string, payload: Buffer, ts: number, maxBytes: number): Promise<AppendResult> {
    const { bytes, id } = encodeEnvelope(0, '', ts, payload)
    const tail = bytes.subarray(BLANK_HEAD)
    const max = maxBytes < Infinity ? String(Math.max(0, Math.floor(maxBytes))) : '-1' // NaN too: no limit, as in encodeEnvelope
    const k = this.#keys(feed)
    let reply: AppendReply
    for (;;) {
      reply = await this.#writer.tribuneFeedAppendBuffer(k.meta, k.log, k.ids, newEpoch(), tail, max,
        String(this.#history), id === undefined ? '0' : '1', id ?? '', this.#wait !== undefined ? '1' : '0')
      if (this.#wait === undefined || reply[0].toString() === 'big' || await this.#confirmed()) break
    }
    const status = reply[0].toString()
    if (status === 'big') throw new EnvelopeTooLargeError(reply[1] as number, maxBytes)
    const [, epochBuf, seq, stored] = reply as [Buffer, Buffer, number, Buffer?]
    const epoch = epochBuf.toString('utf8')
    this.#known?.add(feed)
    if (status === 'dup') return { epoch, entry: { seq, payload: stored as Buffer }, duplicate: true }
    return { epoch, entry: { seq, payload: Buffer.concat([head(seq, epoch), tail]) }, duplicate: false }
  }

  /**
   * Lists every feed Redis holds (SCAN, once per node) and from then on answers {@link snapshot} for a feed not in
   * the list without asking Redis: such a feed is new, and its first message reaches this node live (see
   * {@link noteLive}). Call once the node receives every feed's live messages.
   * @returns the number of feeds listed
   */
  async watchLive (): Promise<number> {
    this.#known ??= new Set()
    const stream = this.#redis.scanStream({ match: `${this.#prefix}feed:{*}:meta`, count: 1000 })
    for await (const keys of stream as AsyncIterable<string[]>) {
      for (const key of keys) this.#known.add(this.#feedOf(key))
    }
    this.#listed = true
    return this.#known.size
  }

  /** Runs `fn` once every write of `feed` called before it has settled (with `replicated` only). */
  async #inOrder<T> (feed: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.#tails.get(feed) ?? Promise.resolve()).then(fn)
    const tail = run.then(() => {}, () => {})
    this.#tails.set(feed, tail)
    void tail.then(() => { if (this.#tails.get(feed) === tail) this.#tails.delete(feed) })
    return await run
  }

  /**
   * True once the write just replied to is on the replicas; false when the connection was made again first (write
   * again). Call in the turn the write's reply came.
   * @throws the Redis error when WAIT is refused
   */
  async #confirmed (): Promise<boolean> {
    try {
      await this.#wait?.confirm()
      return true
    } catch (err) {
      if (err instanceof ConnectionChangedError) return false
      throw err
    }
  }

  /**
   * Drops the feed's log and data ids and gives it a new epoch at seq 0, in one script; once per `token` (a reset
   * written again after a failover is recognised by its token). With `replicated`, resolves once the replicas have it.
   */
  async reset (feed: string, token: string): Promise<FeedReset | null> {
    return this.#wait === undefined ? await this.#reset(feed, token) : await this.#inOrder(feed, async () => await this.#reset(feed, token))
  }

  async #reset (feed: string, token: string): Promise<FeedReset | null> {
    const k = this.#keys(feed)
    let reply: Awaited<ReturnType<Scripts['tribuneFeedReset']>>
    for (;;) {
      reply = await this.#writer.tribuneFeedReset(k.meta, k.log, k.ids, newEpoch(), token)
      if (this.#wait === undefined || reply === null || reply[0] === 'already' || await this.#confirmed()) break
    }
    if (reply === null) return null
    if (reply[0] === 'already') return { epoch: reply[1], previous: null, dropped: 0, already: true }
    return { epoch: reply[1], previous: reply[2] ?? null, dropped: reply[3] ?? 0, already: false }
  }

  /** Every feed in Redis (SCAN of the meta keys, then their epoch and last seq in one pipeline). */
  async list (): Promise<FeedInfo[]> {
    const keys: string[] = []
    const stream = this.#redis.scanStream({ match: `${this.#prefix}feed:{*}:meta`, count: 1000 })
    for await (const batch of stream as AsyncIterable<string[]>) keys.push(...batch)
    const pipeline = this.#redis.pipeline()
    for (const key of keys) pipeline.hmget(key, 'epoch', 'last')
    const replies = (await pipeline.exec()) ?? []
    const out: FeedInfo[] = []
    replies.forEach(([err, value], i) => {
      const [epoch, last] = (value ?? []) as Array<string | null>
      if (err === null && epoch !== null && epoch !== undefined) out.push({ feed: this.#feedOf(keys[i]), epoch, last: Number(last ?? 0) })
    })
    return out
  }

  /** The feed of a meta key (`<prefix>feed:{T}:meta`), T decoded. */
  #feedOf (metaKey: string): string {
    return metaKey.slice(`${this.#prefix}feed:{`.length, -'}:meta'.length).replace(/%(25|7B|7D)/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)))
  }

  /** A live message of `feed` reached this node: the feed exists. */
  noteLive (feed: string): void {
    this.#known?.add(feed)
  }

  /** The feed's epoch, last seq and held entries, read at one instant (one script), or null when it has no meta. */
  async snapshot (feed: string): Promise<FeedSnapshot | null> {
    if (this.#listed && this.#known?.has(feed) === false) return null
    const k = this.#keys(feed)
    const reply = await this.#redis.tribuneFeedSnapshotBuffer(k.meta, k.log, String(this.#history))
    if (reply === null) return null
    const last = Number(reply[1].toString())
    const first = last - reply[2].length + 1
    return { epoch: reply[0].toString('utf8'), last, entries: reply[2].map((payload, i) => ({ seq: first + i, payload })) }
  }

  /** Held entries with `from <= seq <= to`, in seq order; none when `epoch` is not the feed's current one. */
  async range (feed: string, epoch: string, from: number, to: number): Promise<FeedEntry[]> {
    const lo = Math.max(1, Math.ceil(from))
    const hi = Math.min(Number.MAX_SAFE_INTEGER, Math.floor(to))
    if (!(lo <= hi)) return []
    const k = this.#keys(feed)
    const reply = await this.#redis.tribuneFeedRangeBuffer(k.meta, k.log, epoch, String(lo), String(hi), String(this.#history))
    if (reply.length === 0) return []
    const [first, entries] = reply as [number, Buffer[]]
    return entries.map((payload, i) => ({ seq: first + i, payload }))
  }

  /** Waits for appends in flight to settle; the connection stays open (the caller owns it). */
  async close (): Promise<void> {
    await Promise.allSettled([...this.#inFlight])
  }

  #keys (feed: string): { meta: string, log: string, ids: string } {
    const tag = feed.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    const base = `${this.#prefix}feed:{${tag}}:`
    return { meta: `${base}meta`, log: `${base}log`, ids: `${base}ids` }
  }
}
