// Tests whether both feed stores keep the FeedStore contract (one suite, run on each), and whether the Redis store
// is safe for a cluster: concurrent nodes, Redis restarts (empty or not), one command per append, key layout, outages.
import { describe, it, expect } from 'vitest'
import { Redis, type RedisOptions } from 'ioredis'
import { LevelFeedStore } from '../../broker/src/feeds/level-store.js'
import { RedisFeedStore } from '../../broker/src/feeds/redis-store.js'
import { encodeEnvelope, EnvelopeTooLargeError } from '../../broker/src/feeds/envelope.js'
import type { FeedStore } from '../../broker/src/feeds/store.js'
import { openDatabase } from '../../broker/src/store/db.js'
import { onCleanup } from '../helpers/broker.js'
import { redisForTest, type TestRedis } from '../helpers/redis.js'
import { waitFor } from '../helpers/mqtt.js'

/** A backing store; each open() is another store instance on it (another node, or the broker after a restart). */
type Backend = () => Promise<{ open: (history: number) => FeedStore }>
const F = 'matches/m1/events'
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v))
const seqs = (entries: Array<{ seq: number }>): number[] => entries.map((e) => e.seq)
const upTo = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i)
const opened = <T extends FeedStore>(store: T): T => { onCleanup(async () => await store.close()); return store }

