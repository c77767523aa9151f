/**
 * The feed guarantee across a 3-node cluster: two publishers on different nodes publish to the same feeds at once,
 * while 300 viewers (the client library, over TCP and WebSocket) join during the burst, leave, come back, and move to
 * other nodes resuming from their position. Every viewer must end with each feed exact: consecutive seqs, once, in
 * order, up to the last, from seq 1 when it asked for all. Raw MQTT.js viewers (no client-side repair) that join during
 * the burst on every node must get exactly seq 1..n from the broker itself.
 */
import { test, expect } from 'vitest'
import { onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest, type TestNode } from '../helpers/cluster.js'
import { Viewer, type FeedEnvelope } from '../../client/src/index.js'
import { rng } from '../helpers/random.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const FEEDS = ['matches/a/events', 'matches/b/events', 'matches/c/events']
const PER_PUBLISHER = 120 // messages per feed from each of the two publishers
const BURST_MS = 2500

test('3 nodes, 2 publishers on different nodes, 300 viewers joining, leaving and moving: every feed exact', async () => {
  const seed = Number(process.env.TRIBUNE_TEST_SEED ?? 4)
  const random = rng(seed)
  const redis = await redisForTest()
  const nodes = await clusterForTest(redis.url, 3)
  const urlOf = (node: TestNode, i: number): string => (i % 2 === 0 ? node.wsUrl : node.tcpUrl)

  // Raw viewers subscribed before the burst, one per node and feed.
  const rawEarly = await Promise.all(nodes.flatMap((node, k) => FEEDS.map(async (feed) => {
    const c = await connect(urlOf(node, k))
    const got = collect(c)
    await c.subscribeAsync(`$replay/all/${feed}`, { qos: 0 })
    return { feed, got, where: `early raw on node ${k}` }
  })))

  const publishers = await Promise.all([connect(nodes[0].tcpUrl, { clientId: 'pub-0' }), connect(nodes[1].wsUrl, { clientId: 'pub-1' })])
  const burst = Promise.all(publishers.map(async (pub, p) => {
    for (let i = 0; i < PER_PUBLISHER; i++) {
      await Promise.all(FEEDS.map(async (feed) => await pub.publishAsync(feed, JSON.stringify({ id: `p${p}-${i}`, i }), { qos: 1 })))
      await sleep(random() * (2 * BURST_MS / PER_PUBLISHER))
    }
  }))

  // Raw viewers joining during the burst, on random nodes.
  const rawLate = Promise.all(Array.from({ length: 9 }, async (_, k) => {
    await sleep(random() * BURST_MS)
    // The event loop carries 3 nodes and 300 viewers: allow a slow CONNACK on a loaded machine.
    const c = await connect(urlOf(nodes[k % 3], k), { connectTimeout: 30_000 })
    const got = collect(c)
    const feed = FEEDS[k % FEEDS.length]
    await c.subscribeAsync(`$replay/all/${feed}`, { qos: 1 })
    return { feed, got, where: `late raw ${k} on node ${k % 3}` }
  }))
  rawLate.catch(() => {}) // awaited below; not an unhandled rejection meanwhile

  // 300 client-library viewers with a random life: join, maybe leave and come back, maybe move node (twice at most).
  const anomalies: string[] = []
  const plans = Array.from({ length: 300 }, (_, i) => ({
    feeds: FEEDS.filter(() => random() < 0.5).concat(FEEDS[i % 3]).filter((f, k, all) => all.indexOf(f) === k),
    from: random() < 0.8 ? 'all' as const : 'last-5' as const,
    joinAt: random() * BURST_MS,
    hops: Array.from({ length: Math.floor(random() * 3) }, () => ({ at: random() * BURST_MS, away: random() < 0.3 ? random() * 500 : 0 })).sort((x, y) => x.at - y.at),
    node: Math.floor(random() * 3)
  }))
  const delivered = plans.map((p) => new Map<string, FeedEnvelope[]>(p.feeds.map((f) => [f, []])))
  let moves = 0
  const lives = plans.map(async (plan, i) => {
    await sleep(plan.joinAt)
    let nodeIndex = plan.node
    const open = (): Viewer => {
      const viewer = Viewer.connect(urlOf(nodes[nodeIndex], i), { reconnect: { baseMs: 20, capMs: 200 } })
      onCleanup(async () => await viewer.close())
      for (const feed of plan.feeds) {
        const list = delivered[i].get(feed)!
        const last = list[list.length - 1]
        const sub = viewer.watchFeed(feed, { from: last !== undefined ? { seq: last.seq, epoch: last.epoch } : plan.from }, (env) => list.push(env))
        sub.on('gap', (g) => anomalies.push(`viewer ${i} ${feed}: gap ${JSON.stringify(g)}`))
        sub.on('reset', (r) => anomalies.push(`viewer ${i} ${feed}: reset ${JSON.stringify(r)}`))
        sub.on('error', (e) => anomalies.push(`viewer ${i} ${feed}: error ${e.message}`))
      }
      return viewer
    }
    let viewer = open()
    let at = plan.joinAt
    for (const hop of plan.hops) {
      if (hop.at > at) await sleep(hop.at - at)
      at = hop.at
      await viewer.close()
      if (hop.away > 0) await sleep(hop.away)
      nodeIndex = (nodeIndex + 1 + Math.floor(random() * 2)) % 3
      moves++
      viewer = open()
    }
  })

  await burst
  await Promise.all(lives)
  const n = 2 * PER_PUBLISHER

  // Every client-library viewer: consecutive seqs, once, in order, ending at n; from 1 when it asked for all.
  await waitFor(() => delivered.every((feeds) => [...feeds.values()].every((list) => list.length > 0 && list[list.length - 1].seq === n)), 'every viewer at the last seq', 60_000)
  const epochs = new Set<string>()
  plans.forEach((plan, i) => {
    for (const feed of plan.feeds) {
      const seqs = delivered[i].get(feed)!.map((e) => e.seq)
      const first = seqs[0]
      if (plan.from === 'all') expect(first, `viewer ${i} ${feed}`).toBe(1)
      expect(seqs, `viewer ${i} (${plan.from}, ${plan.hops.length} hops) ${feed}`).toEqual(Array.from({ length: n - first + 1 }, (_, k) => first + k))
      for (const env of delivered[i].get(feed)!) epochs.add(`${feed} ${env.epoch}`)
    }
  })
  expect(epochs.size).toBe(FEEDS.length) // one epoch per feed, the same on every node
  expect(anomalies).toEqual([])

  // Raw viewers: exactly 1..n from the broker, each publisher's messages in its own order.
  for (const r of [...rawEarly, ...await rawLate]) {
    await waitFor(() => r.got.length >= n, `${r.where}: ${n} messages of ${r.feed}`, 30_000)
    await sleep(50)
    expect(r.got.map((m) => m.json.seq), r.where).toEqual(Array.from({ length: n }, (_, k) => k + 1))
    for (const p of [0, 1]) {
      const mine = r.got.map((m) => m.json.data).filter((d) => d.id.startsWith(`p${p}-`)).map((d) => d.i)
      expect(mine, `${r.where}: publisher ${p} in order`).toEqual(Array.from({ length: PER_PUBLISHER }, (_, k) => k))
    }
  }
  console.log(`feed guarantee (seed ${seed}): 3 nodes, ${n} messages per feed from 2 publishers, 300 viewers, ${moves} moves`)
}, 180_000)
