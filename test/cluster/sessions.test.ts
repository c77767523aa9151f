/**
 * Persistent sessions (clean session off) keep their full behaviour in a cluster (MQTT 3.1.1 sections 3.1.2.4, 3.1.4):
 * a session's QoS 1 messages queued while it is away are delivered on another node; a client id connecting on another
 * node takes the session over; a clean-session connect with that id discards it.
 */
import { test, expect } from 'vitest'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest } from '../helpers/cluster.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

test('a persistent session gets, on another node, the QoS 1 messages published while it was away', async () => {
  const redis = await redisForTest()
  const nodes = await clusterForTest(redis.url, 3)
  const first = await connect(nodes[0].tcpUrl, { clientId: 'tv-p', clean: false })
  await first.subscribeAsync('alerts/#', { qos: 1 })
  await first.endAsync()
  const pub = await connect(nodes[1].wsUrl)
  for (let i = 1; i <= 3; i++) await pub.publishAsync(`alerts/${i}`, `a${i}`, { qos: 1 })
  await sleep(200)
  const back = await connect(nodes[2].tcpUrl, { clientId: 'tv-p', clean: false })
  const got = collect(back)
  await waitFor(() => got.length === 3, 'the 3 queued messages')
  expect(got.map((m) => m.topic)).toEqual(['alerts/1', 'alerts/2', 'alerts/3'])
  // Live too, from a publisher on yet another node.
  await pub.publishAsync('alerts/4', 'a4', { qos: 1 })
  await waitFor(() => got.length === 4, 'a live message')
  await back.endAsync()

  // A clean-session connect with the same id, on a third node, discards the session.
  const clean = await connect(nodes[1].tcpUrl, { clientId: 'tv-p', clean: true })
  await clean.endAsync()
  await pub.publishAsync('alerts/5', 'a5', { qos: 1 })
  await sleep(200)
  const again = await connect(nodes[0].tcpUrl, { clientId: 'tv-p', clean: false })
  const gotAgain = collect(again)
  await sleep(300)
  expect(gotAgain).toEqual([])
})

test('a persistent client id connecting on another node takes the session over: the first connection is closed', async () => {
  const redis = await redisForTest()
  const nodes = await clusterForTest(redis.url, 2)
  const a = await connect(nodes[0].tcpUrl, { clientId: 'set-top-7', clean: false })
  let closed = false
  a.on('close', () => { closed = true })
  await sleep(100)
  const b = await connect(nodes[1].wsUrl, { clientId: 'set-top-7', clean: false })
  await waitFor(() => closed, 'the first connection closed by its node')
  expect(b.connected).toBe(true)
  await waitFor(() => Object.keys((nodes[0].aedes as unknown as { clients: object }).clients).length === 0, 'node 0 holds no client')
})
