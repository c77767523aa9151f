/**
 * The load generator's side of the wire, kept lean so that it costs less than the broker it measures: a viewer
 * needs only to split what it receives into MQTT packets and to read a PUBLISH's QoS, packet identifier and payload.
 * mqtt-packet's parser builds an object per packet through an EventEmitter and a BufferList, and the `ws` client
 * opens each WebSocket through Node's HTTP client; in a join storm those were about half of the generator's CPU.
 * Packets the viewer sends (CONNECT, SUBSCRIBE) are still made by mqtt-packet.
 */
import { createHash, randomBytes } from 'node:crypto'

/** MQTT control packet types (MQTT 3.1.1 section 2.2.1, table 2.1). */
export const PacketType = { CONNACK: 2, PUBLISH: 3, PUBACK: 4, SUBACK: 9, PINGRESP: 13 } as const

/**
 * Splits a byte stream into MQTT 3.1.1 control packets (section 2.2: a fixed header byte, the remaining length in
 * 1-4 bytes of 7 bits each, section 2.2.3), whatever the chunk boundaries. `onPacket` gets the packet type (bits 7-4),
 * the flags (bits 3-0) and the variable header plus payload, a view into the chunk (copy it to keep it).
 * Throws an Error naming the fault when a remaining length takes more than 4 bytes.
 */
export class PacketReader {
  #pending: Buffer | undefined
  readonly #onPacket: (type: number, flags: number, body: Buffer) => void

  constructor (onPacket: (type: number, flags: number, body: Buffer) => void) {
    this.#onPacket = onPacket
  }

  push (chunk: Buffer): void {
    const buf = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk])
    this.#pending = undefined
    let at = 0
    while (at < buf.length) {
      let length = 0
      let multiplier = 1
      let i = at + 1
      for (;;) {
        if (i >= buf.length) { this.#pending = buf.subarray(at); return }
        const byte = buf[i++]
        length += (byte & 0x7f) * multiplier
        if ((byte & 0x80) === 0) break
        multiplier *= 128
        if (multiplier > 128 ** 3) throw new Error('malformed remaining length: more than 4 bytes (MQTT 3.1.1 section 2.2.3)')
      }
      if (i + length > buf.length) { this.#pending = buf.subarray(at); return }
      const first = buf[at]
      this.#onPacket(first >> 4, first & 0x0f, buf.subarray(i, i + length))
      at = i + length
    }
  }
}

/** A PUBLISH's QoS, packet identifier (0 at QoS 0) and payload, from its flags and body (MQTT 3.1.1 section 3.3). */
export function readPublish (flags: number, body: Buffer): { qos: number, messageId: number, payload: Buffer } {
  const qos = (flags >> 1) & 3
  const topicEnd = 2 + body.readUInt16BE(0)
  const messageId = qos > 0 ? body.readUInt16BE(topicEnd) : 0
  return { qos, messageId, payload: body.subarray(qos > 0 ? topicEnd + 2 : topicEnd) }
}

