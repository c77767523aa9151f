/**
 * Slow packets: a packet (MQTT 3.1.1 section 2: fixed header, Remaining Length, that many bytes) or a WebSocket message
 * (RFC 6455 section 5.4: frames up to one with FIN set) that a peer has begun must be complete within
 * `--packet-timeout`, whatever the client's keep alive. Until it is, the node holds its bytes (mqtt-packet's parser
 * keeps a partial packet, up to --max-packet-size; ws keeps the fragments of a message, up to its maxPayload): a
 * client with keep alive 0 that answers pings but never finishes a packet would otherwise pin that memory for ever.
 *
 * One sweep for the whole process looks at the connections that are in the middle of a packet (a set: a connection
 * whose chunks end at packet boundaries, nearly all of them, never enters it) every {@link SWEEP_MS}.
 */

/** How often the connections in the middle of a packet are checked, in ms. */
export const SWEEP_MS = 250

/** A connection whose current packet is on the clock. */
export interface TimedPacket {
  /** Called by the sweep: closes the connection when its packet is overdue at `now` (ms since 1970). */
  checkPacket: (now: number) => void
}

const timed = new Set<TimedPacket>()
let sweeper: NodeJS.Timeout | null = null

function sweep (): void {
  const now = Date.now()
  for (const conn of timed) conn.checkPacket(now) // a connection closed here leaves the set: safe while iterating
}

/** Puts a connection that began a packet on the clock (until {@link stopPacketClock}). */
export function startPacketClock (conn: TimedPacket): void {
  timed.add(conn)
  if (sweeper === null) {
    sweeper = setInterval(sweep, SWEEP_MS)
    sweeper.unref()
  }
}

/** Takes a connection off the clock: its packet is complete, or it closed. */
export function stopPacketClock (conn: TimedPacket): void {
  if (!timed.delete(conn) || timed.size > 0 || sweeper === null) return
  clearInterval(sweeper)
  sweeper = null
}

/**
 * Follows WebSocket framing (RFC 6455 section 5.2) on the bytes a client sends, to tell whether a message has begun
 * and not ended: in the middle of a frame, or between the fragments of a message (a data frame without FIN, until the
 * continuation frame with FIN). Control frames (ping, pong, close) may come between fragments and change nothing.
 * The ws library parses the frames too, but says nothing until a message is whole.
 */
export class WebSocketFrames {
  #state: 'head' | 'length' | 'extended' | 'mask' | 'payload' = 'head'
  #fin = false
  #opcode = 0
  #masked = false
  #extendedBytes = 0
  #remaining = 0
  /** A data frame without FIN came: the message goes on in continuation frames. */
  #fragmented = false
  #messages = 0

  /** Whether a frame or a fragmented message has begun and not ended. */
  get midMessage (): boolean {
    return this.#state !== 'head' || this.#fragmented
  }

  /** How many data messages have ended so far. */
  get messages (): number {
    return this.#messages
  }

  /** Scans the next bytes read from the client's socket. */
  scan (chunk: Uint8Array): void {
    let i = 0
    while (i < chunk.length) {
      switch (this.#state) {
        case 'head': {
          const byte = chunk[i++]
          this.#fin = (byte & 0x80) !== 0
          this.#opcode = byte & 0x0f
          this.#state = 'length'
          break
        }
        case 'length': {
          const byte = chunk[i++]
          this.#masked = (byte & 0x80) !== 0
          const length = byte & 0x7f
          if (length >= 126) {
            this.#extendedBytes = length === 126 ? 2 : 8
            this.#remaining = 0
            this.#state = 'extended'
          } else {
            this.#remaining = length
            this.#afterLength()
          }
          break
        }
        case 'extended':
          this.#remaining = this.#remaining * 256 + chunk[i++]
          if (--this.#extendedBytes === 0) this.#afterLength()
          break
        case 'mask':
          i++
          if (--this.#extendedBytes === 0) this.#afterMask()
          break
        case 'payload': {
          const take = Math.min(this.#remaining, chunk.length - i)
          i += take
          this.#remaining -= take
          if (this.#remaining === 0) this.#frameEnd()
          break
        }
      }
    }
  }

  #afterLength (): void {
    if (this.#masked) {
      this.#extendedBytes = 4
      this.#state = 'mask'
    } else {
      this.#afterMask()
    }
  }

  #afterMask (): void {
    if (this.#remaining === 0) this.#frameEnd()
    else this.#state = 'payload'
  }

  #frameEnd (): void {
    this.#state = 'head'
    if (this.#opcode >= 8) return // ping, pong, close: between fragments, they change nothing
    this.#fragmented = !this.#fin // text, binary or continuation
    if (this.#fin) this.#messages++
  }
}
