// Tests whether the feed hub delivers in seq order when live messages arrive out of order, late, twice, or never
// (gap filled from the store), whether joins during a load share it, and whether a feed reset reaches its viewers
// (then the new epoch; late messages of the old one dropped). Uses the real LevelFeedStore in memory.
import { describe, it, expect } from 'vitest'
import { MemoryLevel } from 'memory-level'
import { LevelFeedStore } from '../../broker/src/feeds/level-store.js'
import { FeedHub, type FeedSink } from '../../broker/src/feeds/hub.js'
import { waitFor } from '../helpers/mqtt.js'

const F = 'matches/h/events'

async function setup (history = 1000): Promise<{ store: LevelFeedStore, hub: FeedHub }> {
  const db = new MemoryLevel<string, Buffer>({ keyEncoding: 'utf8', valueEncoding: 'buffer' })
  await db.open()
  const store = new LevelFeedStore(db as never, history)
  const hub = new FeedHub(store, { history, gapFillMs: 30 })
  return { store, hub }
}

function sink (): FeedSink & { got: any[] } {
  const got: any[] = []
  return { got, closed: false, send: (p) => got.push(JSON.parse(p.toString())) }
}

describe('feed hub', () => {
  it('reorders early messages, drops repeats, and fills a lost message from the store', async () => {
    const { store, hub } = await setup()
    const s = sink()
    await hub.attach(F, { kind: 'all' }, s)
    const appended = []
    for (let i = 0; i < 6; i++) appended.push(await store.append(F, Buffer.from(`{"i":${i}}`), 1))
    const [a1, a2, a3, a4, a5, a6] = appended
    hub.onLive(F, a1.epoch, a2.entry)
    hub.onLive(F, a1.epoch, a1.entry)
    hub.onLive(F, a1.epoch, a1.entry)
    hub.onLive(F, a1.epoch, a4.entry) // a3 never arrives live
    hub.onLive(F, a1.epoch, a6.entry)
    hub.onLive(F, a1.epoch, a5.entry)
    expect(s.got.map((m) => m.seq)).toEqual([1, 2])
    await waitFor(() => s.got.length === 6, 'gap fill')
    expect(s.got.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6])
    void a3
    hub.close()
  })

  it('fills several lost messages between held ones in one window, without a false reset', async () => {
    const { store, hub } = await setup()
    const s = sink()
    await hub.attach(F, { kind: 'all' }, s)
    const a = []
    for (let i = 0; i < 6; i++) a.push(await store.append(F, Buffer.from(String(i + 1)), 1))
    hub.onLive(F, a[0].epoch, a[0].entry)
    hub.onLive(F, a[0].epoch, a[2].entry) // 2 lost
    hub.onLive(F, a[0].epoch, a[4].entry) // 4 lost
    hub.onLive(F, a[0].epoch, a[5].entry)
    await waitFor(() => s.got.length === 6, 'both gaps filled')
    expect(s.got.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6])
    const late = sink()
    await hub.attach(F, { kind: 'after', seq: 3, epoch: a[0].epoch }, late)
    expect(late.got.map((m) => m.seq)).toEqual([4, 5, 6])
  })

  it('serves joins during a load from one snapshot, with live messages that raced the load', async () => {
    const { store, hub } = await setup()
    const first = await store.append(F, Buffer.from('1'), 1)
    await store.append(F, Buffer.from('2'), 1)
    const sinks = [sink(), sink(), sink()]
    const joining = sinks.map(async (s) => await hub.attach(F, { kind: 'all' }, s))
    const third = await store.append(F, Buffer.from('3'), 1)
    hub.onLive(F, first.epoch, third.entry) // arrives while the cache is loading
    await Promise.all(joining)
    for (const s of sinks) expect(s.got.map((m) => m.seq)).toEqual([1, 2, 3])
  })

  it('sends a reset notice and starts over on a live epoch change', async () => {
    const { store, hub } = await setup()
    const a = await store.append(F, Buffer.from('1'), 1)
    const s = sink()
    await hub.attach(F, { kind: 'all' }, s)
    hub.onLive(F, 'neweepoch000', { seq: 1, payload: Buffer.from('{"seq":1,"epoch":"neweepoch000","ts":1,"data":9}') })
    expect(s.got).toEqual([
      JSON.parse(a.entry.payload.toString()),
      { reset: true, epoch: 'neweepoch000', reason: 'epoch-changed' },
      { seq: 1, epoch: 'neweepoch000', ts: 1, data: 9 }
    ])
  })

  it('keeps only the configured history and answers a trimmed resume with a reset', async () => {
    const { store, hub } = await setup(3)
    let epoch = ''
    for (let i = 1; i <= 6; i++) epoch = (await store.append(F, Buffer.from(String(i)), 1)).epoch
    const s = sink()
    await hub.attach(F, { kind: 'after', seq: 1, epoch }, s)
    expect(s.got).toEqual([{ reset: true, epoch, reason: 'trimmed' }, ...[4, 5, 6].map((n) => expect.objectContaining({ seq: n, data: n }))])
    const snap = await store.snapshot(F)
    expect(snap?.entries.map((e) => e.seq)).toEqual([4, 5, 6])
  })

  it('does not give a resent event (same id) a new seq', async () => {
    const { store } = await setup()
    const a = await store.append(F, Buffer.from('{"id":"goal-1"}'), 1)
    const b = await store.append(F, Buffer.from('{"id":"goal-1"}'), 2)
    expect(b.duplicate).toBe(true)
    expect(b.entry.seq).toBe(a.entry.seq)
    expect((await store.append(F, Buffer.from('{"id":"goal-2"}'), 3)).entry.seq).toBe(2)
  })
})

