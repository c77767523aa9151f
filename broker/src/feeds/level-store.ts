/**
 * A FeedStore on an abstract-level database (classic-level on disk, memory-level for `:memory:`).
 * Layout, in its own sublevel: `m:<feed>` -> {"epoch","last","reset"?} (`reset`: the token of the last reset);
 * `e:<feed>\0<seq, 15 digits>` -> envelope bytes.
 * MQTT topic names cannot hold U+0000 (MQTT 3.1.1 section 4.7.3), so `\0` separates feed and seq.
 * Appends to one feed run one at a time; the feed's history is held in memory after first use.
 */
import type { AbstractSublevel, AbstractLevel } from 'abstract-level'
import { encodeEnvelope, newEpoch } from './envelope.js'
import type { AppendResult, FeedEntry, FeedInfo, FeedReset, FeedSnapshot, FeedStore } from './store.js'

type Db = AbstractLevel<string | Buffer | Uint8Array, string, Buffer>
type Sub = AbstractSublevel<Db, string | Buffer | Uint8Array, string, Buffer>

interface FeedState {
  epoch: string
  last: number
  entries: FeedEntry[]
  ids: Map<string, FeedEntry>
  entryIds: Map<number, string>
  /** The token of the last reset, if any. */
  reset?: string
}

const SEQ_DIGITS = 15
const entryKey = (feed: string, seq: number): string => `e:${feed}\u0000${String(seq).padStart(SEQ_DIGITS, '0')}`
const metaKey = (feed: string): string => `m:${feed}`

export class LevelFeedStore implements FeedStore {
  readonly #db: Sub
  readonly #history: number
  readonly #states = new Map<string, Promise<FeedState | null>>()
  readonly #queues = new Map<string, Promise<unknown>>()

  /**
   * @param db the root database; the store uses its sublevel `feeds`
   * @param history the number of messages kept per feed (older ones are deleted as new ones arrive)
   */
  constructor (db: Db, history: number) {
    this.#db = db.sublevel<string, Buffer>('feeds', { keyEncoding: 'utf8', valueEncoding: 'buffer' }) as unknown as Sub
    this.#history = history
  }

