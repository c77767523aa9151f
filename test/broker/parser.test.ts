// Tests that mqtt-packet's parser, given a plain BufferList by broker/src/parser.ts, still parses packets split
// across chunks and recovers after a malformed one.
import { describe, it, expect } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { leanParserApplied } from '../../broker/src/parser.js'

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
})
