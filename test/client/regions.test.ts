/**
 * The Viewer with several regions, against real brokers: a region whose only node takes connections and never answers
 * (the attempt under way would wait connectTimeoutMs) is left at regionTimeoutMs, the attempt abandoned; a node lost
 * in a region whose other node works is a move within the region, not to the next one; and a feed watched across the
 * move delivers each event once, by id. (Region loss with real processes: test/cluster/regions.test.ts.)
 */
import net from 'node:net'
import { expect, it } from 'vitest'
import { Viewer, type FeedEnvelope, type ReconnectInfo, type RegionChange } from '../../client/src/index.js'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { clusterForTest } from '../helpers/cluster.js'
import { connect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'

const keepOrder = (): number => 0.999

/** A TCP server that takes connections and never answers (a node hung, or a black hole behind a load balancer). */
async function silentServer (): Promise<string> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onCleanup(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`
}

it('leaves a region that never answers at regionTimeoutMs, abandoning the attempt under way, and resumes the feed by id', async () => {
  const silent = await silentServer()
  const b = await brokerForTest()
  const pub = await connect(b.tcpUrl)
  for (let i = 1; i <= 3; i++) await pub.publishAsync('matches/r/events', JSON.stringify({ id: `e${i}` }), { qos: 1 })
  const started = Date.now()
  const viewer = Viewer.connect({ regions: [[silent], [b.tcpUrl]] }, { regionTimeoutMs: 500, connectTimeoutMs: 10_000, random: keepOrder })
  onCleanup(async () => { await viewer.close() })
  const regions: RegionChange[] = []
  const retries: ReconnectInfo[] = []
  const got: FeedEnvelope[] = []
  viewer.on('region', (change) => regions.push(change))
  viewer.on('reconnecting', (info) => retries.push(info))
  viewer.on('error', () => {})
  viewer.watchFeed('matches/r/events', { from: 'all' }, (env) => got.push(env))
  expect([viewer.region, viewer.urls, viewer.regions]).toEqual([0, [silent], [[silent], [b.tcpUrl]]])
  await viewer.waitConnected(5000)
  const tookMs = Date.now() - started
  expect(tookMs).toBeGreaterThanOrEqual(500)
  expect(tookMs).toBeLessThan(2500) // not the 10 s connect timeout
  expect(regions).toEqual([{ index: 1, previous: 0, urls: [b.tcpUrl], downMs: expect.any(Number) as number }])
  expect(regions[0].downMs).toBeGreaterThanOrEqual(500)
  expect(retries).toEqual([expect.objectContaining({ attempt: 1, url: b.tcpUrl, lastUrl: silent, refused: false, region: 1 })])
  expect([viewer.region, viewer.url, viewer.urls]).toEqual([1, b.tcpUrl, [b.tcpUrl]])
  await waitFor(() => got.length === 3, 'the feed in region 1')
  expect(got.map((e) => (e.data as { id: string }).id)).toEqual(['e1', 'e2', 'e3'])
})

it('a node lost in a region whose other node works: the viewer moves within the region, not to the next one', async () => {
  const redis = await redisForTest()
  const [a0, a1] = await clusterForTest(redis.url, 2)
  const b = await brokerForTest()
  const viewer = Viewer.connect({ regions: [[a0.wsUrl, a1.wsUrl], [b.wsUrl]] }, { regionTimeoutMs: 3000, reconnect: { baseMs: 50, capMs: 200 }, random: keepOrder })
  onCleanup(async () => { await viewer.close() })
  const regions: RegionChange[] = []
  const connects: string[] = []
  const got: number[] = []
  viewer.on('region', (change) => regions.push(change))
  viewer.on('connect', (url) => connects.push(url))
  viewer.watchFeed('matches/n/events', { from: 'all' }, (env) => got.push(env.seq))
  await viewer.waitConnected(5000)
  const pub = await connect(a1.tcpUrl)
  for (let i = 1; i <= 3; i++) await pub.publishAsync('matches/n/events', JSON.stringify({ id: `e${i}` }), { qos: 1 })
  await waitFor(() => got.length === 3, 'three events on node a0')
  await a0.close()
  for (let i = 4; i <= 6; i++) await pub.publishAsync('matches/n/events', JSON.stringify({ id: `e${i}` }), { qos: 1 })
  await waitFor(() => got.length === 6, 'six events, resumed on node a1 by seq')
  expect(got).toEqual([1, 2, 3, 4, 5, 6])
  expect(connects).toEqual([a0.wsUrl, a1.wsUrl])
  expect(regions).toEqual([])
  expect(viewer.region).toBe(0)
})

it('refuses bad region options, naming them', () => {
  expect(() => Viewer.connect({ regions: [['ws://a/mqtt'], ['ws://a/mqtt']] })).toThrow(/listed in region 0 and region 1/)
  expect(() => Viewer.connect({ regions: [['ws://a/mqtt'], ['ws://b/mqtt']] }, { regionTimeoutMs: 0 })).toThrow(/regionTimeoutMs must be a finite number > 0/)
  expect(() => Viewer.connect({ regions: [['ws://a/mqtt'], ['ws://b/mqtt']] }, { regionReplay: 'last-0' })).toThrow(/regionReplay must be all or last-<n> with n >= 1/)
  expect(() => Viewer.connect({ regions: [['ws://a/mqtt'], ['ws://b/mqtt']] }, { regionReplay: 'first-3' as 'all' })).toThrow(/invalid start "first-3"/)
  expect(() => Viewer.connect({ regions: [['ws://a/mqtt'], ['ws://b/mqtt']] }, { regionDeliveredIds: 0 })).toThrow(/regionDeliveredIds must be an integer >= 1/)
  expect(() => Viewer.connect({ regions: [] })).toThrow(/no region given/)
})
