// Tests the shared-encoding deliveries of broker/src/delivery.ts with raw MQTT packets over TCP: flags, packet
// identifiers, QoS downgrade and order, as MQTT 3.1.1 sections 3.3 and 4.3 require.
import { describe, it, expect } from 'vitest'
import { connect as tcpConnect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, waitFor } from '../helpers/mqtt.js'
import { encodePublish, matches } from '../../broker/src/delivery.js'

interface RawViewer { got: mqttPacket.IPublishPacket[], acks: number }

/** A raw TCP connection that has sent a clean-session CONNECT as `id`; closed when the test ends. */
function rawConnection (url: string, id: string): Socket {
  const u = new URL(url)
  const socket = tcpConnect({ host: u.hostname, port: Number(u.port) })
  onCleanup(() => { socket.destroy() })
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: id, keepalive: 60 }))
  return socket
}

/** A raw clean-session viewer that subscribes to `subscriptions` and acknowledges QoS 1 (PUBACK). */
async function rawViewer (url: string, id: string, subscriptions: Array<{ topic: string, qos: 0 | 1 }>): Promise<RawViewer> {
  const socket = rawConnection(url, id)
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const viewer: RawViewer = { got: [], acks: 0 }
  let subscribed = false
  parser.on('packet', (p) => {
    if (p.cmd === 'connack') socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions }))
    if (p.cmd === 'suback') subscribed = true
    if (p.cmd === 'publish') {
      viewer.got.push(p)
      if (p.qos === 1) {
        socket.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }))
        viewer.acks++
      }
    }
  })
  socket.on('data', (d) => parser.parse(d))
  await waitFor(() => subscribed, `${id} subscribed`)
  return viewer
}

