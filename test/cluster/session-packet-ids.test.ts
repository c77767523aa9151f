/**
 * Tests whether the packet identifiers a persistent session (clean session off) gets when it comes back are its own,
 * on Redis: aedes-persistence-redis keeps one copy of a message for every session it is queued for, and that copy held
 * the packet identifier of the last session it was sent to, which another session then got on redelivery. A message
 * sent before and not acknowledged must go again with the identifier it had [MQTT-4.4.0-1], and no two messages in
 * flight to a session may share one (MQTT 3.1.1 section 2.3.1). Raw packets; the sessions' first identifiers are set
 * (aedes starts each connection at a random one) so that they meet. And where new identifiers start (pure logic).
 */
import { test, expect } from 'vitest'
import mqttPacket from 'mqtt-packet'
import type { Client } from 'aedes'
import { brokerForTest } from '../helpers/broker.js'
import { connect, rawMqtt, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { connectedClients, setNextPacketIdentifier } from '../../broker/src/aedes-internals.js'
import { nextFreeIdentifier } from '../../broker/src/store/redelivery.js'

type Publish = mqttPacket.IPublishPacket

test('a session back on Redis gets its own packet identifiers: the ones it had for messages sent before, and new ones clear of them', async () => {
  const redis = await redisForTest()
  const node = await brokerForTest({ redis: redis.url, nodeId: 'ids-node' })
  const pub = await connect(node.tcpUrl)
  const clientOf = (id: string): Client => connectedClients(node.aedes)[id] as Client
  const session = async (clientId: string): Promise<{ publishes: () => Publish[], drop: () => Promise<void> }> => {
    const raw = await rawMqtt(node.tcpPort)
    raw.socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId, keepalive: 60 }))
    await waitFor(() => raw.packets.some((p) => p.cmd === 'connack'), 'CONNACK')
    return {
      publishes: () => raw.packets.filter((p) => p.cmd === 'publish') as Publish[],
      drop: async () => { // no PUBACK, no DISCONNECT: what was sent stays in flight
        raw.socket.destroy()
        await waitFor(() => clientOf(clientId) === undefined, `${clientId} gone from the node`)
      }
    }
  }
  const subscribe = async (clientId: string, topics: string[]): Promise<void> => {
    const raw = await rawMqtt(node.tcpPort)
    raw.socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId, keepalive: 60 }))
    raw.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: topics.map((topic) => ({ topic, qos: 1 as const })) }))
    await waitFor(() => raw.packets.some((p) => p.cmd === 'suback'), 'SUBACK')
    raw.socket.write(mqttPacket.generate({ cmd: 'disconnect' }))
    await waitFor(() => clientOf(clientId) === undefined, `${clientId} gone from the node`)
  }
  await subscribe('tv-1', ['alerts/#', 'solo/#'])
  await subscribe('tv-2', ['alerts/#'])

  const tv1 = await session('tv-1')
  const tv2 = await session('tv-2')
  await pub.publishAsync('solo/w', 'W', { qos: 1 })
  await waitFor(() => tv1.publishes().length === 1, 'W')
  const w = tv1.publishes()[0].messageId as number
  // tv-2's next identifier is the one tv-1 has W in flight with; tv-1's next one follows W's.
  setNextPacketIdentifier(clientOf('tv-2'), w)
  await pub.publishAsync('alerts/x', 'X', { qos: 1 })
  await waitFor(() => tv1.publishes().length === 2 && tv2.publishes().length === 1, 'X to both')
  const x1 = tv1.publishes()[1].messageId as number
  const x2 = tv2.publishes()[0].messageId as number
  expect(x2).toBe(w)
  expect(x1).not.toBe(w)
  await tv1.drop()
  await tv2.drop()
  await pub.publishAsync('solo/z', 'Z', { qos: 1 }) // queued while tv-1 is away: a first delivery when it is back

  // tv-1 comes back with a connection whose first identifier is W's (aedes picks it at random).
  const provoke = (client: Client): void => { if (client.id === 'tv-1') setNextPacketIdentifier(client, w) }
  node.aedes.on('client', provoke)
  const back1 = await session('tv-1')
  node.aedes.off('client', provoke)
  await waitFor(() => back1.publishes().length === 3, 'W, X and Z again')
  const got1 = back1.publishes().map((p) => ({ payload: p.payload.toString(), id: p.messageId, dup: p.dup }))
  expect(got1.slice(0, 2)).toEqual([{ payload: 'W', id: w, dup: true }, { payload: 'X', id: x1, dup: true }])
  expect(got1[2]).toMatchObject({ payload: 'Z', dup: false })
  expect([w, x1]).not.toContain(got1[2].id)

  const back2 = await session('tv-2')
  await waitFor(() => back2.publishes().length === 1, 'X again')
  expect(back2.publishes().map((p) => ({ payload: p.payload.toString(), id: p.messageId, dup: p.dup }))).toEqual([{ payload: 'X', id: x2, dup: true }])
})

test('new packet identifiers start after the longest run of free ones', () => {
  expect(nextFreeIdentifier([])).toBeUndefined()
  expect(nextFreeIdentifier([5])).toBe(6)
  expect(nextFreeIdentifier([65535])).toBe(1)
  expect(nextFreeIdentifier([100, 101, 102])).toBe(103)
  expect(nextFreeIdentifier([65534, 65535, 1, 2])).toBe(3) // an earlier connection's run went round
  expect(nextFreeIdentifier([1, 65535])).toBe(2)
  expect(nextFreeIdentifier([10, 30000, 30001])).toBe(30002)
})
