// Tests whether a topic filter refused in a SUBSCRIBE (return code 0x80, MQTT 3.1.1 section 3.9.3) leaves no trace in
// a persistent session (clean session off), on the embedded store and on Redis: it is not stored, no message is
// queued for it while the session is online or away, and after a reconnect only the granted filter's messages come,
// once each. Raw packets for the SUBACK codes; the session's stored filters are read through aedes' persistence.
import { describe, it, expect } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { brokerForTest } from '../helpers/broker.js'
import { connect, rawMqtt, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { secureConfig, SAMPLE } from '../helpers/auth.js'
import type { BrokerOptions } from '../../broker/src/config.js'

type Publish = mqttPacket.IPublishPacket

/** The part of aedes persistence (aedes-persistence's interface) the test reads and writes. */
interface SessionStore {
  subscriptionsByClient: (client: { id: string }) => Promise<Array<{ topic: string }>>
  addSubscriptions: (client: { id: string }, subs: Array<{ topic: string, qos: number }>) => Promise<void>
}

/** A viewer (the sample API key) as a raw persistent session `tv-1` that acknowledges every QoS 1 message. */
async function viewer (port: number): Promise<{ got: () => Publish[], packets: mqttPacket.Packet[], send: (p: mqttPacket.Packet) => void, drop: () => void }> {
  const { socket, packets } = await rawMqtt(port)
  const acked = new Set<Publish>()
  socket.on('data', () => {
    for (const p of packets) {
      if (p.cmd === 'publish' && p.qos === 1 && !acked.has(p)) {
        acked.add(p)
        socket.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }))
      }
    }
  })
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'tv-1', keepalive: 60, username: 'apikey', password: Buffer.from(SAMPLE.apiKey) }))
  await waitFor(() => packets.some((p) => p.cmd === 'connack'), 'CONNACK')
  expect(packets[0]).toMatchObject({ cmd: 'connack', returnCode: 0 })
  return {
    got: () => packets.filter((p) => p.cmd === 'publish') as Publish[],
    packets,
    send: (p) => { socket.write(mqttPacket.generate(p)) },
    drop: () => { socket.destroy() }
  }
}

async function leavesNoTrace (options: BrokerOptions): Promise<void> {
  const node = await brokerForTest({ ...secureConfig(true), ...options })
  const persistence = (node.aedes as unknown as { persistence: SessionStore }).persistence
  const pub = await connect(node.tcpUrl, { ...SAMPLE.operator })
  const all: string[] = []
  pub.on('message', (_topic, payload) => all.push(payload.toString()))
  await pub.subscribeAsync('matches/#', { qos: 1 })
  const first = await viewer(node.tcpPort)
  // The viewer's rules allow matches/+/state, not matches/#.
  first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'matches/m1/state', qos: 1 }, { topic: 'matches/#', qos: 1 }] })
  await waitFor(() => first.packets.some((p) => p.cmd === 'suback'), 'SUBACK')
  expect(first.packets.find((p) => p.cmd === 'suback')).toMatchObject({ granted: [1, 128] })
  expect((await persistence.subscriptionsByClient({ id: 'tv-1' })).map((s) => s.topic)).toEqual(['matches/m1/state'])

  // Online: a message only the refused filter matches is neither delivered nor queued.
  await pub.publishAsync('matches/m2/state', 'online-m2', { qos: 1 })
  await pub.publishAsync('matches/m1/state', 'online-m1', { qos: 1 })
  await waitFor(() => first.got().length === 1, 'the online message')
  first.send({ cmd: 'pingreq' }) // answered after the PUBACK before it is handled
  await waitFor(() => first.packets.some((p) => p.cmd === 'pingresp'), 'PINGRESP')
  first.drop()
  await waitFor(() => Object.keys((node.aedes as unknown as { clients: object }).clients).length === 1, 'the viewer gone')

  // Away: only the granted filter's message is queued.
  await pub.publishAsync('matches/m2/state', 'away-m2', { qos: 1 })
  await pub.publishAsync('matches/m1/state', 'away-m1', { qos: 1 })
  // aedes queues a message for persistent sessions before it delivers it to anyone: once delivered, it is queued.
  // (A session coming back while a message is on its way may get it twice, queued and live: QoS 1 allows that.)
  await waitFor(() => all.includes('away-m1'), 'the message delivered, so queued')
  const back = await viewer(node.tcpPort)
  expect(back.packets[0]).toMatchObject({ cmd: 'connack', sessionPresent: true })
  await pub.publishAsync('matches/m1/state', 'marker', { qos: 1 })
  await waitFor(() => back.got().some((p) => p.payload.toString() === 'marker'), 'the marker')
  expect(first.got().map((p) => [p.topic, p.payload.toString()])).toEqual([['matches/m1/state', 'online-m1']])
  expect(back.got().map((p) => [p.topic, p.payload.toString()])).toEqual([['matches/m1/state', 'away-m1'], ['matches/m1/state', 'marker']])
  expect((await persistence.subscriptionsByClient({ id: 'tv-1' })).map((s) => s.topic)).toEqual(['matches/m1/state'])

  // A refused filter stored by an earlier version (or allowed by rules since narrowed) goes when the session is restored.
  back.drop()
  await waitFor(() => Object.keys((node.aedes as unknown as { clients: object }).clients).length === 1, 'the viewer gone')
  await persistence.addSubscriptions({ id: 'tv-1' }, [{ topic: 'matches/#', qos: 1 }])
  const third = await viewer(node.tcpPort)
  expect(third.packets[0]).toMatchObject({ cmd: 'connack', sessionPresent: true })
  expect((await persistence.subscriptionsByClient({ id: 'tv-1' })).map((s) => s.topic)).toEqual(['matches/m1/state'])
}

describe('a refused topic filter in a persistent session', () => {
  it('is neither stored nor delivered, on the embedded store', async () => {
    await leavesNoTrace({})
  })

  it('is neither stored nor delivered, on Redis', async () => {
    const redis = await redisForTest()
    await leavesNoTrace({ redis: redis.url, nodeId: 'refusing-node' })
  })

  it('and a queued message whose topic matches two granted filters comes once, on both stores', async () => {
    const redis = await redisForTest()
    for (const options of [{}, { redis: redis.url, nodeId: 'overlap-node' }]) {
      const node = await brokerForTest({ ...secureConfig(true), ...options })
      const pub = await connect(node.tcpUrl, { ...SAMPLE.operator })
      const all: string[] = []
      pub.on('message', (_topic, payload) => all.push(payload.toString()))
      await pub.subscribeAsync('matches/#', { qos: 1 })
      const first = await viewer(node.tcpPort)
      first.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'matches/m1/state', qos: 1 }, { topic: 'matches/+/state', qos: 1 }] })
      await waitFor(() => first.packets.some((p) => p.cmd === 'suback'), 'SUBACK')
      expect(first.packets.find((p) => p.cmd === 'suback')).toMatchObject({ granted: [1, 1] })
      first.drop()
      await waitFor(() => Object.keys((node.aedes as unknown as { clients: object }).clients).length === 1, 'the viewer gone')
      await pub.publishAsync('matches/m1/state', 'away', { qos: 1 })
      await waitFor(() => all.includes('away'), 'the message delivered, so queued')
      const back = await viewer(node.tcpPort)
      await pub.publishAsync('matches/m2/state', 'marker', { qos: 1 })
      await waitFor(() => back.got().some((p) => p.payload.toString() === 'marker'), 'the marker')
      expect(back.got().map((p) => p.payload.toString())).toEqual(['away', 'marker'])
      await node.close()
    }
  })
})
