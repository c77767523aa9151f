// Tests whether feeds stamp, keep and replay messages: $replay/all, last-n, after-seq@epoch, reset, invalid filters.
import { describe, it, expect } from 'vitest'
import { brokerForTest } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'

const FEED = 'matches/m1/events'

describe('feeds on one node', () => {
  it('stamps feed messages and replays history then live, in order', async () => {
    const node = await brokerForTest()
    const pub = await connect(node.tcpUrl)
    for (let i = 1; i <= 5; i++) await pub.publishAsync(FEED, JSON.stringify({ id: `e${i}`, n: i }), { qos: 1 })
    const viewer = await connect(node.wsUrl)
    const got = collect(viewer)
    await viewer.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
    await waitFor(() => got.length === 5, '5 history messages')
    await pub.publishAsync(FEED, JSON.stringify({ id: 'e6', n: 6 }), { qos: 1 })
    await waitFor(() => got.length === 6, 'live message')
    expect(got.map((m) => m.json.seq)).toEqual([1, 2, 3, 4, 5, 6])
    expect(got.map((m) => m.json.data.n)).toEqual([1, 2, 3, 4, 5, 6])
    expect(new Set(got.map((m) => m.json.epoch)).size).toBe(1)
    expect(got.every((m) => m.topic === `$replay/all/${FEED}`)).toBe(true)
  })

  it('answers last-n, after-seq@epoch, and a reset for an unknown epoch', async () => {
    const node = await brokerForTest()
    const pub = await connect(node.tcpUrl)
    for (let i = 1; i <= 10; i++) await pub.publishAsync(FEED, `plain ${i}`, { qos: 1 })
    const v = await connect(node.tcpUrl)
    const got = collect(v)
    await v.subscribeAsync(`$replay/last-3/${FEED}`)
    await waitFor(() => got.length === 3, 'last 3')
    expect(got.map((m) => m.json.seq)).toEqual([8, 9, 10])
    expect(got[0].json.data).toBe('plain 8')
    const epoch = got[0].json.epoch as string
    await v.subscribeAsync(`$replay/after-7@${epoch}/${FEED}`)
    await waitFor(() => got.length === 6, 'after 7')
    expect(got.slice(3).map((m) => m.json.seq)).toEqual([8, 9, 10])
    await v.subscribeAsync(`$replay/after-7@nope/${FEED}`)
    await waitFor(() => got.length === 17, 'reset + all')
    expect(got[6].json).toEqual({ reset: true, epoch, reason: 'epoch-changed' })
    expect(got.slice(7).map((m) => m.json.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  })

  it('refuses invalid $replay filters with SUBACK 0x80 and keeps serving', async () => {
    const node = await brokerForTest()
    const v = await connect(node.tcpUrl)
    for (const bad of ['$replay/sometimes/matches/m1/events', '$replay/all/matches/+/events', '$replay/last-x/matches/m1/events',
      '$replay/all/other/topic', '$replay/after-3/matches/m1/events', '$replay/all']) {
      const granted = await v.subscribeAsync(bad).catch((err: { granted?: unknown }) => err)
      expect(JSON.stringify(granted), bad).toContain('128')
    }
    const pub = await connect(node.tcpUrl)
    const got = collect(v)
    await v.subscribeAsync(FEED)
    await pub.publishAsync(FEED, '{"a":1}', { qos: 1 })
    await waitFor(() => got.length === 1, 'live message on plain subscription')
    expect(got[0].json).toMatchObject({ seq: 1, data: { a: 1 } })
  })
})

describe('the feed guarantee under concurrency', () => {
  it('gives every viewer seq 1..n once and in order while two publishers burst and viewers join at random moments', async () => {
    const node = await brokerForTest()
    const pubs = [await connect(node.tcpUrl), await connect(node.wsUrl)]
    const N = 400
    const viewers: Array<ReturnType<typeof collect>> = []
    const joins: Array<Promise<unknown>> = []
    const bursts = pubs.map(async (p, k) => {
      const sent: Array<Promise<unknown>> = []
      for (let i = 0; i < N / 2; i++) {
        sent.push(p.publishAsync(FEED, JSON.stringify({ id: `p${k}-${i}` }), { qos: 1 }))
        if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve))
      }
      await Promise.all(sent)
    })
    for (let j = 0; j < 30; j++) {
      joins.push((async () => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 150))
        const v = await connect(j % 2 === 0 ? node.tcpUrl : node.wsUrl)
        const got = collect(v)
        viewers.push(got)
        await v.subscribeAsync(j % 3 === 0 ? `$replay/last-5/${FEED}` : `$replay/all/${FEED}`, { qos: (j % 2) as 0 | 1 })
      })())
    }
    await Promise.all([...bursts, ...joins])
    await waitFor(() => viewers.every((g) => g.length > 0 && g[g.length - 1].json.seq === N), 'every viewer at the last seq')
    for (const got of viewers) {
      const seqs = got.map((m) => m.json.seq as number)
      const first = seqs[0]
      expect(seqs).toEqual(Array.from({ length: N - first + 1 }, (_, i) => first + i))
    }
    expect(viewers.filter((g) => g[0].json.seq === 1).length).toBeGreaterThan(10)
  })
})

describe('persistent sessions', () => {
  it('resume a $replay subscription where they stopped, without repeats', async () => {
    const node = await brokerForTest()
    const pub = await connect(node.tcpUrl)
    for (let i = 1; i <= 3; i++) await pub.publishAsync(FEED, String(i), { qos: 1 })
    const opts = { clientId: 'tv-42', clean: false }
    const v1 = await connect(node.tcpUrl, opts)
    const got1 = collect(v1)
    await v1.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
    await waitFor(() => got1.length === 3, 'history')
    await v1.endAsync()
    for (let i = 4; i <= 5; i++) await pub.publishAsync(FEED, String(i), { qos: 1 })
    const v2 = await connect(node.tcpUrl, opts)
    const got2 = collect(v2)
    await pub.publishAsync(FEED, '6', { qos: 1 })
    await waitFor(() => got2.length >= 3, 'resumed messages')
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(got2.map((m) => m.json.seq)).toEqual([4, 5, 6])
  })
})

describe('feed messages and retain', () => {
  it('does not retain feed messages: the history is their memory', async () => {
    const node = await brokerForTest()
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync(FEED, '{"id":"r1"}', { qos: 1, retain: true })
    const v = await connect(node.tcpUrl)
    const got = collect(v)
    await v.subscribeAsync(FEED, { qos: 1 })
    await v.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
    await waitFor(() => got.length === 1, 'the replayed message')
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(got.map((m) => [m.topic, m.retain, m.json.seq])).toEqual([[`$replay/all/${FEED}`, false, 1]])
  })
})