function contract (name: string, backend: Backend): void {
  describe(`feed store contract: ${name}`, () => {
    it('gives seqs 1..n in order, in envelopes byte-identical to encodeEnvelope', async () => {
      const store = (await backend()).open(100)
      const payloads = [json({ a: 1 }), Buffer.from(' {"n":12345678901234567890123} '), json([1, 'x'])]
      const results = []
      for (const [i, p] of payloads.entries()) results.push(await store.append(F, p, 1_700_000_000_000 + i))
      const epoch = results[0].epoch
      expect(epoch).toMatch(/^[0-9a-f]{12}$/)
      expect(results.map((r) => [r.entry.seq, r.epoch, r.duplicate])).toEqual([[1, epoch, false], [2, epoch, false], [3, epoch, false]])
      const expected = payloads.map((p, i) => encodeEnvelope(i + 1, epoch, 1_700_000_000_000 + i, p).bytes)
      expect(results.map((r) => r.entry.payload)).toEqual(expected)
      expect(JSON.parse(results[0].entry.payload.toString())).toEqual({ seq: 1, epoch, ts: 1_700_000_000_000, data: { a: 1 } })
      expect(results[1].entry.payload.toString()).toBe(`{"seq":2,"epoch":"${epoch}","ts":1700000000001,"data":{"n":12345678901234567890123}}`)
      const snap = await store.snapshot(F)
      expect(snap).toEqual({ epoch, last: 3, entries: expected.map((payload, i) => ({ seq: i + 1, payload })) })
      expect(await store.snapshot('matches/never')).toBeNull()
    })

    it('holds only the last `history` messages; range() gives held seqs of the current epoch only', async () => {
      const store = (await backend()).open(5)
      let epoch = ''
      for (let i = 1; i <= 8; i++) epoch = (await store.append(F, json({ i }), i)).epoch
      const snap = await store.snapshot(F)
      expect(snap?.last).toBe(8)
      expect(seqs(snap?.entries ?? [])).toEqual([4, 5, 6, 7, 8])
      expect(snap?.entries.map((e) => JSON.parse(e.payload.toString()).data.i)).toEqual([4, 5, 6, 7, 8])
      expect(await store.range(F, epoch, 1, 3)).toEqual([])
      expect(seqs(await store.range(F, epoch, 1, 100))).toEqual([4, 5, 6, 7, 8])
      expect(await store.range(F, epoch, 5, 6)).toEqual(snap?.entries.slice(1, 3))
      expect(await store.range(F, 'ffffffffffff', 1, 100)).toEqual([])
      expect(await store.range('matches/never', epoch, 1, 100)).toEqual([])
    })

    it('answers a resent data id with the held entry and no new seq; once trimmed, the id gets a new seq', async () => {
      const store = (await backend()).open(3)
      const first = await store.append(F, json({ id: 'a', v: 1 }), 10)
      await store.append(F, json({ id: 'b' }), 11)
      const again = await store.append(F, json({ id: 'a', v: 2 }), 99)
      expect(again).toEqual({ epoch: first.epoch, entry: first.entry, duplicate: true })
      expect((await store.append(F, json({ id: 'c' }), 12)).entry.seq).toBe(3)
      expect((await store.append(F, json({ id: 'd' }), 13)).entry.seq).toBe(4) // 'a' (seq 1) trimmed
      const late = await store.append(F, json({ id: 'a', v: 3 }), 14)
      expect([late.entry.seq, late.duplicate]).toEqual([5, false])
      expect(late.entry.payload).toEqual(encodeEnvelope(5, first.epoch, 14, json({ id: 'a', v: 3 })).bytes)
      expect((await store.append(F, json({ id: 'd' }), 15)).entry.seq).toBe(4) // still held
      expect(seqs((await store.snapshot(F))?.entries ?? [])).toEqual([3, 4, 5])
    })

    it('refuses an envelope over maxBytes with its real size, using no seq', async () => {
      const store = (await backend()).open(10)
      const big = json({ text: 'x'.repeat(500) })
      await expect(store.append('matches/fresh', big, 1, 100)).rejects.toBeInstanceOf(EnvelopeTooLargeError)
      expect(await store.snapshot('matches/fresh')).toBeNull()
      const { epoch } = await store.append(F, json({}), 1)
      const size = encodeEnvelope(2, epoch, 5, big).bytes.length
      await expect(store.append(F, big, 5, size - 1)).rejects.toThrow(`would be ${size} bytes, more than the ${size - 1} allowed`)
      expect((await store.snapshot(F))?.last).toBe(1)
      expect((await store.append(F, big, 5, size)).entry.seq).toBe(2)
    })

    it('wraps non-JSON and binary payloads as JSON strings, as encodeEnvelope does', async () => {
      const store = (await backend()).open(10)
      const payloads = [Buffer.from('hello "world"\n'), Buffer.from([0xff, 0x00, 0x80, 0x41, 0xc3]), Buffer.alloc(0)]
      const out = []
      for (const p of payloads) out.push(await store.append(F, p, 7))
      const epoch = out[0].epoch
      expect(out.map((r) => r.entry.payload)).toEqual(payloads.map((p, i) => encodeEnvelope(i + 1, epoch, 7, p).bytes))
      expect(out.map((r) => JSON.parse(r.entry.payload.toString()).data)).toEqual(['hello "world"\n', '\ufffd\u0000\ufffdA\ufffd', ''])
      expect((await store.snapshot(F))?.entries.map((e) => e.payload)).toEqual(out.map((r) => r.entry.payload))
    })

    it('resets a feed once per token: history and data ids dropped, a new epoch from seq 1, seen by a second store', async () => {
      const b = await backend()
      const one = b.open(10)
      const first = await one.append(F, json({ id: 'x' }), 1)
      await one.append(F, json({ n: 2 }), 2)
      expect(await one.reset('matches/never', 't0')).toBeNull()
      const done = await one.reset(F, 't1')
      expect(done).toEqual({ epoch: expect.stringMatching(/^[0-9a-f]{12}$/), previous: first.epoch, dropped: 2, already: false })
      expect(done?.epoch).not.toBe(first.epoch)
      const two = b.open(10)
      // The same reset asked again (another node of the cluster): nothing changes.
      expect(await two.reset(F, 't1')).toEqual({ epoch: done?.epoch, previous: null, dropped: 0, already: true })
      expect(await two.snapshot(F)).toEqual({ epoch: done?.epoch, last: 0, entries: [] })
      expect(await two.range(F, first.epoch, 1, 2)).toEqual([])
      const next = await two.append(F, json({ id: 'x' }), 3) // the id was dropped with the history: a new message
      expect([next.epoch, next.entry.seq, next.duplicate]).toEqual([done?.epoch, 1, false])
      expect((await two.snapshot(F))?.entries.map((e) => e.payload)).toEqual([next.entry.payload])
      const again = await two.reset(F, 't2')
      expect([again?.previous, again?.dropped, again?.already]).toEqual([done?.epoch, 1, false])
    })

    it('lists every feed with its epoch and last seq', async () => {
      const store = (await backend()).open(10)
      expect(await store.list()).toEqual([])
      const a = await store.append('matches/a/events', json({}), 1)
      await store.append('matches/a/events', json({}), 2)
      const odd = await store.append('matches/{x}%/events', json({}), 3)
      const listed = (await store.list()).sort((x, y) => (x.feed < y.feed ? -1 : 1))
      expect(listed).toEqual([{ feed: 'matches/a/events', epoch: a.epoch, last: 2 }, { feed: 'matches/{x}%/events', epoch: odd.epoch, last: 1 }])
    })

    it('lets a second store on the same backing store see the feed and continue it', async () => {
      const b = await backend()
      const one = b.open(10)
      const a1 = await one.append(F, json({ id: 'x' }), 1)
      await one.append(F, json({ n: 2 }), 2)
      const two = b.open(10)
      expect(await two.snapshot(F)).toEqual(await one.snapshot(F))
      expect(await two.append(F, json({ id: 'x' }), 3)).toEqual({ ...a1, duplicate: true })
      const a3 = await two.append(F, json({ n: 3 }), 3)
      expect([a3.epoch, a3.entry.seq]).toEqual([a1.epoch, 3])
      expect(seqs(await two.range(F, a1.epoch, 1, 3))).toEqual([1, 2, 3])
    })
  })
}