/** A PUBACK for `messageId` (MQTT 3.1.1 section 3.4). */
export function puback (messageId: number): Buffer {
  return Buffer.from([0x40, 2, messageId >> 8, messageId & 0xff])
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/**
 * The client's side of a WebSocket (RFC 6455) carrying MQTT (subprotocol `mqtt`, MQTT 3.1.1 section 6): the opening
 * handshake's request (section 4.1), its answer checked (status 101, `Sec-WebSocket-Accept`, section 4.2.2), binary
 * frames out, masked as a client must (section 5.3), and frames in split and joined (section 5.2). One key serves
 * every connection of a generator: the handshake proves nothing to a load generator.
 */
export class WebSocketClient {
  static readonly #key = randomBytes(16).toString('base64')
  static readonly #accept = createHash('sha1').update(WebSocketClient.#key + GUID).digest('base64')
  readonly #mask = randomBytes(4)
  #pending: Buffer | undefined
  #open = false
  readonly #onData: (payload: Buffer) => void
  readonly #send: (bytes: Buffer) => void
  readonly #onOpen: () => void

  /**
   * `send` writes to the TCP connection; `onOpen` runs once the handshake is answered; `onData` gets each binary
   * frame's payload (the MQTT bytes).
   */
  constructor (send: (bytes: Buffer) => void, onOpen: () => void, onData: (payload: Buffer) => void) {
    this.#send = send
    this.#onOpen = onOpen
    this.#onData = onData
  }

  /** The opening handshake's request for `ws://host:port/path`, the same for every connection of this generator. */
  static request (url: URL): Buffer {
    return Buffer.from(`GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${WebSocketClient.#key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`, 'latin1')
  }

  /** Sends `payload` as one masked binary frame. */
  write (payload: Buffer): void {
    const n = payload.length
    const head = n < 126 ? 2 : n < 65536 ? 4 : 10
    const frame = Buffer.allocUnsafe(head + 4 + n)
    frame[0] = 0x82
    if (n < 126) frame[1] = 0x80 | n
    else if (n < 65536) { frame[1] = 0x80 | 126; frame.writeUInt16BE(n, 2) } else { frame[1] = 0x80 | 127; frame.writeBigUInt64BE(BigInt(n), 2) }
    this.#mask.copy(frame, head)
    for (let i = 0; i < n; i++) frame[head + 4 + i] = payload[i] ^ this.#mask[i & 3]
    this.#send(frame)
  }

  /** Takes what arrived on the TCP connection. Throws an Error naming the fault on a refused handshake or a bad frame. */
  push (chunk: Buffer): void {
    const buf = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk])
    this.#pending = undefined
    let at = 0
    if (!this.#open) {
      const end = buf.indexOf('\r\n\r\n', 0, 'latin1')
      if (end < 0) { this.#pending = buf; return }
      const head = buf.toString('latin1', 0, end)
      if (!head.startsWith('HTTP/1.1 101')) throw new Error(`WebSocket handshake refused: ${head.split('\r\n')[0]}`)
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1]
      if (accept !== WebSocketClient.#accept) throw new Error('WebSocket handshake: wrong Sec-WebSocket-Accept (RFC 6455 section 4.2.2)')
      this.#open = true
      at = end + 4
      this.#onOpen()
    }
    while (at < buf.length) {
      if (buf.length - at < 2) break
      const opcode = buf[at] & 0x0f
      if ((buf[at + 1] & 0x80) !== 0) throw new Error('WebSocket: a masked frame from the server (RFC 6455 section 5.1)')
      let n = buf[at + 1] & 0x7f
      let head = 2
      if (n === 126) {
        if (buf.length - at < 4) break
        n = buf.readUInt16BE(at + 2)
        head = 4
      } else if (n === 127) {
        if (buf.length - at < 10) break
        n = Number(buf.readBigUInt64BE(at + 2))
        head = 10
      }
      if (buf.length - at < head + n) break
      const payload = buf.subarray(at + head, at + head + n)
      at += head + n
      if (opcode === 0 || opcode === 2) this.#onData(payload)
      else if (opcode === 8) throw new Error(`WebSocket closed by the server${n >= 2 ? ` with code ${payload.readUInt16BE(0)}` : ''}`)
      else if (opcode === 9) this.#control(0x8a, payload)
      else if (opcode !== 10) throw new Error(`WebSocket: unexpected opcode ${opcode} (RFC 6455 section 5.2)`)
    }
    if (at < buf.length) this.#pending = buf.subarray(at)
  }

  /** A PONG answers a PING with its payload (RFC 6455 section 5.5.3). */
  #control (first: number, payload: Buffer): void {
    const frame = Buffer.alloc(6 + payload.length)
    frame[0] = first
    frame[1] = 0x80 | payload.length
    this.#mask.copy(frame, 2)
    for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i] ^ this.#mask[i & 3]
    this.#send(frame)
  }
}
