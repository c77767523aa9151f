// Tests that mqtt-packet's parser, given a plain BufferList by broker/src/parser.ts, still parses packets split
// across chunks and recovers after a malformed one; and that its writer, without the number cache, still encodes
// packet identifiers right; that it keeps only the protocol version and bridge mode of a CONNECT; and that it refuses
// strings that are not well-formed UTF-8 [MQTT-1.5.3-1].
import { describe, it, expect } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { leanParserApplied, connectNotKeptApplied, utf8CheckApplied } from '../../broker/src/parser.js'

describe('mqtt-packet parser without a stream', () => {
  it('uses a plain BufferList and parses packets split across chunks, and after an error', () => {
    expect(leanParserApplied).toBe(true)
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    expect((parser as unknown as { _list: { readable?: boolean } })._list.readable).toBeUndefined() // no stream
    const got: mqttPacket.Packet[] = []
    const errors: string[] = []
    parser.on('packet', (p) => got.push(p))
    parser.on('error', (e) => errors.push(e.message))
    const publish = mqttPacket.generate({ cmd: 'publish', topic: 'matches/1/events', payload: Buffer.from('goal'), qos: 1, messageId: 7, dup: false, retain: false })
    const bytes = Buffer.concat([publish, mqttPacket.generate({ cmd: 'pingreq' })])
    parser.parse(bytes.subarray(0, 3))
    parser.parse(bytes.subarray(3, 10))
    parser.parse(bytes.subarray(10))
    expect(got.map((p) => p.cmd)).toEqual(['publish', 'pingreq'])
    expect((got[0] as mqttPacket.IPublishPacket).topic).toBe('matches/1/events')
    expect((got[0] as mqttPacket.IPublishPacket).payload.toString()).toBe('goal')
    expect((got[0] as mqttPacket.IPublishPacket).messageId).toBe(7)
    parser.parse(Buffer.from([0x00, 0x00])) // packet type 0 is reserved
    expect(errors.length).toBe(1)
    parser.parse(mqttPacket.generate({ cmd: 'pingreq' }))
    expect(got.map((p) => p.cmd)).toEqual(['publish', 'pingreq', 'pingreq'])
  })

  it('encodes packet identifiers without the 65,536-entry number cache', () => {
    expect(mqttPacket.writeToStream.cacheNumbers).toBe(false)
    for (const messageId of [1, 255, 256, 0x1234, 65535]) {
      const bytes = mqttPacket.generate({ cmd: 'puback', messageId })
      expect([...bytes]).toEqual([0x40, 0x02, messageId >> 8, messageId & 0xff]) // MQTT 3.1.1 section 3.4
      const sub = mqttPacket.generate({ cmd: 'suback', messageId, granted: [0, 1] })
      expect([...sub]).toEqual([0x90, 0x04, messageId >> 8, messageId & 0xff, 0, 1]) // section 3.9
    }
  })

  it('keeps the protocol version of a CONNECT, not the packet with its password, and parses what follows', () => {
    expect(connectNotKeptApplied).toBe(true)
    const parser = mqttPacket.parser()
    const got: mqttPacket.Packet[] = []
    parser.on('packet', (p) => got.push(p))
    parser.parse(Buffer.concat([
      mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'svc', keepalive: 30, username: 'svc', password: Buffer.from('s3cret') }),
      mqttPacket.generate({ cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'matches/+/events', qos: 1 }] })
    ]))
    expect(got.map((p) => p.cmd)).toEqual(['connect', 'subscribe'])
    expect((got[0] as mqttPacket.IConnectPacket).password?.toString()).toBe('s3cret') // the packet itself is whole
    const settings = (parser as unknown as { settings: Record<string, unknown> }).settings
    expect(settings).toEqual({ protocolVersion: 4, bridgeMode: undefined })
    expect((got[1] as mqttPacket.ISubscribePacket).subscriptions).toEqual([{ topic: 'matches/+/events', qos: 1 }])
  })

  it('refuses a topic name that is not well-formed UTF-8, and takes U+FFFD and other characters written right', () => {
    expect(utf8CheckApplied).toBe(true)
    const publish = (topic: Buffer): Buffer => {
      const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, Buffer.from('p')])
      return Buffer.concat([Buffer.from([0x30, body.length]), body]) // QoS 0 PUBLISH (section 3.3)
    }
    for (const bad of [[0x6d, 0xc3, 0x28], [0x6d, 0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xff]]) {
      const parser = mqttPacket.parser()
      const errors: string[] = []
      const got: mqttPacket.Packet[] = []
      parser.on('error', (e) => errors.push(e.message))
      parser.on('packet', (p) => got.push(p))
      parser.parse(publish(Buffer.from(bad)))
      expect(errors[0]).toBe('a string in the packet is not well-formed UTF-8 [MQTT-1.5.3-1]')
      expect(got).toEqual([])
    }
    const parser = mqttPacket.parser()
    const got: mqttPacket.IPublishPacket[] = []
    parser.on('packet', (p) => got.push(p as mqttPacket.IPublishPacket))
    parser.parse(publish(Buffer.from('matches/\uFFFD/é/⚽', 'utf8')))
    expect(got.map((p) => p.topic)).toEqual(['matches/\uFFFD/é/⚽'])
  })
})
