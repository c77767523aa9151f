/**
 * A maximum MQTT packet size on any byte stream. Neither aedes nor mqtt-packet limits packet size (up to 256 MB),
 * so every connection's bytes pass through a {@link PacketSizeGuard} that follows the MQTT framing
 * (MQTT 3.1.1 section 2.2: one fixed-header byte, then a Remaining Length of 1 to 4 bytes, then that many bytes)
 * and stops a connection as soon as a packet header announces more than the limit, before the packet is buffered.
 */
import { Duplex } from 'node:stream'

/** Follows packet boundaries across chunks; one per connection. */
export class PacketSizeGuard {
  readonly #max: number
  #state: 'header' | 'length' | 'body' = 'header'
  #length = 0
  #multiplier = 1
  #lengthBytes = 0
  #remaining = 0

  /** @param max the largest packet accepted, in bytes, fixed header included */
  constructor (max: number) {
    this.#max = max
  }

  /**
   * Scans the next chunk of the stream.
   * @returns null when all is well, or the reason to close the connection
   */
  check (chunk: Uint8Array): string | null {
    let i = 0
    while (i < chunk.length) {
      if (this.#state === 'header') {
        i++
        this.#state = 'length'
        this.#length = 0
        this.#multiplier = 1
        this.#lengthBytes = 0
      } else if (this.#state === 'length') {
        const byte = chunk[i++]
        this.#length += (byte & 0x7f) * this.#multiplier
        this.#multiplier *= 128
        this.#lengthBytes++
        if ((byte & 0x80) !== 0) {
          if (this.#lengthBytes === 4) return 'malformed Remaining Length (more than 4 bytes, MQTT 3.1.1 section 2.2.3)'
          continue
        }
        const total = 1 + this.#lengthBytes + this.#length
        if (total > this.#max) return `packet of ${total} bytes exceeds the maximum packet size of ${this.#max} bytes`
        this.#remaining = this.#length
        this.#state = this.#remaining === 0 ? 'header' : 'body'
      } else {
        const take = Math.min(this.#remaining, chunk.length - i)
        i += take
        this.#remaining -= take
        if (this.#remaining === 0) this.#state = 'header'
      }
    }
    return null
  }
}

/**
 * Wraps a connection's duplex stream so that aedes reads only bytes that passed the size guard.
 * On an oversized packet the connection is destroyed and `onRefused(reason)` is called; nothing of it reaches aedes.
 * @param inner the connection (a net.Socket, or the duplex of a WebSocket)
 * @param max the largest packet accepted, in bytes
 */
export function limitPacketSize (inner: Duplex, max: number, onRefused: (reason: string) => void): Duplex {
  const guard = new PacketSizeGuard(max)
  let refused = false
  const outer = new Duplex({
    read () {
      inner.resume()
    },
    write (chunk: Buffer, _enc, cb) {
      if (inner.destroyed) return cb()
      inner.write(chunk, cb)
    },
    writev (chunks, cb) {
      if (inner.destroyed) return cb()
      for (let i = 0; i < chunks.length - 1; i++) inner.write(chunks[i].chunk)
      inner.write(chunks[chunks.length - 1].chunk, cb)
    },
    final (cb) {
      inner.end()
      cb()
    },
    destroy (err, cb) {
      inner.destroy()
      cb(err)
    }
  })
  inner.on('data', (chunk: Buffer) => {
    if (refused) return
    const reason = guard.check(chunk)
    if (reason !== null) {
      refused = true
      onRefused(reason)
      inner.destroy()
      outer.destroy()
      return
    }
    if (!outer.push(chunk)) inner.pause()
  })
  inner.on('end', () => outer.push(null))
  inner.on('error', (err) => outer.destroy(err))
  inner.on('close', () => { if (!outer.destroyed) outer.destroy() })
  return outer
}
