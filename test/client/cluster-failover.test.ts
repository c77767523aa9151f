/**
 * Viewers and a publisher given the URLs of two nodes of a cluster (linked by a real redis-server), over TCP and over
 * WebSocket: while the publisher publishes, the node they are on is closed; they move to the other node, and every
 * viewer ends with every seq once, in order, the same envelopes as the surviving node's $replay/all, and the
 * publisher's events all there once, in publish order (its unacknowledged publishes resent on the other node).
 */
import { expect, it } from 'vitest'
import { Viewer, type FeedEnvelope, type ReconnectInfo } from '../../client/src/index.js'
import { Publisher } from '../../publisher/src/index.js'
import { onCleanup } from '../helpers/broker.js'
import { clusterForTest } from '../helpers/cluster.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'

const FEED = 'matches/cluster-failover/events'
const N = 150
const keepOrder = (): number => 0.999 // the URLs are tried in the order given

it('viewers and a publisher on the node that closes move to the other node; every feed ends exact', async () => {
  const redis = await redisForTest()
  const [n0, n1] = await clusterForTest(redis.url, 2)

  const watchers = (['tcp', 'ws'] as const).map((kind) => {
    const urls = kind === 'tcp' ? [n0.tcpUrl, n1.tcpUrl] : [n0.wsUrl, n1.wsUrl]
    const viewer = Viewer.connect(urls, { random: keepOrder, reconnect: { baseMs: 50, capMs: 200 } })
    onCleanup(async () => { await viewer.close() })
    const w = { kind, urls, viewer, got: [] as FeedEnvelope[], connects: [] as string[], reconnects: [] as ReconnectInfo[], anomalies: [] as string[] }
    viewer.on('connect', (url) => w.connects.push(url))
    viewer.on('reconnecting', (info) => w.reconnects.push(info))
    const sub = viewer.watchFeed(FEED, { from: 'all' }, (env) => w.got.push(env))
    sub.on('gap', (g) => w.anomalies.push(`gap ${JSON.stringify(g)}`))
    sub.on('reset', (r) => w.anomalies.push(`reset ${JSON.stringify(r)}`))
    sub.on('error', (e) => w.anomalies.push(`error ${e.message}`))
    return w
  })
  await Promise.all(watchers.map(async (w) => { await w.viewer.waitConnected(10_000) }))
  expect(watchers.map((w) => w.viewer.url)).toEqual([n0.tcpUrl, n0.wsUrl])

  const moves: ReconnectInfo[] = []
  const publisher = await Publisher.connect([n0.tcpUrl, n1.tcpUrl], { random: keepOrder, reconnectPeriod: 100, onReconnecting: (info) => moves.push(info) })
  onCleanup(async () => { await publisher.close() })
  expect(publisher.url).toBe(n0.tcpUrl)

  let acked = 0
  const closing = (async () => {
    await waitFor(() => acked >= 50 && watchers.every((w) => w.got.length >= 40), 'a third of the feed published and seen')
    await n0.close()
  })()
  for (let i = 1; i <= N; i++) {
    await publisher.publishEvent(FEED, { id: `e${i}`, i })
    acked++
    if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  await closing

  await waitFor(() => watchers.every((w) => w.got.length >= N), `every viewer at seq ${N}`, 30_000)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const raw = await connect(n1.tcpUrl)
  const held = collect(raw)
  await raw.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
  await waitFor(() => held.length >= N, 'the feed on the surviving node')
  const feed = held.map((m) => m.json as FeedEnvelope)
  expect(feed.map((e) => e.seq)).toEqual(Array.from({ length: N }, (_, k) => k + 1))
  expect(feed.map((e) => (e.data as { id: string }).id)).toEqual(Array.from({ length: N }, (_, k) => `e${k + 1}`))
  for (const w of watchers) {
    expect(w.got, `${w.kind} viewer`).toEqual(feed)
    expect(w.anomalies, `${w.kind} viewer`).toEqual([])
    expect(w.connects, `${w.kind} viewer`).toEqual([w.urls[0], w.urls[1]])
    expect(w.reconnects[0], `${w.kind} viewer`).toMatchObject({ attempt: 1, lastUrl: w.urls[0], url: w.urls[1], refused: false })
    expect(w.viewer.url).toBe(w.urls[1])
  }
  expect(publisher.url).toBe(n1.tcpUrl)
  expect(moves[0]).toMatchObject({ attempt: 1, lastUrl: n0.tcpUrl, url: n1.tcpUrl, refused: false })
}, 60_000)
