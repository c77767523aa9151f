// Tests whether a QoS 1 message sent to a persistent session (clean session off) and not acknowledged is sent again
// on reconnect with DUP=1 [MQTT-3.3.1-1], on a plain topic, a feed and its `$replay` form, on the embedded store and on
// Redis; and whether a message queued while the session was away, sent for the first time, has DUP=0 (MQTT 3.1.1
// section 3.3.1.1). Raw packets: the DUP flag is read from the wire.
import { describe, it, expect } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { brokerForTest } from '../helpers/broker.js'
import { connect, rawMqtt, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import type { BrokerOptions } from '../../broker/src/config.js'

type Publish = mqttPacket.IPublishPacket

const FEED = 'matches/dup/events'
const SUBSCRIPTIONS: Array<{ topic: string, qos: 1 }> = [
  { topic: 'news/a', qos: 1 },
  { topic: FEED, qos: 1 },
  { topic: `$replay/all/${FEED}`, qos: 1 }
]

/** What a packet shows of itself here: topic, payload, DUP. */
const seen = (p: Publish): [string, string, boolean] => {
  const payload = p.payload.toString()
  let data = payload
  try { data = JSON.stringify(JSON.parse(payload).data ?? JSON.parse(payload)) } catch {}
  return [p.topic, data, p.dup]
}

async function redeliversWithDup (options: BrokerOptions, acknowledged?: () => Promise<void>): Promise<void> {
  const node = await brokerForTest(options)
  const first = await rawMqtt(node.tcpPort)
  first.socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'keeper', keepalive: 60 }))
  first.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: SUBSCRIPTIONS }))
  await waitFor(() => first.packets.some((p) => p.cmd === 'suback'), 'SUBACK')
  expect(first.packets.find((p) => p.cmd === 'suback')).toMatchObject({ granted: [1, 1, 1] })

  const pub = await connect(node.tcpUrl)
  await pub.publishAsync('news/a', 'one', { qos: 1 })
  await pub.publishAsync(FEED, '{"n":1}', { qos: 1 })
  const live = (): Publish[] => first.packets.filter((p) => p.cmd === 'publish') as Publish[]
  await waitFor(() => live().length === 3, 'three live messages')
  expect(live().map(seen).sort()).toEqual([
    ['$replay/all/matches/dup/events', '{"n":1}', false],
    ['matches/dup/events', '{"n":1}', false],
    ['news/a', 'one', false]
  ])
  // No PUBACK: the session holds the three unacknowledged. The connection drops without DISCONNECT.
  first.socket.destroy()
  await waitFor(() => Object.keys((node.aedes as unknown as { clients: object }).clients).length === 1, 'the session gone from the node')
  const seenLive: string[] = []
  pub.on('message', (_topic, payload) => seenLive.push(payload.toString()))
  await pub.subscribeAsync('news/a', { qos: 1 })
  await pub.publishAsync('news/a', 'two', { qos: 1 }) // queued while away: its first delivery comes after the reconnect
  // aedes queues a message for persistent sessions before it delivers it to anyone: once delivered, it is queued (a
  // session coming back while a message is on its way may get it twice, queued and live, as QoS 1 allows).
  await waitFor(() => seenLive.includes('two'), 'the message delivered, so queued')

  const back = await rawMqtt(node.tcpPort)
  back.socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'keeper', keepalive: 60 }))
  const again = (): Publish[] => back.packets.filter((p) => p.cmd === 'publish') as Publish[]
  await waitFor(() => again().length >= 4, 'the four messages of the session')
  await pub.publishAsync('news/a', 'marker', { qos: 1 })
  await waitFor(() => again().some((p) => p.payload.toString() === 'marker'), 'the marker')
  expect(back.packets[0]).toMatchObject({ cmd: 'connack', returnCode: 0, sessionPresent: true })
  expect(again().map(seen).sort()).toEqual([
    ['$replay/all/matches/dup/events', '{"n":1}', true], // sent before, not acknowledged: DUP=1 [MQTT-3.3.1-1]
    ['matches/dup/events', '{"n":1}', true],
    ['news/a', 'marker', false],
    ['news/a', 'one', true],
    ['news/a', 'two', false] // a first delivery: DUP=0 (MQTT 3.1.1 section 3.3.1.1)
  ])
  for (const p of again()) expect(p.qos).toBe(1)
  for (const p of again()) back.socket.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }))
  back.socket.write(mqttPacket.generate({ cmd: 'pingreq' })) // answered once the PUBACKs before it are handled
  await waitFor(() => back.packets.some((p) => p.cmd === 'pingresp'), 'PINGRESP')
  await acknowledged?.()
}

describe('QoS 1 redelivery to a persistent session', () => {
  it('sets DUP on messages sent before and not acknowledged, on the embedded store', async () => {
    await redeliversWithDup({})
  })

  it('sets DUP on messages sent before and not acknowledged, on Redis', async () => {
    const redis = await redisForTest()
    await redeliversWithDup({ redis: redis.url, nodeId: 'dup-node' }, async () => {
      // The record of what was sent goes with the PUBACKs.
      expect(await redis.client().exists('tribune:outgoing-sent:keeper')).toBe(0)
    })
  })
})

