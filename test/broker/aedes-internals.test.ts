// Tests the contract broker/src/aedes-internals.ts relies on, against a running aedes: each accessor reads what it
// says (the client table, the message stream, a CONNECT's will before authentication, a client's subscriptions, where
// its connection came from, `connackSent`, the message counter, a client's next packet identifier, whether it sent
// DISCONNECT, a connected client's will), so an aedes upgrade that moves one fails here and not in production.
import { describe, it, expect } from 'vitest'
import type { Client } from 'aedes'
import { brokerForTest } from '../helpers/broker.js'
import { connect, waitFor } from '../helpers/mqtt.js'
import { asDeliveringClient, asFeedClient, connDetailsOf, connectWillOf, connectedClients, messageStream, sentDisconnect, setNextPacketIdentifier, subscriptionsOf, willOf } from '../../broker/src/aedes-internals.js'

describe('aedes internals', () => {
  it('reads the client table, the message stream, subscriptions, connection details and connackSent', async () => {
    const node = await brokerForTest()
    expect(connectedClients(null)).toEqual({})
    const mqtt = await connect(node.tcpUrl, { clientId: 'reader' })
    await mqtt.subscribeAsync('news/#', { qos: 1 })
    const client = connectedClients(node.aedes).reader as Client
    expect(client.id).toBe('reader')
    expect(Object.keys(subscriptionsOf(client))).toEqual(['news/#'])
    expect(subscriptionsOf(client)['news/#']?.qos).toBe(1)
    expect(connDetailsOf(client)).toMatchObject({ ipAddress: '127.0.0.1', isWebsocket: false, listener: 'mqtt:0' })
    expect(asFeedClient(client).connackSent).toBe(true)
    expect(typeof asDeliveringClient(client)._nextId).toBe('number')
    const seen: string[] = []
    await new Promise<void>((resolve) => messageStream(node.aedes).on('probe/#', (packet, cb) => { seen.push(packet.topic); cb() }, resolve))
    await mqtt.publishAsync('probe/1', 'x', { qos: 1 })
    await waitFor(() => seen.includes('probe/1'), 'the message on the stream')
    expect(sentDisconnect(client)).toBe(false)
    await mqtt.endAsync() // DISCONNECT
    await waitFor(() => client.closed, 'the client closed')
    expect(sentDisconnect(client)).toBe(true)
  })

  it('reads a CONNECT\'s will while it is being authenticated', async () => {
    const node = await brokerForTest()
    const wills: unknown[] = []
    const authenticate = node.aedes.authenticate
    node.aedes.authenticate = (client, username, password, cb) => {
      wills.push(connectWillOf(client))
      authenticate(client, username, password, cb)
    }
    await connect(node.tcpUrl, { clientId: 'with-will', will: { topic: 'gone/1', payload: Buffer.from('bye'), qos: 1, retain: true } })
    await connect(node.tcpUrl, { clientId: 'without' })
    expect(wills).toMatchObject([{ topic: 'gone/1', qos: 1, retain: true }, null])
    expect((wills[0] as { payload: Buffer }).payload.toString()).toBe('bye')
  })

  it('reads a connected client\'s will, the object aedes hands authorizePublish when it publishes it at close', async () => {
    const node = await brokerForTest()
    const c = await connect(node.tcpUrl, { clientId: 'willing', will: { topic: 'gone/2', payload: Buffer.from('bye'), qos: 1, retain: false } })
    const client = connectedClients(node.aedes).willing as Client
    const will = willOf(client)
    expect(will).toMatchObject({ topic: 'gone/2', qos: 1 })
    const asked: Array<{ packet: unknown, will: unknown }> = []
    const authorizePublish = node.aedes.authorizePublish
    node.aedes.authorizePublish = (who, packet, cb) => {
      asked.push({ packet, will: who === null ? null : willOf(who) })
      authorizePublish(who, packet, cb)
    }
    c.stream.destroy()
    await waitFor(() => asked.length === 1, 'the will to be authorized')
    expect(asked[0].packet).toBe(will)
    expect(asked[0].will).toBe(will)
    expect(willOf(client)).toBeNull() // cleared once published
  })

  it('starts the message counter at the start time in microseconds', async () => {
    const before = Date.now() * 1000
    const node = await brokerForTest()
    const counters: number[] = []
    await new Promise<void>((resolve) => messageStream(node.aedes).on('probe/#', (packet, cb) => { counters.push(Number((packet as { brokerCounter?: number }).brokerCounter)); cb() }, resolve))
    const mqtt = await connect(node.tcpUrl)
    await mqtt.publishAsync('probe/1', 'x', { qos: 1 })
    await waitFor(() => counters.length === 1, 'the message on the stream')
    expect(counters[0]).toBeGreaterThan(before)
    expect(counters[0]).toBeLessThan(Date.now() * 1000)
  })

  it('sets a client\'s next packet identifier', async () => {
    const node = await brokerForTest()
    const mqtt = await connect(node.tcpUrl, { clientId: 'numbered' })
    await mqtt.subscribeAsync('probe/#', { qos: 1 })
    const ids: number[] = []
    mqtt.on('message', (_topic, _payload, packet) => ids.push(packet.messageId ?? 0))
    setNextPacketIdentifier(connectedClients(node.aedes).numbered as Client, 4242)
    await mqtt.publishAsync('probe/1', 'x', { qos: 1 })
    await mqtt.publishAsync('probe/2', 'y', { qos: 1 })
    await waitFor(() => ids.length === 2, 'the messages')
    expect(ids).toEqual([4242, 4243])
  })
})