describe('feed hub cache lifetime', () => {
  it('drops a feed cache once its last viewer has been gone for idleMs, and reloads it on the next join', async () => {
    const db = new MemoryLevel<string, Buffer>({ keyEncoding: 'utf8', valueEncoding: 'buffer' })
    await db.open()
    const store = new LevelFeedStore(db as never, 100)
    const hub = new FeedHub(store, { history: 100, idleMs: 50 })
    await store.append(F, Buffer.from('1'), 1)
    const a = await hub.attach(F, { kind: 'all' }, sink())
    const b = await hub.attach('matches/other/events', { kind: 'all' }, sink())
    expect(hub.stats()).toEqual({ cachedFeeds: 2, replayViewers: 2 })
    hub.detach(a)
    await new Promise((resolve) => setTimeout(resolve, 120))
    expect(hub.stats()).toEqual({ cachedFeeds: 1, replayViewers: 1 })
    await store.append(F, Buffer.from('2'), 1)
    const s = sink()
    await hub.attach(F, { kind: 'all' }, s)
    expect(s.got.map((m) => m.seq)).toEqual([1, 2])
    hub.detach(b)
    hub.close()
  })

  it('catches up after the message stream was cut: the messages it missed, then a new epoch with a reset', async () => {
    const { store, hub } = await setup()
    const s = sink()
    const first = await store.append(F, Buffer.from('1'), 1)
    await hub.attach(F, { kind: 'all' }, s)
    for (let i = 2; i <= 4; i++) await store.append(F, Buffer.from(String(i)), 1) // never arrive live
    await hub.resync()
    expect(s.got.map((m) => m.seq)).toEqual([1, 2, 3, 4])
    await hub.resync() // nothing new: nothing sent twice
    expect(s.got).toHaveLength(4)
    // The store lost everything and started a new epoch (Redis restarted empty): viewers are reset, then get it.
    const db2 = new MemoryLevel<string, Buffer>({ keyEncoding: 'utf8', valueEncoding: 'buffer' })
    await db2.open()
    const fresh = new LevelFeedStore(db2 as never, 1000)
    const moved = new FeedHub(fresh, { history: 1000, gapFillMs: 30 })
    const t = sink()
    await moved.attach(F, { kind: 'all' }, t) // empty feed
    moved.onLive(F, first.epoch, first.entry)
    const e1 = await fresh.append(F, Buffer.from('"a"'), 2)
    await fresh.append(F, Buffer.from('"b"'), 2)
    await moved.resync()
    expect(t.got.map((m) => m.reset === true ? `reset:${m.reason}` : `${m.seq}@${m.epoch}`)).toEqual([
      `1@${first.epoch}`, 'reset:epoch-changed', `1@${e1.epoch}`, `2@${e1.epoch}`
    ])
    hub.close()
    moved.close()
  })

})

describe('feed hub reset (admin feeds.reset)', () => {
  it('on a reset tells its viewers, then takes the new epoch; a message of the old epoch arriving late is dropped', async () => {
    const { store, hub } = await setup()
    const s = sink()
    const old = await store.append(F, Buffer.from('1'), 1)
    await hub.attach(F, { kind: 'all' }, s)
    const late = await store.append(F, Buffer.from('2'), 1) // stored before the reset, arrives live after it
    const done = await store.reset(F, 'r1')
    if (done === null) throw new Error('no feed')
    hub.reset(F, done.epoch, done.previous)
    hub.reset(F, done.epoch, done.previous) // the notice of every node asked: applied once
    hub.onLive(F, old.epoch, late.entry)
    const next = await store.append(F, Buffer.from('3'), 1)
    hub.onLive(F, next.epoch, next.entry)
    const show = (m: any): string => m.reset === true ? `reset:${String(m.epoch)}` : `${String(m.seq)}@${String(m.epoch)}`
    expect(s.got.map(show)).toEqual([`1@${old.epoch}`, `reset:${done.epoch}`, `1@${done.epoch}`])
    // A viewer resuming from the old epoch is reset; one joining gets the new epoch's history only.
    const resumed = sink()
    await hub.attach(F, { kind: 'after', seq: 1, epoch: old.epoch }, resumed)
    expect(resumed.got.map(show)).toEqual([`reset:${done.epoch}`, `1@${done.epoch}`])
    expect(hub.cached(F)).toEqual({ epoch: done.epoch, last: 1, held: 1, viewers: 2 })
    hub.close()
  })

  it('takes a reset heard while its first load was under way', async () => {
    const { store, hub } = await setup()
    const old = await store.append(F, Buffer.from('1'), 1)
    const s = sink()
    const joining = hub.attach(F, { kind: 'all' }, s) // loads the snapshot (old epoch)
    hub.reset(F, 'feedfeedfeed', old.epoch) // a reset done elsewhere, heard before the load is applied
    await joining
    expect(s.got).toEqual([])
    expect(hub.cached(F)).toEqual({ epoch: 'feedfeedfeed', last: 0, held: 0, viewers: 1 })
    hub.close()
  })
})
