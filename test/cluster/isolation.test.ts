/**
 * The prefix keeps Tribune to itself on a shared Redis: two clusters with different prefixes never see each other's
 * messages, feeds or retained states; every key a cluster writes starts with its prefix; and a client subscribing to
 * `#` cannot make a node hear every Redis channel, nor can another application's PUBLISH crash a node.
 */
import { test, expect } from 'vitest'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { brokerForTest } from '../helpers/broker.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

test('two clusters with different prefixes on one Redis stay apart, and every key carries its prefix', async () => {
  const redis = await redisForTest()
  const a = await brokerForTest({ redis: redis.url, redisPrefix: 'alpha:', nodeId: 'a0' })
  const b = await brokerForTest({ redis: redis.url, redisPrefix: 'beta:', nodeId: 'b0' })
  const onB = await connect(b.tcpUrl)
  const gotB = collect(onB)
  await onB.subscribeAsync(['#', '$replay/all/matches/1/events'])
  const pubA = await connect(a.tcpUrl, { clientId: 'pub-a', clean: false })
  await pubA.subscribeAsync('x/y', { qos: 1 }) // a persistent session: session keys in Redis
  await pubA.publishAsync('matches/1/state', '{"score":"1-0"}', { qos: 1, retain: true })
  for (let i = 0; i < 3; i++) await pubA.publishAsync('matches/1/events', `{"id":"a${i}"}`, { qos: 1 })
  const pubB = await connect(b.tcpUrl)
  await pubB.publishAsync('matches/1/events', '{"id":"b0"}', { qos: 1 })
  await waitFor(() => gotB.length >= 2, 'b\'s own message')
  await sleep(300)
  expect(gotB.map((m) => [m.topic, m.json.seq ?? null, m.json.data?.id ?? null])).toEqual([
    ['matches/1/events', 1, 'b0'], ['$replay/all/matches/1/events', 1, 'b0']
  ])
  const late = await connect(b.tcpUrl)
  const lateGot = collect(late)
  await late.subscribeAsync('matches/+/state')
  await sleep(200)
  expect(lateGot).toEqual([])
  const keys = await redis.client().keys('*')
  expect(keys.length).toBeGreaterThan(3)
  for (const key of keys) expect(key, key).toMatch(/^(alpha|beta):/)
})

test('a client subscribed to # cannot make a node hear foreign channels, and foreign PUBLISHes under the prefix do not crash it', async () => {
  const redis = await redisForTest()
  const node = await brokerForTest({ redis: redis.url, nodeId: 'n0' })
  const viewer = await connect(node.wsUrl)
  const got = collect(viewer)
  await viewer.subscribeAsync(['#', '+/+/#'])
  const other = redis.client()
  // Another application on the same Redis: plain channels, and garbage under Tribune's own prefix.
  for (const channel of ['news', 'matches/1/events', '*', 'tribune:/matches/1/events', 'tribune:/x', 'tribune:retained']) {
    await other.publish(channel, Buffer.from([0xc1, 0xff, 0x00, 0x13]))
    await other.publish(channel, Buffer.from('{"topic":"matches/1/events"}'))
  }
  const patterns = await other.call('PUBSUB', 'NUMPAT') as number
  expect(patterns).toBeGreaterThan(0)
  const clients = (await other.call('CLIENT', 'LIST') as string).split('\n').filter((l) => l.includes('psub=') && !l.includes('psub=0'))
  expect(clients.length).toBeGreaterThan(0)
  const pub = await connect(node.tcpUrl)
  await pub.publishAsync('matches/1/events', '{"id":"real"}', { qos: 1 })
  await waitFor(() => got.length >= 1, 'the real message')
  await sleep(200)
  expect(got.map((m) => m.json?.data?.id)).toEqual(['real'])
  const health = await fetch(`http://127.0.0.1:${node.wsPort}/healthz`)
  expect(health.status).toBe(200)
  expect(node.stats().redis?.foreignMessages).toBeGreaterThan(0) // counted (tribune_redis_foreign_messages_total)
})
