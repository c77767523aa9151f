// Tests whether a persistent session (clean session off) keeps every filter it subscribed to, on the embedded store
// and on Redis: a second SUBSCRIBE that a wider filter of the session matches (`#` at QoS 1, then `x/y` at QoS 0), or
// an UNSUBSCRIBE of the wider one, loses no message, live or queued while the session is away (found by an attack run:
// on the embedded store the session received nothing more until a restart). And whether `+` and `#` never bring a
// `$` topic through a persistent session's queue [MQTT-4.7.2-1], while a filter naming it does.
import { describe, it, expect } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import type { BrokerOptions } from '../../broker/src/config.js'

type Node = Awaited<ReturnType<typeof brokerForTest>>

/** A persistent session `id` on `node` whose received topics (with payload) are collected, listening before CONNACK. */
async function session (node: Node, id: string): Promise<{ client: MqttClient, got: string[] }> {
  const got: string[] = []
  const client = mqtt.connect(node.tcpUrl, { clientId: id, clean: false, reconnectPeriod: 0 })
  onCleanup(async () => { await client.endAsync(true) })
  client.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`))
  await new Promise((resolve, reject) => { client.once('connect', resolve); client.once('error', reject) })
  return { client, got }
}

/** Reconnects session `id` and returns what it gets up to the live `marker/<id>` message published after CONNACK. */
async function queued (node: Node, pub: MqttClient, id: string): Promise<string[]> {
  const s = await session(node, id)
  // session-resume.ts: a persistent session's queue is sent before any live message.
  await pub.publishAsync(`marker/${id}`, 'end', { qos: 1 })
  await waitFor(() => s.got.includes(`marker/${id} end`), `the marker of ${id}`)
  await s.client.endAsync()
  return s.got.filter((m) => !m.startsWith('marker/'))
}

/** Publishes `topics` at QoS 1 with payload `payload`, then waits until a QoS 1 subscriber of the last has it (so aedes queued them all). */
async function publishAll (pub: MqttClient, seen: string[], topics: string[], payload: string): Promise<void> {
  for (const t of topics) await pub.publishAsync(t, payload, { qos: 1 })
  const last = `${topics[topics.length - 1]} ${payload}`
  await waitFor(() => seen.includes(last), `${last} delivered, so queued`)
}

async function keepsFilters (options: BrokerOptions): Promise<void> {
  const node = await brokerForTest(options)
  const pub = await connect(node.tcpUrl, { clientId: 'pub' })
  const seen: string[] = []
  pub.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`))
  await pub.subscribeAsync(['a/#', 'x/#', 'b/#'], { qos: 1 })

  const cases: Array<{ id: string, subs: Array<[string, 0 | 1 | 2]>, other: string }> = [
    { id: 'lower-qos', subs: [['#', 1], ['x/y', 0]], other: 'x/y' },
    { id: 'qos2-then-1', subs: [['#', 2], ['b/c', 1]], other: 'b/c' }
  ]
  for (const { id, subs, other } of cases) {
    const s = await session(node, id)
    for (const [filter, qos] of subs) expect(await s.client.subscribeAsync(filter, { qos })).toEqual([{ topic: filter, qos }])
    await publishAll(pub, seen, ['a/1', 'a/2', other], 'live')
    await waitFor(() => s.got.includes(`${other} live`), `${other} to ${id}`)
    expect(s.got.filter((m) => !m.startsWith('marker/')).sort()).toEqual(['a/1 live', 'a/2 live', `${other} live`])
    await s.client.endAsync()
    await publishAll(pub, seen, ['a/1', other], 'away')
    // (With `x/y` at QoS 0, aedes sent `x/y live` through it, at QoS 0, and left the copy queued for `#` at QoS 1 in
    // the queue: it comes again now, as QoS 1 allows.)
    expect((await queued(node, pub, id)).filter((m) => m !== 'x/y live').sort()).toEqual(['a/1 away', `${other} away`])
  }

  // SUBSCRIBE '#' and 'x/y' at QoS 1, UNSUBSCRIBE '#': 'x/y' still comes, live and queued; 'a/1' no more.
  const s = await session(node, 'unsub')
  await s.client.subscribeAsync('#', { qos: 1 })
  await s.client.subscribeAsync({ 'x/y': { qos: 1 }, 'marker/#': { qos: 1 } })
  await s.client.unsubscribeAsync('#')
  await publishAll(pub, seen, ['a/1', 'x/y'], 'live')
  await waitFor(() => s.got.includes('x/y live'), 'x/y after UNSUBSCRIBE #')
  expect(s.got).toEqual(['x/y live'])
  await s.client.endAsync()
  await publishAll(pub, seen, ['a/1', 'x/y'], 'away')
  expect(await queued(node, pub, 'unsub')).toEqual(['x/y away'])
  await node.close()
}

async function noDollarThroughWildcards (options: BrokerOptions): Promise<void> {
  const node = await brokerForTest(options)
  const pub = await connect(node.tcpUrl, { clientId: 'pub' })
  const seen: string[] = []
  pub.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`))
  await pub.subscribeAsync('plain/#', { qos: 1 })
  const wild = await session(node, 'wild')
  await wild.client.subscribeAsync({ '#': { qos: 1 }, '+/x': { qos: 1 } })
  const named = await session(node, 'named')
  await named.client.subscribeAsync({ '$TopicA/#': { qos: 1 }, 'marker/#': { qos: 1 } })
  await wild.client.endAsync()
  await named.client.endAsync()
  await publishAll(pub, seen, ['$TopicA/x', '$TopicA/y/z', 'plain/x'], 'away')
  expect(await queued(node, pub, 'wild')).toEqual(['plain/x away'])
  expect(await queued(node, pub, 'named')).toEqual(['$TopicA/x away', '$TopicA/y/z away'])
  await node.close()
}

describe('persistent session filters', () => {
  it('a narrower filter or an UNSUBSCRIBE loses no message, on the embedded store', async () => {
    await keepsFilters({})
  })

  it('a narrower filter or an UNSUBSCRIBE loses no message, on Redis', async () => {
    const redis = await redisForTest()
    await keepsFilters({ redis: redis.url, nodeId: 'filters-node' })
  })

  it('+ and # queue no $ topic, a filter naming it does, on both stores', async () => {
    await noDollarThroughWildcards({})
    const redis = await redisForTest()
    await noDollarThroughWildcards({ redis: redis.url, nodeId: 'dollar-node' })
  })
})