contract('level (memory-level)', async () => {
  const db = await openDatabase(':memory:')
  onCleanup(async () => await db.close())
  return { open: (history) => opened(new LevelFeedStore(db as never, history)) }
})

contract('redis', async () => {
  const redis = await redisForTest()
  return { open: (history) => opened(new RedisFeedStore(redis.client(), { prefix: 'tribune:', history })) }
})

describe('redis feed store in a cluster', () => {
  const node = (r: TestRedis, history = 100, conn = r.client()): RedisFeedStore =>
    opened(new RedisFeedStore(conn, { prefix: 'tribune:', history }))
  const connect = async (r: TestRedis, opts: RedisOptions): Promise<Redis> => {
    const conn = new Redis({ port: r.port, host: '127.0.0.1', ...opts })
    conn.on('error', () => {})
    onCleanup(() => conn.disconnect())
    await waitFor(() => conn.status === 'ready', 'redis connection')
    return conn
  }

  it('gives 1000 concurrent appends from two nodes seqs 1..1000 exactly once, and forgets trimmed ids', async () => {
    const r = await redisForTest()
    const [a, b] = [node(r, 300), node(r, 300, await connect(r, { enableAutoPipelining: true }))] // b as cluster/open.ts
    const send = async (s: RedisFeedStore, who: string) => await Promise.all(upTo(1, 500).map(async (i) => await s.append(F, json({ id: `${who}${i}` }), i)))
    const results = (await Promise.all([send(a, 'a'), send(b, 'b')])).flat()
    expect(results.map((x) => x.entry.seq).sort((x, y) => x - y)).toEqual(upTo(1, 1000))
    expect(new Set(results.map((x) => x.epoch)).size).toBe(1)
    const bySeq = new Map(results.map((x) => [x.entry.seq, x.entry.payload]))
    for (const s of [a, b]) {
      const snap = await s.snapshot(F)
      expect(snap?.last).toBe(1000)
      expect(snap?.entries.map((e) => [e.seq, e.payload])).toEqual(upTo(701, 1000).map((seq) => [seq, bySeq.get(seq)]))
    }
    expect(await r.client().hlen('tribune:feed:{matches/m1/events}:ids')).toBe(600) // i: and s: fields of 300 held
  })

  it('starts over under a new epoch when Redis comes back empty, and continues when it comes back with its data', async () => {
    const r = await redisForTest()
    const store = node(r)
    const before = await store.append(F, json({ n: 1 }), 1)
    await store.append(F, json({ id: 'k' }), 2)
    await r.restart({ empty: true })
    const fresh = await store.append(F, json({ id: 'k' }), 3)
    expect(fresh.entry.seq).toBe(1)
    expect(fresh.duplicate).toBe(false)
    expect(fresh.epoch).not.toBe(before.epoch)
    expect(await store.range(F, before.epoch, 1, 10)).toEqual([])
    await store.append(F, json({ n: 2 }), 4)
    await r.kill()
    await r.restart()
    const next = await store.append(F, json({ n: 3 }), 5)
    expect([next.epoch, next.entry.seq]).toEqual([fresh.epoch, 3])
    expect(seqs((await store.snapshot(F))?.entries ?? [])).toEqual([1, 2, 3])
  })

  it('costs one command per append (EVAL on a new socket, then EVALSHA) and keeps every key under the prefix', async () => {
    const r = await redisForTest()
    const [conn, other] = [r.client(), r.client()]
    await Promise.all([conn.ping(), other.ping()])
    const store = node(r, 2, conn)
    // INFO commandstats counts the commands a script calls too, so MONITOR tells what clients sent (source not 'lua').
    const sent: string[] = []
    const monitor = await other.monitor()
    onCleanup(() => monitor.disconnect())
    monitor.on('monitor', (_t: string, args: string[], source: string) => { if (source !== 'lua') sent.push(args[0].toLowerCase()) })
    const inScript = new Set(['hmget', 'hget', 'llen', 'lindex', 'del', 'rpush', 'hset', 'hdel', 'ltrim'])
    const cost = async (fn: () => Promise<unknown>): Promise<{ sent: string[], scripts: Record<string, number> }> => {
      const before = await r.commandStats()
      sent.length = 0
      await fn()
      await other.echo('mark')
      await waitFor(() => sent.includes('echo'), 'monitor')
      const after = await r.commandStats()
      const diff = Object.entries(after).filter(([k, n]) => !['info', 'echo'].includes(k) && n !== before[k]).map(([k, n]) => [k, n - (before[k] ?? 0)] as const)
      expect(diff.filter(([k]) => k !== 'eval' && k !== 'evalsha' && !inScript.has(k))).toEqual([])
      return { sent: sent.filter((c) => !['info', 'echo'].includes(c)), scripts: Object.fromEntries(diff.filter(([k]) => k.startsWith('eval'))) }
    }
    expect(await cost(async () => await store.append(F, json({ id: 'a' }), 1))).toEqual({ sent: ['eval'], scripts: { eval: 1 } })
    for (const id of ['b', 'c', 'b']) { // a new one, one that trims 'a', a duplicate
      expect(await cost(async () => await store.append(F, json({ id }), 2))).toEqual({ sent: ['evalsha'], scripts: { evalsha: 1 } })
    }
    const keys = await other.keys('*')
    expect(keys.sort()).toEqual(['ids', 'log', 'meta'].map((k) => `tribune:feed:{matches/m1/events}:${k}`))
  })

  it('after listing its feeds, answers a join to a feed Redis does not hold without a command; learns new feeds from live messages', async () => {
    const r = await redisForTest()
    const writer = node(r)
    await writer.append('matches/{old}:1/events', json({ id: 'x' }), 1)
    const reader = node(r)
    expect(await reader.watchLive()).toBe(1)
    expect((await reader.snapshot('matches/{old}:1/events'))?.last).toBe(1)
    const before = await r.commandStats()
    for (let i = 0; i < 50; i++) expect(await reader.snapshot(`matches/unknown-${i}/events`)).toBeNull()
    const after = await r.commandStats()
    const spent = Object.entries(after).filter(([cmd, n]) => cmd !== 'info' && n !== (before[cmd] ?? 0))
    expect(spent).toEqual([])
    await writer.append(F, json({ id: 'y' }), 2) // created elsewhere; its live message has not reached the reader yet
    expect(await reader.snapshot(F)).toBeNull()
    reader.noteLive(F)
    expect((await reader.snapshot(F))?.entries.map((e) => e.seq)).toEqual([1])
  })

  it('keeps feeds with braces, colons and spaces apart, each in one hash slot', async () => {
    const r = await redisForTest()
    const store = node(r)
    const names = ['a{b}:c d', 'a%7Bb%7D:c d', 'a{b}', 'a', '}{', '%']
    for (const [i, name] of names.entries()) {
      for (let n = 0; n <= i; n++) expect((await store.append(name, json({ name, n }), n)).entry.seq).toBe(n + 1)
    }
    for (const [i, name] of names.entries()) {
      const snap = await store.snapshot(name)
      expect(snap?.entries.map((e) => JSON.parse(e.payload.toString()).data)).toEqual(upTo(0, i).map((n) => ({ name, n })))
    }
    const keys = await r.client().keys('*')
    expect(keys.length).toBe(names.length * 2) // meta and log (no ids)
    const tags = new Set(keys.map((k) => /\{([^}]+)\}/.exec(k)?.[1]))
    expect(tags.size).toBe(names.length)
    expect(keys.filter((k) => k.startsWith('tribune:feed:{a%7Bb%7D:c d}:'))).toHaveLength(2)
  })

  it('rejects appends while Redis is down, and works again once it is back', async () => {
    const r = await redisForTest()
    const conn = await connect(r, { enableOfflineQueue: false })
    const store = node(r, 100, conn)
    expect((await store.append(F, json({}), 1)).entry.seq).toBe(1)
    await r.kill()
    await expect(store.append(F, json({}), 2)).rejects.toThrow()
    await expect(store.snapshot(F)).rejects.toThrow()
    await r.restart()
    await waitFor(() => conn.status === 'ready', 'reconnection')
    expect((await store.append(F, json({}), 3)).entry.seq).toBe(2)
  })

  it('close() waits for appends in flight (queued while Redis is down) and leaves the connection open', async () => {
    const r = await redisForTest()
    const conn = r.client()
    const store = node(r, 100, conn)
    await store.append(F, json({}), 1)
    await r.kill()
    const pending = store.append(F, json({}), 2)
    const closed = store.close().then(() => 'closed')
    const early = await Promise.race([closed, new Promise((resolve) => setTimeout(() => resolve('waiting'), 300))])
    expect(early).toBe('waiting')
    await r.restart()
    expect(await closed).toBe('closed')
    expect((await pending).entry.seq).toBe(2)
    expect(await conn.ping()).toBe('PONG')
  })
})