describe('deliveries with one encoding per message', () => {
  it('gives each viewer its own packet identifiers, the right RETAIN flag and QoS, in publish order', async () => {
    const broker = await brokerForTest()
    const pub = await connect(broker.tcpUrl)
    await pub.publishAsync('news/r', 'kept', { qos: 1, retain: true })
    const a = await rawViewer(broker.tcpUrl, 'a', [{ topic: 'news/#', qos: 1 }])
    const b = await rawViewer(broker.tcpUrl, 'b', [{ topic: 'news/#', qos: 1 }])
    const low = await rawViewer(broker.tcpUrl, 'low', [{ topic: 'news/a', qos: 0 }])
    await waitFor(() => a.got.length === 1 && b.got.length === 1, 'the retained message')
    for (const v of [a, b]) {
      expect(v.got[0]).toMatchObject({ topic: 'news/r', qos: 1, retain: true }) // sent because of SUBSCRIBE [MQTT-3.3.1-8]
    }
    await pub.publishAsync('news/a', 'one', { qos: 1 })
    await pub.publishAsync('news/b', 'two', { qos: 0 })
    await pub.publishAsync('news/a', 'three', { qos: 1, retain: true })
    await waitFor(() => a.got.length === 4 && b.got.length === 4 && low.got.length === 2, 'three live messages')
    for (const v of [a, b]) {
      const live = v.got.slice(1)
      expect(live.map((p) => [p.topic, p.payload.toString(), p.qos, p.retain])).toEqual([
        ['news/a', 'one', 1, false], ['news/b', 'two', 0, false], ['news/a', 'three', 1, false] // RETAIN 0 on a live delivery [MQTT-3.3.1-9]
      ])
      const ids = v.got.filter((p) => p.qos === 1).map((p) => p.messageId)
      expect(new Set(ids).size).toBe(3) // distinct identifiers while unacknowledged [MQTT-2.3.1-2]
      for (const id of ids) expect(id).toBeGreaterThanOrEqual(1)
      expect(v.got[2].messageId).toBeUndefined() // no identifier at QoS 0 [MQTT-2.3.1-5]
    }
    // The exact subscription at QoS 0 gets QoS 1 messages at QoS 0 (MQTT 3.1.1 section 3.8.4).
    expect(low.got.map((p) => [p.payload.toString(), p.qos, p.messageId])).toEqual([['one', 0, undefined], ['three', 0, undefined]])
  })

  it('never passes on an incoming DUP flag [MQTT-3.3.1-3], at QoS 0 or 1', async () => {
    const broker = await brokerForTest()
    const q0 = await rawViewer(broker.tcpUrl, 'q0', [{ topic: 'dup/#', qos: 0 }])
    const q1 = await rawViewer(broker.tcpUrl, 'q1', [{ topic: 'dup/#', qos: 1 }])
    const socket = rawConnection(broker.tcpUrl, 'resender')
    socket.write(mqttPacket.generate({ cmd: 'publish', topic: 'dup/1', payload: Buffer.from('again'), qos: 1, messageId: 5, dup: true, retain: false }))
    await waitFor(() => q0.got.length === 1 && q1.got.length === 1, 'the resent message')
    expect([q0.got[0].dup, q0.got[0].qos]).toEqual([false, 0])
    expect([q1.got[0].dup, q1.got[0].qos]).toEqual([false, 1])
  })

  it('sends at the highest QoS granted by the matching subscriptions, wildcards included [MQTT-3.8.4-6]', async () => {
    const broker = await brokerForTest()
    const pub = await connect(broker.tcpUrl)
    await pub.publishAsync('r/kept', 'retained at 1', { qos: 1, retain: true })
    const low = await rawViewer(broker.tcpUrl, 'low', [{ topic: 'r/#', qos: 0 }])
    const mid = await rawViewer(broker.tcpUrl, 'mid', [{ topic: 'r/#', qos: 1 }])
    const both = await rawViewer(broker.tcpUrl, 'both', [{ topic: 'r/+', qos: 0 }, { topic: 'r/#', qos: 1 }])
    await waitFor(() => low.got.length === 1 && mid.got.length === 1 && both.got.length >= 1, 'the retained message')
    expect([low.got[0].qos, low.got[0].retain]).toEqual([0, true]) // retained QoS 1 to a QoS 0 wildcard subscription
    await pub.publishAsync('r/live', 'published at 2', { qos: 2 })
    await waitFor(() => mid.got.length === 2 && low.got.length === 2, 'the QoS 2 message')
    expect(mid.got[1].qos).toBe(1) // not 2: the subscription granted 1
    expect(low.got[1].qos).toBe(0)
    await waitFor(() => both.got.some((p) => p.topic === 'r/live' && p.qos === 1), 'the overlapping subscriptions at their highest QoS, 1')
  })

  it('sends a persistent session its retained messages at the QoS its wildcard subscription granted [MQTT-3.8.4-6]', async () => {
    const broker = await brokerForTest()
    const pub = await connect(broker.tcpUrl)
    await pub.publishAsync('k/one', 'retained at 1', { qos: 1, retain: true })
    await pub.publishAsync('k/two', 'retained at 2', { qos: 2, retain: true })
    for (const [filter, qos, expected] of [['k/#', 0, [0, 0]], ['k/+', 1, [1, 1]], ['+/+', 2, [1, 2]]] as const) {
      const viewer = await connect(broker.tcpUrl, { clientId: `keeper-${qos}`, clean: false })
      const got: Array<{ topic: string, qos: number, retain: boolean }> = []
      viewer.on('message', (topic, _payload, packet) => got.push({ topic, qos: packet.qos, retain: packet.retain }))
      await viewer.subscribeAsync(filter, { qos })
      await waitFor(() => got.length === 2, `the two retained messages (${filter} at QoS ${qos}): ${JSON.stringify(got)}`)
      expect(got.sort((a, b) => a.topic.localeCompare(b.topic)).map((m) => [m.topic, m.qos, m.retain])).toEqual([['k/one', expected[0], true], ['k/two', expected[1], true]])
    }
    await pub.publishAsync('k/one', 'live at 1', { qos: 1 })
    const live = await connect(broker.tcpUrl, { clientId: 'keeper-live', clean: false })
    const got: number[] = []
    live.on('message', (_t, _p, packet) => got.push(packet.qos))
    await live.subscribeAsync('k/#', { qos: 0 })
    await waitFor(() => got.length === 2, 'the retained messages')
    await pub.publishAsync('k/one', 'live at 1 again', { qos: 1 })
    await waitFor(() => got.length === 3, 'the live message')
    expect(got).toEqual([0, 0, 0])
  })

  it('matches topic filters as MQTT 3.1.1 section 4.7 does', () => {
    expect(matches('sport/#', 'sport')).toBe(true)
    expect(matches('sport/#', 'sport/tennis/player1')).toBe(true)
    expect(matches('sport/+', 'sport/tennis/player1')).toBe(false)
    expect(matches('sport/+/player1', 'sport/tennis/player1')).toBe(true)
    expect(matches('+/+', '/finance')).toBe(true)
    expect(matches('#', '$SYS/x')).toBe(false)
    expect(matches('+/x', '$SYS/x')).toBe(false)
    expect(matches('$SYS/#', '$SYS/x')).toBe(true)
    expect(matches('a/b', 'a/b/c')).toBe(false)
  })

  it('keeps one encoding per payload, topic and flags', () => {
    const payload = Buffer.from('same')
    const one = encodePublish({ cmd: 'publish', topic: 'x/1', payload }, 0)
    expect(encodePublish({ cmd: 'publish', topic: 'x/1', payload }, 0)).toBe(one)
    const other = encodePublish({ cmd: 'publish', topic: 'x/2', payload }, 0)
    const retained = encodePublish({ cmd: 'publish', topic: 'x/2', payload, retain: true }, 0)
    const qos1 = encodePublish({ cmd: 'publish', topic: 'x/2', payload }, 1)
    const parse = (b: Buffer): mqttPacket.IPublishPacket => {
      let out: mqttPacket.Packet | undefined
      const p = mqttPacket.parser({ protocolVersion: 4 })
      p.on('packet', (x) => { out = x })
      p.parse(b)
      return out as mqttPacket.IPublishPacket
    }
    expect(parse(other.bytes)).toMatchObject({ topic: 'x/2', retain: false, qos: 0 })
    expect(parse(retained.bytes)).toMatchObject({ topic: 'x/2', retain: true, qos: 0 })
    const copy = Buffer.from(qos1.bytes)
    copy.writeUInt16BE(4242, qos1.idOffset)
    expect(parse(copy)).toMatchObject({ topic: 'x/2', qos: 1, messageId: 4242 })
    expect(parse(copy).payload.toString()).toBe('same')
    const wide = encodePublish({ cmd: 'publish', topic: 'spiele/münchen/ß', payload: Buffer.alloc(200, 1) }, 1) // 2-byte Remaining Length, UTF-8 topic
    const wideCopy = Buffer.from(wide.bytes)
    wideCopy.writeUInt16BE(65535, wide.idOffset)
    expect(parse(wideCopy)).toMatchObject({ topic: 'spiele/münchen/ß', qos: 1, messageId: 65535 })
    expect(parse(wideCopy).payload.length).toBe(200)
  })

  it('sends a joining viewer its SUBACK, the feed history and the retained state in one write', async () => {
    const broker = await brokerForTest()
    const pub = await connect(broker.tcpUrl)
    for (let i = 1; i <= 3; i++) await pub.publishAsync('matches/9/events', `e${i}`, { qos: 1 })
    await pub.publishAsync('matches/9/state', '1-0', { qos: 1, retain: true })
    const socket = rawConnection(broker.tcpUrl, 'joiner')
    const chunks: Buffer[] = []
    socket.on('data', (d) => {
      chunks.push(d)
      if (chunks.length === 1) {
        socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 7, subscriptions: [{ topic: '$replay/all/matches/9/events', qos: 0 }, { topic: 'matches/9/state', qos: 0 }] }))
      }
    })
    const packets: mqttPacket.Packet[] = []
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', (p) => packets.push(p))
    await waitFor(() => chunks.length >= 2, 'the answer to SUBSCRIBE')
    await new Promise((resolve) => setTimeout(resolve, 200)) // a second write, if any, has arrived by now
    expect(chunks).toHaveLength(2) // CONNACK, then everything else
    parser.parse(chunks[1])
    const data = (p: mqttPacket.IPublishPacket): string => p.topic.startsWith('$replay/') ? (JSON.parse(p.payload.toString()) as { data: string }).data : p.payload.toString()
    expect(packets[0].cmd).toBe('suback')
    expect(packets.slice(1).map((p) => `${(p as mqttPacket.IPublishPacket).topic} ${data(p as mqttPacket.IPublishPacket)}`).sort()).toEqual([
      '$replay/all/matches/9/events e1', '$replay/all/matches/9/events e2', '$replay/all/matches/9/events e3', 'matches/9/state 1-0'
    ])
  })
})
