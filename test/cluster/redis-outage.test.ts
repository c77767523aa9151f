/**
 * Redis trouble: Redis is killed for 5 seconds while a publisher keeps publishing QoS 1 feed messages into a 3-node
 * cluster and viewers watch on every node. Nodes stay up, viewers stay connected, /healthz answers and /readyz
 * reports the outage; a clean-session viewer can still join a feed its node holds. A publish is acknowledged only once
 * it is in Redis: every acknowledged message ends up in every viewer's feed.
 *  - Restarted with its data: every viewer's feed is complete (seq 1..n, once, in order).
 *  - Restarted empty: the feed starts over under a new epoch; every viewer is reset and ends holding the new epoch's
 *    feed exactly.
 */
import { describe, test, expect } from 'vitest'
import type { MqttClient } from 'mqtt'
import { onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest, type TestNode } from '../helpers/cluster.js'
import { Viewer, type FeedEnvelope } from '../../client/src/index.js'

const FEED = 'matches/x/events'
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Publishes one message every `everyMs` without waiting for the PUBACK; records which were acknowledged. */
function keepPublishing (pub: MqttClient, everyMs: number): { stop: () => Promise<void>, acked: Set<string>, sent: () => number } {
  const acked = new Set<string>()
  const pending: Array<Promise<unknown>> = []
  let i = 0
  const timer = setInterval(() => {
    const id = `m${i++}`
    pending.push(pub.publishAsync(FEED, JSON.stringify({ id }), { qos: 1 }).then(() => acked.add(id), () => {}))
  }, everyMs)
  return {
    acked,
    sent: () => i,
    stop: async () => {
      clearInterval(timer)
      await Promise.all(pending)
    }
  }
}

async function http (node: TestNode, path: string): Promise<{ status: number, body: any }> {
  const res = await fetch(`http://127.0.0.1:${node.wsPort}${path}`)
  return { status: res.status, body: await res.json() }
}

async function outage (empty: boolean): Promise<void> {
  const redis = await redisForTest()
  const nodes = await clusterForTest(redis.url, 3)
  const pub = await connect(nodes[0].tcpUrl, { clientId: 'outage-publisher' })
  const watchers: Array<{ list: FeedEnvelope[], resets: number, viewer: Viewer }> = []
  for (let i = 0; i < 12; i++) {
    const viewer = Viewer.connect(i % 2 === 0 ? nodes[i % 3].wsUrl : nodes[i % 3].tcpUrl, { reconnect: { baseMs: 20, capMs: 200 } })
    onCleanup(async () => await viewer.close())
    const w = { list: [] as FeedEnvelope[], resets: 0, viewer }
    const sub = viewer.watchFeed(FEED, { from: 'all' }, (env) => w.list.push(env))
    sub.on('reset', () => {
      w.resets++
      w.list.length = 0 // what follows starts over
    })
    watchers.push(w)
  }
  const closes: string[] = []
  watchers.forEach((w, i) => w.viewer.mqttClient.on('close', () => closes.push(`viewer ${i}`)))
  pub.on('close', () => closes.push('publisher'))

  const publishing = keepPublishing(pub, 20)
  await waitFor(() => publishing.acked.size >= 30 && watchers.every((w) => w.list.length > 0), 'publishing under way')
  await redis.kill()
  await sleep(300)
  for (const node of nodes) {
    expect((await http(node, '/healthz')).status).toBe(200)
    const ready = await http(node, '/readyz')
    expect(ready.status).toBe(503)
    expect(ready.body.reasons).toContain('redis store unreachable')
  }
  // A clean-session viewer joins a feed its node already holds, with Redis down.
  const joiner = await connect(nodes[2].wsUrl)
  const joined = collect(joiner)
  await joiner.subscribeAsync([`$replay/all/${FEED}`, 'matches/x/lineup']) // a topic nobody on the node had: SUBACK anyway
  await waitFor(() => joined.length >= 30, 'history served from the node during the outage')
  expect(joined.map((m) => m.json.seq)).toEqual(Array.from({ length: joined.length }, (_, k) => k + 1))
  // A retained state published during the outage: stored once Redis is back, and then what every node serves.
  const stateDuringOutage = pub.publishAsync('matches/x/state', '{"score":"during"}', { qos: 1, retain: true })
  await sleep(4700)
  // The replay ends while Redis is down: the publishes waiting for Redis are the last ones, so a node whose
  // subscription comes back after they are sent must catch up by itself.
  const ackedBeforeRestart = publishing.acked.size
  const stopped = publishing.stop()
  const waiting = publishing.sent() - ackedBeforeRestart
  expect(waiting).toBeGreaterThan(100)
  await redis.restart({ empty })
  await stopped
  for (const node of nodes) await waitFor(() => node.aedes.closed === false, 'node up')
  for (const node of nodes) expect((await http(node, '/readyz')).status).toBe(200)
  await stateDuringOutage
  await sleep(1200) // each node reads the retained set again after its reconnect, and once more a second later
  for (const [k, node] of nodes.entries()) {
    const c = await connect(node.wsUrl)
    const got = collect(c)
    await c.subscribeAsync('matches/x/state')
    await waitFor(() => got.length === 1, `retained state on node ${k}`)
    expect(got[0].json.score, `node ${k}`).toBe('during')
  }

  // The reference: the whole feed as Redis holds it now.
  const ref = await connect(nodes[1].tcpUrl)
  const refGot = collect(ref)
  await ref.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
  await sleep(500)
  const reference = refGot.filter((m) => m.json.seq !== undefined)
  const n = reference.length
  expect(reference.map((m) => m.json.seq)).toEqual(Array.from({ length: n }, (_, k) => k + 1))
  await waitFor(() => watchers.every((w) => w.list.length > 0 && w.list[w.list.length - 1].seq === n), `every viewer at seq ${n}`, 20_000)
  for (const [i, w] of watchers.entries()) {
    expect(w.list.map((e) => e.seq), `viewer ${i}`).toEqual(Array.from({ length: n }, (_, k) => k + 1))
    expect(w.list.map((e) => JSON.stringify(e.data)), `viewer ${i}`).toEqual(reference.map((m) => JSON.stringify(m.json.data)))
    expect(new Set(w.list.map((e) => e.epoch)).size).toBe(1)
    expect(w.resets, `viewer ${i} resets`).toBe(empty ? 1 : 0)
  }
  expect(closes).toEqual([]) // nobody was disconnected
  const held = new Set(reference.map((m) => m.json.data.id as string))
  if (!empty) {
    // Every acknowledged publish was delivered; nothing was lost.
    for (const id of publishing.acked) expect(held.has(id), `acknowledged ${id} delivered`).toBe(true)
    expect(n).toBe(publishing.acked.size)
  } else {
    // Acknowledged before the restart and lost with Redis' data: never in the new epoch. After it: all there.
    expect(reference[0].json.epoch).not.toBe(joined[0].json.epoch)
    expect(n).toBeGreaterThanOrEqual(waiting - 2)
  }
}

describe('Redis killed for 5 seconds during a replay', () => {
  test('restarted with its data: every viewer ends with the complete feed, every acknowledged publish in it', async () => {
    await outage(false)
  }, 60_000)

  test('restarted empty: every viewer is reset once and ends with the new epoch\'s feed', async () => {
    await outage(true)
  }, 60_000)
})
