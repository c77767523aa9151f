// Tests the main job end to end, on one node and on a 3-node cluster linked by Redis: a World Cup replayed at --speed 0 into a real broker while 200 viewers
// (the client library over TCP and WebSocket) join at random moments, some with `all`, some with `last-5`, some dropping
// their connection and resuming; plus raw MQTT.js viewers that see the broker's stream without any client-side repair.
// Every viewer must end holding each of its feeds as consecutive seqs once and in order, identical across transports,
// and every match state must equal the file's final score.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it, expect } from 'vitest'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { Publisher } from '../../publisher/src/index.js'
import { readWorldCupFile, type ReplayMatch } from '../../publisher/src/replay/worldcup.js'
import { runReplay } from '../../publisher/src/replay/run.js'
import { Viewer } from '../../client/src/index.js'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest, type TestNode } from '../helpers/cluster.js'
import { rng } from '../helpers/random.js'

const SHARED = join(import.meta.dirname, '../../../shared/data')
const SHIPPED = join(import.meta.dirname, '../../publisher/data')
const FIXTURES = join(import.meta.dirname, '../publisher/fixtures')
/** The real input in ../shared/data, or the copies in the repository when the checkout stands alone. */
const input = (name: string): string => [SHARED, SHIPPED, FIXTURES].map((d) => join(d, name)).find((f) => existsSync(f)) ?? join(SHARED, name)

interface ViewerPlan {
  url: string
  feeds: string[]
  from: 'all' | 'last-5'
  joinAtMs: number
  dropAtMs: number | null
}

interface Seen { seq: number, epoch: string, raw: string }

/**
 * Replays `file` into node 0 of `nodes` (one node, or a cluster) while 200 viewers join at random moments on every node;
 * the reference is read from the last node, the retained states from each.
 */
