// Tests the load generator's lean wire code (bench/lib/wire.ts): MQTT packets split out of any chunking, PUBLISH
// fields read as mqtt-packet wrote them, malformed lengths refused, and the WebSocket client's handshake and frames
// against a real `ws` server over a real socket.
import { describe, it, expect, afterEach } from 'vitest'
import { createHash } from 'node:crypto'
import { connect, type AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import mqttPacket from 'mqtt-packet'
import { PacketReader, PacketType, WebSocketClient, puback, readPublish } from '../../bench/lib/wire.js'

const packets = [
  mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false }),
  mqttPacket.generate({ cmd: 'suback', messageId: 1, granted: [0, 1] }),
  mqttPacket.generate({ cmd: 'publish', topic: 'matches/1/events', payload: Buffer.from('goal'), qos: 0, retain: true, dup: false }),
  mqttPacket.generate({ cmd: 'publish', topic: 'm', payload: Buffer.alloc(300, 7), qos: 1, messageId: 513, retain: false, dup: false }),
  mqttPacket.generate({ cmd: 'publish', topic: 'long', payload: Buffer.alloc(20_000, 9), qos: 1, messageId: 65535, retain: false, dup: false })
]
const stream = Buffer.concat(packets)

function read (chunks: Buffer[]): Array<{ type: number, flags: number, body: Buffer }> {
  const out: Array<{ type: number, flags: number, body: Buffer }> = []
  const reader = new PacketReader((type, flags, body) => out.push({ type, flags, body: Buffer.from(body) }))
  for (const c of chunks) reader.push(c)
  return out
}

describe('PacketReader', () => {
  it('splits packets whatever the chunk boundaries, remaining lengths of 1, 2 and 3 bytes included', () => {
    const whole = read([stream])
    expect(whole.map((p) => p.type)).toEqual([PacketType.CONNACK, PacketType.SUBACK, PacketType.PUBLISH, PacketType.PUBLISH, PacketType.PUBLISH])
    expect(whole[0].body).toEqual(Buffer.from([0, 0]))
    expect(whole[2].flags).toBe(1) // RETAIN
    expect(readPublish(whole[2].flags, whole[2].body)).toEqual({ qos: 0, messageId: 0, payload: Buffer.from('goal') })
    expect(readPublish(whole[3].flags, whole[3].body)).toEqual({ qos: 1, messageId: 513, payload: Buffer.alloc(300, 7) })
    expect(readPublish(whole[4].flags, whole[4].body)).toEqual({ qos: 1, messageId: 65535, payload: Buffer.alloc(20_000, 9) })
    const summary = (ps: typeof whole): string[] => ps.map((p) => `${p.type}/${p.flags}/${p.body.toString('hex')}`)
    for (let cut = 1; cut < stream.length; cut += 97) {
      expect(summary(read([stream.subarray(0, cut), stream.subarray(cut)]))).toEqual(summary(whole))
    }
    expect(summary(read(packets.slice(0, 4).flatMap((p) => [...p].map((b) => Buffer.from([b])))))).toEqual(summary(whole.slice(0, 4)))
  })

  it('refuses a remaining length of more than 4 bytes', () => {
    expect(() => read([Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])])).toThrow(/remaining length: more than 4 bytes/)
  })

  it('writes a PUBACK as mqtt-packet does', () => {
    expect(puback(513)).toEqual(mqttPacket.generate({ cmd: 'puback', messageId: 513 }))
  })
})

describe('WebSocketClient', () => {
  let server: WebSocketServer | undefined
  afterEach(async () => { await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined)) })

  it('opens a WebSocket on a ws server, sends masked binary frames and reads its frames of every length form', async () => {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => p.has('mqtt') ? 'mqtt' : false })
    await new Promise((resolve) => server?.once('listening', resolve))
    const port = (server.address() as AddressInfo).port
    const sizes = [5, 300, 70_000]
    let path = ''
    let pong: Buffer | undefined
    const serverGot = new Promise<Buffer>((resolve) => server?.once('connection', (ws, req) => {
      path = req.url ?? ''
      ws.once('pong', (data) => { pong = data })
      ws.once('message', (data) => resolve(data as Buffer))
      for (const n of sizes) ws.send(Buffer.alloc(n, n % 251))
      ws.ping(Buffer.from('hi'))
    }))
    const socket = connect(port, '127.0.0.1')
    const frames: Buffer[] = []
    let opened = 0
    const client = new WebSocketClient((b) => socket.write(b), () => { opened++ }, (d) => frames.push(Buffer.from(d)))
    socket.on('connect', () => socket.write(WebSocketClient.request(new URL(`ws://127.0.0.1:${port}/mqtt?x=1`))))
    socket.on('data', (d) => client.push(d))
    await expect.poll(() => frames.length, { timeout: 5000 }).toBe(3)
    expect(opened).toBe(1)
    expect(path).toBe('/mqtt?x=1')
    await expect.poll(() => pong?.toString(), { timeout: 5000 }).toBe('hi')
    expect(frames).toEqual(sizes.map((n) => Buffer.alloc(n, n % 251)))
    const payload = Buffer.alloc(70_000, 3)
    client.write(payload)
    expect(await serverGot).toEqual(payload)
    socket.destroy()
  })

  it('refuses a handshake answered without 101, or with the wrong Sec-WebSocket-Accept', () => {
    const client = new WebSocketClient(() => {}, () => {}, () => {})
    expect(() => client.push(Buffer.from('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'))).toThrow(/handshake refused: HTTP\/1.1 400 Bad Request/)
    const other = new WebSocketClient(() => {}, () => {}, () => {})
    expect(() => other.push(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: AAAA\r\n\r\n'))).toThrow(/wrong Sec-WebSocket-Accept/)
  })

  it('answers a PING with a masked PONG, and reports a close frame with its code', () => {
    const sent: Buffer[] = []
    const client = new WebSocketClient((b) => sent.push(b), () => {}, () => {})
    const key = /Sec-WebSocket-Key: (\S+)/.exec(WebSocketClient.request(new URL('ws://h/mqtt')).toString())?.[1] ?? ''
    const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64')
    client.push(Buffer.concat([Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`), Buffer.from([0x89, 2, 0x68, 0x69])]))
    expect(sent).toHaveLength(1)
    const [pongFrame] = sent
    expect(pongFrame[0]).toBe(0x8a)
    expect(pongFrame[1]).toBe(0x80 | 2)
    expect(Buffer.from([pongFrame[6] ^ pongFrame[2], pongFrame[7] ^ pongFrame[3]]).toString()).toBe('hi')
    expect(() => client.push(Buffer.from([0x88, 2, 0x03, 0xeb]))).toThrow(/closed by the server with code 1003/)
    expect(() => client.push(Buffer.from([0x82, 0x81, 0, 0, 0, 0, 1]))).toThrow(/masked frame from the server/)
  })
})
