// Tests the aedes patch (patches/aedes+1.2.0.patch, applied by `npm ci` through patch-package): it is applied; a
// connect skips the outgoing-queue pipeline only for a clean session whose id never had state; a SUBSCRIBE takes its
// retained messages as an array from the persistence, each matching message once, queued ahead of later messages;
// a client ends when its connection closes, however it closes ('end' and 'close' listeners instead of
// stream.finished()); the set of inbound QoS 2 messages awaiting PUBREL exists only once a client sends one; a
// SUBACK has a return code for every filter, a repeated one too; a QoS 2 retransmission in the same read as the
// original is not published again; a persistent session stores only the filters granted.
import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import mqttPacket from 'mqtt-packet'
import WebSocket from 'ws'
import type { Readable } from 'node:stream'
import { brokerForTest } from '../helpers/broker.js'
import { connect, collect, waitFor, rawMqtt } from '../helpers/mqtt.js'
import { RetainedCache } from '../../broker/src/store/retained.js'

const aedesFile = (name: string): string => readFileSync(new URL(`../../node_modules/aedes/lib/${name.endsWith('client.js') ? '' : 'handlers/'}${name}`, import.meta.url), 'utf8')

describe('aedes patch', () => {
  it('spares a clean viewer whose id never had state aedes\' outgoing-queue pipeline at connect, not an id with a session', async () => {
    expect(aedesFile('connect.js')).toContain('!persistence.hasOutgoing(client)')
    const node = await brokerForTest()
    const store = (node.aedes as unknown as { persistence: { hasOutgoing: (c: { id: string, clean: boolean }) => boolean } }).persistence
    expect(store.hasOutgoing({ id: 'viewer', clean: true })).toBe(false)
    const keeper = await connect(node.tcpUrl, { clientId: 'keeper', clean: false })
    await keeper.subscribeAsync('news/#', { qos: 1 })
    await keeper.endAsync()
    expect(store.hasOutgoing({ id: 'keeper', clean: false })).toBe(true)
    expect(store.hasOutgoing({ id: 'keeper', clean: true })).toBe(true) // its queue must be cleared at a clean connect
    const viewer = await connect(node.tcpUrl, { clientId: 'viewer' })
    const got = collect(viewer)
    await viewer.subscribeAsync('news/#')
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync('news/1', 'hello', { qos: 1 })
    await waitFor(() => got.length === 1, 'the message, on a connection that skipped the pipeline')
  })

  it('gives a SUBSCRIBE its retained messages from the persistence\'s array, each matching one once', async () => {
    expect(aedesFile('subscribe.js')).toContain('persistence.retainedFor(topics)')
    const node = await brokerForTest()
    const pub = await connect(node.tcpUrl)
    for (const t of ['s/a', 's/b', 's/c/d']) await pub.publishAsync(t, JSON.stringify(t), { qos: 1, retain: true })
    const viewer = await connect(node.tcpUrl)
    const got = collect(viewer)
    await viewer.subscribeAsync({ 's/+': { qos: 0 }, 's/#': { qos: 0 }, 's/a': { qos: 0 } })
    await waitFor(() => got.length >= 3, 'the retained messages')
    await new Promise((resolve) => setTimeout(resolve, 100)) // a duplicate, if any, has arrived by now
    expect(got.map((m) => `${m.topic} ${String(m.json)} ${String(m.retain)}`).sort()).toEqual(['s/a s/a true', 's/b s/b true', 's/c/d s/c/d true'])
  })

  it('queues a SUBSCRIBE\'s retained messages before a message published right after it, so the last copy is the newest', async () => {
    const node = await brokerForTest()
    const pub = await connect(node.tcpUrl)
    for (let i = 0; i < 300; i++) await pub.publishAsync(`y/${i}`, JSON.stringify(`old ${i}`), { qos: 0, retain: true })
    await pub.publishAsync('y/299', JSON.stringify('old 299'), { qos: 1, retain: true })
    for (let round = 0; round < 3; round++) {
      const viewer = await connect(node.tcpUrl, { clientId: `late-${round}` })
      const got = collect(viewer)
      await viewer.subscribeAsync('y/#') // resolves at SUBACK
      await pub.publishAsync('y/299', JSON.stringify(`new ${round}`), { qos: 0, retain: true })
      await waitFor(() => got.filter((m) => m.topic === 'y/299').length === 2 && got.length === 301, 'the retained messages and the new one')
      // Before the fix (stock aedes too): the new message, then the older retained copy, 10 rounds in 10.
      expect(got.filter((m) => m.topic === 'y/299').map((m) => m.json)).toEqual([round === 0 ? 'old 299' : `new ${round - 1}`, `new ${round}`])
      await viewer.endAsync()
    }
  })

  it('keeps the stream aedes reads without the patch equal to the array', async () => {
    const cache = new RetainedCache()
    for (const t of ['x/1', 'x/2', 'y']) cache.apply({ topic: t, payload: Buffer.from(t), qos: 1 })
    cache.apply({ topic: 'x/2', payload: Buffer.alloc(0), qos: 0 }) // deleted
    const read = async (s: Readable): Promise<string[]> => { const out: string[] = []; for await (const p of s) out.push((p as { topic: string }).topic); return out }
    expect(cache.list(['x/#', 'y', 'x/1']).map((p) => p.topic)).toEqual(['x/1', 'y'])
    expect(await read(cache.stream(['x/#', 'y', 'x/1']))).toEqual(['x/1', 'y'])
  })

  it('ends a client, with its will, when its connection is reset, half-closed or its WebSocket dropped', async () => {
    expect(aedesFile('client.js')).toContain("conn.on('close', close)")
    expect(aedesFile('client.js')).not.toContain('finished(this.conn')
    const node = await brokerForTest()
    const watcher = await connect(node.tcpUrl)
    const wills = collect(watcher)
    await watcher.subscribeAsync('gone/+')
    const hello = (id: string): Buffer => mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: id, keepalive: 60, will: { topic: `gone/${id}`, payload: Buffer.from(id), qos: 0, retain: false } })
    const clients = (): string[] => Object.keys((node.aedes as unknown as { clients: Record<string, unknown> }).clients)
    const tcp = async (id: string): Promise<net.Socket> => {
      const s = net.connect(node.tcpPort, '127.0.0.1')
      s.on('error', () => {})
      s.write(hello(id))
      await new Promise((resolve) => s.once('data', resolve)) // CONNACK
      return s
    }
    const reset = await tcp('reset')
    const halfClosed = await tcp('half-closed')
    const ws = new WebSocket(node.wsUrl, 'mqtt')
    ws.on('error', () => {})
    await new Promise((resolve) => ws.once('open', resolve))
    ws.send(hello('dropped'))
    await new Promise((resolve) => ws.once('message', resolve)) // CONNACK
    expect(clients()).toEqual(expect.arrayContaining(['reset', 'half-closed', 'dropped']))
    reset.resetAndDestroy() // RST: an error, then 'close'
    halfClosed.end() // FIN: 'end'
    ws.terminate() // the TCP connection under the WebSocket, without a close frame
    await waitFor(() => wills.length === 3, 'three wills')
    expect(wills.map((m) => m.topic).sort()).toEqual(['gone/dropped', 'gone/half-closed', 'gone/reset'])
    await waitFor(() => !clients().some((id) => ['reset', 'half-closed', 'dropped'].includes(id)), 'the three clients gone')
  })

  it('creates the inbound QoS 2 set at a client\'s first QoS 2 PUBLISH, and empties it at each PUBREL', async () => {
    const node = await brokerForTest()
    const inflight = (id: string): Set<number> | null => (node.aedes as unknown as { clients: Record<string, { _inboundInflight: Set<number> | null }> }).clients[id]._inboundInflight
    const viewer = await connect(node.tcpUrl, { clientId: 'v' })
    const got = collect(viewer)
    await viewer.subscribeAsync('q2/#', { qos: 2 })
    const pub = await connect(node.tcpUrl, { clientId: 'p' })
    expect(inflight('p')).toBeNull()
    await Promise.all([1, 2, 3].map(async (i) => await pub.publishAsync(`q2/${i}`, String(i), { qos: 2 }))) // each resolves at PUBCOMP
    expect(inflight('p')?.size).toBe(0)
    await waitFor(() => got.length === 3, 'three QoS 2 messages')
    expect(got.map((m) => m.topic).sort()).toEqual(['q2/1', 'q2/2', 'q2/3'])
    expect(inflight('v')).toBeNull() // a viewer that never sent QoS 2 has none
  })

  it('answers a SUBSCRIBE that repeats a filter with a return code for each filter, in order [MQTT-3.8.4-5]', async () => {
    const node = await brokerForTest()
    const { socket: s, packets } = await rawMqtt(node.tcpPort)
    s.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'repeats', keepalive: 60 }))
    s.write(mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 9,
      subscriptions: [{ topic: 'r/a', qos: 1 }, { topic: 'r/b', qos: 0 }, { topic: 'r/a', qos: 0 }, { topic: 'r/c', qos: 1 }, { topic: 'r/b', qos: 1 }]
    }))
    await waitFor(() => packets.some((p) => p.cmd === 'suback' || p.cmd === 'disconnect') || s.destroyed, 'the SUBACK')
    const suback = packets.find((p) => p.cmd === 'suback') as mqttPacket.ISubackPacket | undefined
    // r/a and r/b are each subscribed once, at the QoS of their last occurrence (MQTT-3.8.4-3). Stock aedes: [0, 1, 1].
    expect(suback?.messageId).toBe(9)
    expect(suback?.granted).toEqual([0, 1, 0, 1, 1])
    const client = (node.aedes as unknown as { clients: Record<string, { subscriptions: Record<string, { qos: number }> }> }).clients.repeats
    expect(Object.entries(client.subscriptions).map(([t, sub]) => `${t} ${sub.qos}`).sort()).toEqual(['r/a 0', 'r/b 1', 'r/c 1'])
  })

  it('publishes a QoS 2 message once when its retransmission (DUP) comes in the same write [MQTT-4.3.3-2]', async () => {
    const node = await brokerForTest()
    const viewer = await connect(node.tcpUrl)
    const got = collect(viewer)
    await viewer.subscribeAsync('twice/#', { qos: 2 })
    const { socket, packets } = await rawMqtt(node.tcpPort)
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'dup-sender', keepalive: 60 }))
    await waitFor(() => packets.some((p) => p.cmd === 'connack'), 'CONNACK')
    const publish = (dup: boolean): Buffer => mqttPacket.generate({ cmd: 'publish', topic: 'twice/a', payload: Buffer.from('once'), qos: 2, messageId: 42, dup, retain: false })
    socket.write(Buffer.concat([publish(false), publish(true), publish(true)]))
    await waitFor(() => packets.filter((p) => p.cmd === 'pubrec').length === 3, 'a PUBREC for each copy')
    socket.write(mqttPacket.generate({ cmd: 'pubrel', messageId: 42 }))
    await waitFor(() => packets.some((p) => p.cmd === 'pubcomp'), 'PUBCOMP')
    await waitFor(() => got.length >= 1, 'the message')
    await new Promise((resolve) => setTimeout(resolve, 200)) // a second copy, if any, has arrived by now
    expect(got.map((m) => m.topic)).toEqual(['twice/a']) // stock aedes: three
  })

  it('stores a persistent session\'s granted filters only, and forgets a stored one refused when the session is restored', async () => {
    // What this changes is shown on both stores by test/broker/refused-filter.test.ts; here: the parts are applied.
    expect(aedesFile('subscribe.js')).toContain('persistence.addSubscriptions(client, [sub])')
    expect(aedesFile('subscribe.js')).toMatch(/restoreTopicActions = runFall\(\[\s+authorize,\s+forgetRefused,/)
  })
})