  async append (feed: string, payload: Buffer, ts: number, maxBytes = Infinity): Promise<AppendResult> {
    return await this.#serial(feed, async () => {
      let state = await this.#state(feed)
      const ops: Array<{ type: 'put' | 'del', key: string, value?: Buffer }> = []
      const created = state === null
      state ??= { epoch: newEpoch(), last: 0, entries: [], ids: new Map(), entryIds: new Map() }
      const seq = state.last + 1
      const { bytes, id } = encodeEnvelope(seq, state.epoch, ts, payload, maxBytes)
      if (created) this.#states.set(feed, Promise.resolve(state))
      if (id !== undefined) {
        const seen = state.ids.get(id)
        if (seen !== undefined) return { epoch: state.epoch, entry: seen, duplicate: true }
      }
      const entry: FeedEntry = { seq, payload: bytes }
      ops.push({ type: 'put', key: entryKey(feed, seq), value: bytes })
      ops.push({ type: 'put', key: metaKey(feed), value: metaValue(state.epoch, seq, state.reset) })
      const dropped = state.entries.length + 1 > this.#history ? state.entries.slice(0, state.entries.length + 1 - this.#history) : []
      for (const old of dropped) ops.push({ type: 'del', key: entryKey(feed, old.seq) })
      await this.#db.batch(ops as never)
      state.last = seq
      state.entries.push(entry)
      for (const old of dropped) this.#forget(state, old)
      if (dropped.length > 0) state.entries.splice(0, dropped.length)
      if (id !== undefined) {
        state.ids.set(id, entry)
        state.entryIds.set(seq, id)
      }
      return { epoch: state.epoch, entry, duplicate: false }
    })
  }

  async snapshot (feed: string): Promise<FeedSnapshot | null> {
    const state = await this.#state(feed)
    if (state === null) return null
    return { epoch: state.epoch, last: state.last, entries: state.entries.slice() }
  }

  async range (feed: string, epoch: string, from: number, to: number): Promise<FeedEntry[]> {
    const state = await this.#state(feed)
    if (state === null || state.epoch !== epoch) return []
    return state.entries.filter((e) => e.seq >= from && e.seq <= to)
  }

  async reset (feed: string, token: string): Promise<FeedReset | null> {
    return await this.#serial(feed, async () => {
      const state = await this.#state(feed)
      if (state === null) return null
      if (state.reset === token) return { epoch: state.epoch, previous: null, dropped: 0, already: true }
      const previous = state.epoch
      const epoch = newEpoch()
      const ops = state.entries.map((e) => ({ type: 'del' as const, key: entryKey(feed, e.seq) }))
      await this.#db.batch([...ops, { type: 'put' as const, key: metaKey(feed), value: metaValue(epoch, 0, token) }] as never)
      const dropped = state.entries.length
      Object.assign(state, { epoch, last: 0, entries: [], ids: new Map(), entryIds: new Map(), reset: token })
      return { epoch, previous, dropped, already: false }
    })
  }

  async list (): Promise<FeedInfo[]> {
    const out: FeedInfo[] = []
    for await (const [key, value] of this.#db.iterator({ gte: 'm:', lt: 'm;' })) {
      const { epoch, last } = JSON.parse(value.toString('utf8')) as { epoch: string, last: number }
      out.push({ feed: key.slice(2), epoch, last })
    }
    return out
  }

  async close (): Promise<void> {
    await Promise.allSettled([...this.#queues.values()])
  }

  #forget (state: FeedState, entry: FeedEntry): void {
    const id = state.entryIds.get(entry.seq)
    if (id !== undefined) {
      state.entryIds.delete(entry.seq)
      if (state.ids.get(id) === entry) state.ids.delete(id)
    }
  }

  /** Runs `fn` after every earlier operation on the same feed. */
  async #serial<T>(feed: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#queues.get(feed) ?? Promise.resolve()
    const run = before.then(fn, fn)
    const tail = run.catch(() => undefined)
    this.#queues.set(feed, tail)
    void tail.then(() => { if (this.#queues.get(feed) === tail) this.#queues.delete(feed) })
    return await run
  }

  async #state (feed: string): Promise<FeedState | null> {
    let state = this.#states.get(feed)
    if (state === undefined) {
      state = this.#load(feed)
      this.#states.set(feed, state)
      // Feeds that do not exist are not remembered: asking about a million names must not cost memory.
      state.then((s) => { if (s === null && this.#states.get(feed) === state) this.#states.delete(feed) }, () => this.#states.delete(feed))
    }
    return await state
  }

  async #load (feed: string): Promise<FeedState | null> {
    const meta = await this.#db.get(metaKey(feed))
    if (meta === undefined) return null
    const { epoch, last, reset } = JSON.parse(meta.toString('utf8')) as { epoch: string, last: number, reset?: string }
    const state: FeedState = { epoch, last, entries: [], ids: new Map(), entryIds: new Map(), reset }
    const stale: string[] = []
    for await (const [key, value] of this.#db.iterator({ gte: `e:${feed}\u0000`, lt: `e:${feed}\u0001` })) {
      const seq = Number(key.slice(key.lastIndexOf('\u0000') + 1))
      if (seq > last - this.#history) {
        state.entries.push({ seq, payload: value })
      } else {
        stale.push(key)
      }
    }
    if (stale.length > 0) await this.#db.batch(stale.map((key) => ({ type: 'del' as const, key })))
    for (const entry of state.entries) {
      const id = idOf(entry.payload)
      if (id !== undefined) {
        state.ids.set(id, entry)
        state.entryIds.set(entry.seq, id)
      }
    }
    return state
  }
}

function metaValue (epoch: string, last: number, reset: string | undefined): Buffer {
  return Buffer.from(JSON.stringify({ epoch, last, ...(reset !== undefined ? { reset } : {}) }))
}

function idOf (payload: Buffer): string | undefined {
  try {
    const env = JSON.parse(payload.toString('utf8')) as { data?: { id?: unknown } }
    return typeof env.data?.id === 'string' ? env.data.id : undefined
  } catch {
    return undefined
  }
}