async function replayWithViewers (file: string, expectedMatches: number, seed: number, nodes: TestNode[]): Promise<void> {
  const random = rng(seed)
  const node = nodes[0]
  const anyNode = (): TestNode => nodes[Math.floor(random() * nodes.length)]
  const worldCup = await readWorldCupFile(file)
  expect(worldCup.matches).toHaveLength(expectedMatches)
  const byId = new Map<string, ReplayMatch>(worldCup.matches.map((m) => [m.id, m]))
  const feedOf = (m: ReplayMatch): string => `matches/${m.id}/events`
  const ids = [...byId.keys()]

  // Start the replay, as `tribune replay --speed 0` does.
  const publisher = await Publisher.connect(node.tcpUrl)
  onCleanup(async () => await publisher.close())
  const started = Date.now()
  const replay = runReplay(publisher, worldCup.matches, { speed: 0 })

  // 200 viewers with the client library, joining over the first ~1.5 s of the replay.
  const plans: ViewerPlan[] = Array.from({ length: 200 }, (_, i) => ({
    url: i % 2 === 0 ? anyNode().wsUrl : anyNode().tcpUrl,
    feeds: Array.from({ length: 3 }, () => `matches/${ids[Math.floor(random() * ids.length)]}/events`)
      .filter((f, k, all) => all.indexOf(f) === k),
    from: random() < 0.7 ? 'all' : 'last-5',
    joinAtMs: Math.floor(random() * 1500),
    dropAtMs: random() < 0.3 ? Math.floor(random() * 1500) : null
  }))
  const seen = plans.map(() => new Map<string, Seen[]>())
  const anomalies: string[] = []
  const states = plans.map(() => new Map<string, any>())
  const viewers: Viewer[] = []
  const connects = plans.map(() => 0)
  const joining = plans.map(async (plan, i) => {
    await new Promise((resolve) => setTimeout(resolve, plan.joinAtMs))
    const viewer = Viewer.connect(plan.url, { reconnect: { baseMs: 20, capMs: 200 } })
    viewer.on('connect', () => {
      // The drop comes a while after the first connect, mid-replay for most viewers.
      if (connects[i]++ === 0 && plan.dropAtMs !== null) {
        setTimeout(() => { (viewer.mqttClient.stream as unknown as { destroy: () => void }).destroy() }, plan.dropAtMs)
      }
    })
    viewers.push(viewer)
    onCleanup(async () => await viewer.close())
    for (const feed of plan.feeds) {
      const list: Seen[] = []
      seen[i].set(feed, list)
      const sub = viewer.watchFeed(feed, { from: plan.from }, (env) => {
        list.push({ seq: env.seq, epoch: env.epoch, raw: JSON.stringify(env) })
      })
      sub.on('gap', (g) => anomalies.push(`viewer ${i} ${feed}: gap ${JSON.stringify(g)}`))
      sub.on('reset', (r) => anomalies.push(`viewer ${i} ${feed}: reset ${JSON.stringify(r)}`))
      sub.on('error', (e) => anomalies.push(`viewer ${i} ${feed}: error ${e.message}`))
      viewer.watchState(feed.replace(/events$/, 'state'), (m) => states[i].set(m.topic, m.payload))
    }
  })

  // Raw MQTT.js viewers: what the broker itself sends, with no client-side dedupe or reordering.
  const raw = await Promise.all(ids.slice(0, 8).map(async (id, k) => {
    const c = await connect(k % 2 === 0 ? nodes[k % nodes.length].tcpUrl : nodes[k % nodes.length].wsUrl)
    const got = collect(c)
    await c.subscribeAsync(`$replay/all/matches/${id}/events`, { qos: 1 })
    return { feed: `matches/${id}/events`, got }
  }))

  const summary = await replay
  await Promise.all(joining)
  expect(summary.matches).toBe(expectedMatches)
  const replayMs = Date.now() - started

  // The reference: each feed read whole after the replay.
  const reference = new Map<string, string[]>()
  const ref = await connect(nodes[nodes.length - 1].tcpUrl)
  const refGot = collect(ref)
  for (const m of worldCup.matches) await ref.subscribeAsync(`$replay/all/${feedOf(m)}`, { qos: 1 })
  const totalEvents = worldCup.matches.reduce((n, m) => n + m.events.length, 0)
  await waitFor(() => refGot.length === totalEvents, `${totalEvents} reference messages`)
  for (const msg of refGot) {
    const feed = msg.topic.replace('$replay/all/', '')
    const list = reference.get(feed) ?? []
    list.push(JSON.stringify(msg.json))
    reference.set(feed, list)
  }
  for (const m of worldCup.matches) {
    const feed = reference.get(feedOf(m)) ?? []
    expect(feed.map((r) => JSON.parse(r).seq), m.id).toEqual(m.events.map((_, k) => k + 1))
    expect(feed.map((r) => JSON.parse(r).data.type), m.id).toEqual(m.events.map((e) => e.event.type))
  }

  // Every viewer ends at the last seq of each of its feeds, with consecutive seqs identical to the reference.
  await waitFor(() => plans.every((plan, i) => plan.feeds.every((f) => {
    const list = seen[i].get(f) ?? []
    return list.length > 0 && list[list.length - 1].seq === byId.get(f.split('/')[1])!.events.length
  })), 'every viewer complete', 30_000)
  let fromStart = 0
  plans.forEach((plan, i) => {
    for (const feed of plan.feeds) {
      const list = seen[i].get(feed)!
      const refList = reference.get(feed)!
      const first = list[0].seq
      if (plan.from === 'all') expect(first, `viewer ${i} ${feed}`).toBe(1)
      if (first === 1) fromStart++
      expect(list.map((s) => s.raw), `viewer ${i} (${plan.url.slice(0, 4)}, ${plan.from}) ${feed}`).toEqual(refList.slice(first - 1))
    }
  })
  expect(anomalies).toEqual([])
  const resumed = connects.filter((n) => n > 1).length
  expect(resumed).toBe(plans.filter((p) => p.dropAtMs !== null).length)
  expect(fromStart).toBeGreaterThan(100)

  // Raw viewers: exactly 1..n from the broker itself.
  for (const r of raw) {
    await waitFor(() => r.got.length >= reference.get(r.feed)!.length, `raw viewer of ${r.feed}`)
    expect(r.got.map((m) => JSON.stringify(m.json))).toEqual(reference.get(r.feed))
  }

  // Every state equals the file's final score, for every match: from a fresh subscriber on each node and from the viewers.
  for (const [k, n] of nodes.entries()) {
    const st = await connect(n.wsUrl)
    const stGot = collect(st)
    await st.subscribeAsync('matches/+/state', { qos: 1 })
    await waitFor(() => stGot.length === expectedMatches, `${expectedMatches} retained states on node ${k}`)
    for (const msg of stGot) {
      const m = byId.get(msg.topic.split('/')[1])!
      expect(msg.retain).toBe(true)
      expect(msg.json).toMatchObject({ team1: m.team1, team2: m.team2, date: m.date, status: 'finished', score: m.final })
      expect(msg.json.penalties).toEqual(m.penalties)
    }
  }
  await waitFor(() => plans.every((plan, i) => plan.feeds.every((f) => states[i].get(f.replace(/events$/, 'state'))?.status === 'finished')), 'viewers see final states')
  plans.forEach((plan, i) => {
    for (const f of plan.feeds) expect(states[i].get(f.replace(/events$/, 'state')).score).toEqual(byId.get(f.split('/')[1])!.final)
  })
  console.log(`${file.split('/').pop()} on ${nodes.length} node(s): ${expectedMatches} matches, ${totalEvents} events replayed in ${replayMs} ms; ` +
    `200 viewers (${resumed} dropped and resumed), ${fromStart} feeds held from seq 1`)
}

describe('the main job on one node', () => {
  it('replays the 2022 World Cup (64 matches) to 200 viewers joining, dropping and resuming', async () => {
    await replayWithViewers(input('worldcup-2022.json'), 64, 2022, [await brokerForTest()])
  })

  it('replays the 2026 World Cup (104 matches) to 200 viewers joining, dropping and resuming', async () => {
    await replayWithViewers(input('worldcup-2026.json'), 104, 2026, [await brokerForTest()])
  })

  it('ships the 2022 World Cup as demo input, identical to the shared data', async () => {
    const shipped = await readWorldCupFile(join(SHIPPED, 'worldcup-2022.json'))
    const shared = await readWorldCupFile(input('worldcup-2022.json'))
    expect(shipped).toEqual(shared)
  })
})

describe('the main job on a 3-node cluster linked by Redis', () => {
  it('replays the 2022 World Cup into node 0 to 200 viewers spread over the 3 nodes', async () => {
    const redis = await redisForTest()
    await replayWithViewers(input('worldcup-2022.json'), 64, 2122, await clusterForTest(redis.url, 3))
  })

  it('replays the 2026 World Cup into node 0 to 200 viewers spread over the 3 nodes', async () => {
    const redis = await redisForTest()
    await replayWithViewers(input('worldcup-2026.json'), 104, 2126, await clusterForTest(redis.url, 3))
  })
})
