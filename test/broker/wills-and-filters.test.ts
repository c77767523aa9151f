// Tests whether topic names and filters keep to MQTT 3.1.1 section 4.7.1, and wills are published once: a will topic
// holding a wildcard is refused with CONNACK 5 (a will topic is a topic name, section 3.1.3.3), so nothing is ever
// published to `matches/+/events`; filters where `+` or `#` is not a whole level (`i+/x`, `i+/#`, `a+/+`, `i+`,
// `matches/+/+s`, some of which aedes lets through) get 0x80 while the good filters of the same SUBSCRIBE are granted;
// and a QoS 1 will on a feed topic reaches a plain subscriber once and a `$replay` viewer once.
import { describe, it, expect } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { brokerForTest } from '../helpers/broker.js'
import { connect, collect, rawMqtt, waitFor } from '../helpers/mqtt.js'

const gen = (p: object): Buffer => mqttPacket.generate(p as never)

describe('wills and topic filters', () => {
  it('refuses a will topic with a wildcard (CONNACK 5) and publishes nothing to it', async () => {
    const node = await brokerForTest()
    const viewer = await rawMqtt(node.tcpPort)
    viewer.socket.write(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'viewer', keepalive: 60 }))
    viewer.socket.write(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'matches/+/events', qos: 1 }, { topic: '$replay/all/matches/+/events', qos: 1 }] }))
    await waitFor(() => viewer.packets.some((p) => p.cmd === 'suback'), 'the SUBACK')
    for (const topic of ['matches/+/events', 'matches/#', 'a/b+']) {
      const w = await rawMqtt(node.tcpPort)
      let closed = false
      w.socket.on('close', () => { closed = true })
      w.socket.write(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'wild', keepalive: 60, will: { topic, payload: Buffer.from('{"type":"will"}'), qos: 1, retain: false } }))
      await waitFor(() => closed, `the connection with will topic ${topic} to close`)
      expect(w.packets).toMatchObject([{ cmd: 'connack', returnCode: 5 }])
    }
    // Nothing was published: a marker is the first PUBLISH the viewer gets.
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync('matches/m1/events', '{"type":"marker"}', { qos: 1 })
    await waitFor(() => viewer.packets.some((p) => p.cmd === 'publish'), 'the marker')
    expect(viewer.packets.filter((p) => p.cmd === 'publish').map((p) => (p as mqttPacket.IPublishPacket).topic)).toEqual(['matches/m1/events'])
  })

  it('answers 0x80 for filters whose + or # is not a whole level, and grants the rest of the SUBSCRIBE', async () => {
    const node = await brokerForTest()
    const c = await rawMqtt(node.tcpPort)
    c.socket.write(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'odd', keepalive: 60 }))
    const filters = ['i+/x', 'i+/#', 'a+/+', 'matches/+/+s', 'i+', 'ok/+/x', '#']
    c.socket.write(gen({ cmd: 'subscribe', messageId: 7, subscriptions: filters.map((topic) => ({ topic, qos: 1 })) }))
    await waitFor(() => c.packets.some((p) => p.cmd === 'suback'), 'the SUBACK')
    expect(c.packets.find((p) => p.cmd === 'suback')).toMatchObject({ messageId: 7, granted: [128, 128, 128, 128, 128, 1, 1] })
    // Only the granted filters deliver: `ix/x` matches no granted filter but `#`, once.
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync('ix/x', 'x', { qos: 1 })
    await waitFor(() => c.packets.some((p) => p.cmd === 'publish'), 'the message')
    await pub.publishAsync('end', 'x', { qos: 1 })
    await waitFor(() => c.packets.some((p) => p.cmd === 'publish' && p.topic === 'end'), 'the end marker')
    expect(c.packets.filter((p) => p.cmd === 'publish').map((p) => (p as mqttPacket.IPublishPacket).topic)).toEqual(['ix/x', 'end'])
  })

  it('delivers a QoS 1 will on a feed topic once to a plain subscriber and once to a $replay viewer', async () => {
    const node = await brokerForTest()
    const feed = 'matches/will/events'
    const w = await connect(node.tcpUrl, { clientId: 'willer', will: { topic: feed, payload: Buffer.from('{"type":"will"}'), qos: 1, retain: false } })
    const s = await connect(node.tcpUrl)
    const got = collect(s)
    await s.subscribeAsync(feed, { qos: 1 })
    await s.subscribeAsync(`$replay/all/${feed}`, { qos: 1 })
    w.stream.destroy() // lost: the will is due
    await waitFor(() => got.length >= 2, 'the will')
    // A later message of the feed comes after any copy of the will (both copies were published in one turn).
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync(feed, '{"type":"end"}', { qos: 1 })
    await waitFor(() => got.filter((m) => m.json?.data?.type === 'end').length === 2, 'the end marker, plain and $replay')
    const seen = (prefix: string): string[] => got.filter((m) => m.topic.startsWith(prefix)).map((m) => `${m.json.seq as number} ${m.json.data.type as string}`)
    expect(seen('matches/')).toEqual(['1 will', '2 end'])
    expect(seen('$replay/')).toEqual(['1 will', '2 end'])
  })
})
