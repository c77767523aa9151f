/**
 * The guard every connection passes through before aedes sees it:
 *  - a maximum MQTT packet size on any byte stream. Neither aedes nor mqtt-packet limits packet size (up to 256 MB),
 *    so a {@link PacketSizeGuard} follows the MQTT framing (MQTT 3.1.1 section 2.2: one fixed-header byte, then a
 *    Remaining Length of 1 to 4 bytes, then that many bytes) and stops a connection as soon as a header announces
 *    more than the limit, before the packet is buffered;
 *  - a slow-consumer limit: aedes waits for a socket to drain before it delivers more, and a subscriber that stops
 *    reading would stall delivery to everyone (aedes' message emitter has a fixed concurrency). Here writes never wait:
 *    a connection that has more than `maxQueuedBytes` unsent is closed instead, so one slow viewer costs at most that
 *    much memory and nobody else waits for it.
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

/** Limits of one connection. */
export interface ConnectionLimits {
  /** The largest MQTT packet accepted, in bytes. */
  maxPacketSize: number
  /** The most bytes waiting to be sent to a peer before it is closed as a slow consumer. */
  maxQueuedBytes: number
}

/** A guarded connection: the stream aedes reads and writes, and a way to close it for a reason found elsewhere. */
export interface GuardedConnection {
  stream: Duplex
  /** Closes the connection; nothing received after this reaches aedes. */
  refuse: (reason: string) => void
}

/**
 * Wraps a connection's duplex stream so that aedes reads only bytes that passed the size guard and never waits for
 * a slow peer. `onRefused(reason)` is called once when the guard closes the connection.
 * @param inner the connection (a net.Socket, or the duplex of a WebSocket)
 */
export function guardConnection (inner: Duplex, limits: ConnectionLimits, onRefused: (reason: string) => void): GuardedConnection {
  const guard = new PacketSizeGuard(limits.maxPacketSize)
  let refused = false
  const refuse = (reason: string): void => {
    if (refused) return
    refused = true
    onRefused(reason)
    inner.destroy()
    outer.destroy()
  }
  const send = (chunk: Buffer): void => {
    inner.write(chunk)
    if (inner.writableLength > limits.maxQueuedBytes) {
      refuse(`slow consumer: ${inner.writableLength} bytes waiting to be sent, more than ${limits.maxQueuedBytes}`)
    }
  }
  // What aedes writes in one turn of the event loop goes out as one write on the next: one WebSocket frame and one
  // system call per connection per turn instead of one per packet (or per piece of one; MQTT 3.1.1 section 6.0 lets
  // a frame hold several packets, and a packet span frames).
  let pending: Buffer[] = []
  let scheduled = false
  const flush = (): void => {
    scheduled = false
    if (pending.length === 0) return
    const bytes = pending.length === 1 ? pending[0] : Buffer.concat(pending)
    pending = []
    if (!inner.destroyed && !refused) send(bytes)
  }
  const queue = (chunk: Buffer): void => {
    if (inner.destroyed || refused) return
    pending.push(chunk)
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }
  const outer: Duplex = new Duplex({
    read () {
      inner.resume()
    },
    write (chunk: Buffer, _enc, cb) {
      queue(chunk)
      cb()
    },
    writev (chunks, cb) {
      for (const { chunk } of chunks) queue(chunk as Buffer)
      cb()
    },
    final (cb) {
      flush()
      inner.end()
      cb()
    },
    destroy (err, cb) {
      flush() // what aedes wrote just before closing (a refusing CONNACK) still goes out, as it did unbatched
      inner.destroy()
      cb(err)
    }
  })
  inner.on('data', (chunk: Buffer) => {
    if (refused) return
    const reason = guard.check(chunk)
    if (reason !== null) {
      refuse(reason)
      return
    }
    if (!outer.push(chunk)) inner.pause()
  })
  inner.on('end', () => outer.push(null))
  inner.on('error', (err) => outer.destroy(err))
  inner.on('close', () => { if (!outer.destroyed) outer.destroy() })
  return { stream: outer, refuse }
}
