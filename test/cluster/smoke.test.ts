import { test, expect } from 'vitest'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest } from '../helpers/cluster.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'

test('a feed and a retained state published on node 0 reach a viewer on node 1', async () => {
  const redis = await redisForTest()
  const [a, b] = await clusterForTest(redis.url, 2)
  const pub = await connect(a.tcpUrl, { clientId: 'pub', clean: false })
  await pub.publishAsync('matches/1/state', JSON.stringify({ score: '0-0' }), { qos: 1, retain: true })
  for (let i = 1; i <= 3; i++) await pub.publishAsync('matches/1/events', JSON.stringify({ id: `e${i}`, n: i }), { qos: 1 })
  await new Promise((r) => setTimeout(r, 100))
  const viewer = await connect(b.wsUrl)
  const got = collect(viewer)
  await viewer.subscribeAsync(['$replay/all/matches/1/events', 'matches/1/state'])
  await waitFor(() => got.length >= 4, 'history and state')
  for (let i = 4; i <= 6; i++) await pub.publishAsync('matches/1/events', JSON.stringify({ id: `e${i}`, n: i }), { qos: 1 })
  await pub.publishAsync('matches/1/state', JSON.stringify({ score: '1-0' }), { qos: 1, retain: true })
  await waitFor(() => got.length >= 8, 'live')
  const seqs = got.filter((m) => m.topic.startsWith('$replay')).map((m) => m.json.seq)
  expect(seqs).toEqual([1, 2, 3, 4, 5, 6])
  expect(got.filter((m) => m.topic === 'matches/1/state').map((m) => m.json.score)).toEqual(['0-0', '1-0'])
  const late = await connect(b.tcpUrl)
  const got2 = collect(late)
  await late.subscribeAsync('matches/1/state')
  await waitFor(() => got2.length >= 1, 'retained on b')
  expect(got2[0].json.score).toBe('1-0')
  expect(got2[0].retain).toBe(true)
})
