/**
 * The guard every connection passes through before aedes sees it:
 *  - a maximum MQTT packet size on any byte stream. Neither aedes nor mqtt-packet limits packet size (up to 256 MB),
 *    so a {@link PacketSizeGuard} follows the MQTT framing (MQTT 3.1.1 section 2.2: one fixed-header byte, then a
 *    Remaining Length of 1 to 4 bytes, then that many bytes) and stops a connection as soon as a header announces
 *    more than the limit, before the packet is buffered;
 *  - a slow-consumer limit: aedes waits for a socket to drain before it delivers more, and a subscriber that stops
 *    reading would stall delivery to everyone (aedes' message emitter has a fixed concurrency). Here writes never wait:
 *    a connection whose unsent bytes stay above `maxQueuedBytes` for {@link SLOW_GRACE_MS} (seen at its writes), or
 *    ever pass {@link HARD_FACTOR} times it, is closed instead, so one slow viewer costs bounded memory and nobody
 *    else waits for it. The grace lets a viewer that reads take a burst bigger than the limit: a `$replay` of a long
 *    history goes out in one turn, and the kernel takes only part of it at once;
 *  - one write per connection per event-loop turn: what aedes writes in one turn goes out together on the next, as
 *    one system call and, on a WebSocket, one frame (MQTT 3.1.1 section 6.0 lets a frame hold several packets).
 * A WebSocket is guarded directly, without a second stream in between (ws' createWebSocketStream): one Node stream
 * per connection is what aedes needs, and every stream costs memory and a hop per write.
 * A client with keep alive 0 has its connection watched for a dead peer ({@link watchLiveness}, listeners/liveness.ts).
 * A packet (or WebSocket message) that has begun must be complete within `packetTimeoutMs`, whatever the keep alive
 * (listeners/slow-packet.ts): the bytes of an unfinished packet are held by the node until then.
 */
import { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import { Liveness, type LivenessOptions, type Watched } from './liveness.js'
import { startPacketClock, stopPacketClock, WebSocketFrames, type TimedPacket } from './slow-packet.js'
import type { Counters } from '../metrics/counters.js'
import { flushed } from '../metrics/latency.js'

/** Why the guard closed a connection, as a name (disconnect-reason.ts lists them with the others). */
export type GuardCloseReason = 'slow-consumer' | 'packet-too-large' | 'protocol-error' | 'idle' | 'slow-packet'

/** Why the guard closed a connection: the name, and the words for the log. */
export interface GuardClose {
  reason: GuardCloseReason
  detail: string
}

/** Follows packet boundaries across chunks; one per connection. */
export class PacketSizeGuard {
  readonly #max: number
  #state: 'header' | 'length' | 'body' = 'header'
  #length = 0
  #multiplier = 1
  #lengthBytes = 0
  #remaining = 0
  #completed = 0

  /** @param max the largest packet accepted, in bytes, fixed header included */
  constructor (max: number) {
    this.#max = max
  }

  /** Whether a packet has begun and not ended (its fixed header, Remaining Length or body still coming). */
  get midPacket (): boolean {
    return this.#state !== 'header'
  }

  /** How many packets have ended so far. */
  get completed (): number {
    return this.#completed
  }

  /**
   * Scans the next chunk of the stream.
   * @returns null when all is well, or why to close the connection
   */
  check (chunk: Uint8Array): GuardClose | null {
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
          if (this.#lengthBytes === 4) return { reason: 'protocol-error', detail: 'malformed Remaining Length (more than 4 bytes, MQTT 3.1.1 section 2.2.3)' }
          continue
        }
        const total = 1 + this.#lengthBytes + this.#length
        if (total > this.#max) return { reason: 'packet-too-large', detail: `packet of ${total} bytes exceeds the maximum packet size of ${this.#max} bytes` }
        this.#remaining = this.#length
        if (this.#remaining === 0) {
          this.#state = 'header'
          this.#completed++
        } else {
          this.#state = 'body'
        }
      } else {
        const take = Math.min(this.#remaining, chunk.length - i)
        i += take
        this.#remaining -= take
        if (this.#remaining === 0) {
          this.#state = 'header'
          this.#completed++
        }
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
  /** ms a packet (or WebSocket message) that has begun has to be complete before the connection is closed; 0 or absent: no limit. */
  packetTimeoutMs?: number
  /** Where the node counts bytes in and out and slow consumers closed (metrics/counters.ts); null or absent: nowhere. */
  counters?: Counters | null
}

/** Where a connection comes from, as the listener saw it; read only when the guard refuses the connection. */
export interface Peer {
  ipAddress: string
  port: number
  /** The listener's name, e.g. `mqtt:1883`. */
  listener?: string
}

/** Told when the guard closes a connection: where it came from, and why. Shared by all connections. */
export type RefusedHandler = (peer: Peer, close: GuardClose) => void


/** How long a connection's unsent bytes may stay above the limit, in ms. */
export const SLOW_GRACE_MS = 5000
/** Unsent bytes above this many times the limit close a connection at once. */
export const HARD_FACTOR = 4
/** The most bytes one write (one WebSocket frame) carries; a bigger batch goes out in several. */
const MAX_WRITE = 256 * 1024

/** Connections with output waiting; one `setImmediate` per event-loop turn flushes them all. */
let dirty: GuardedStream[] = []
let flushScheduled = false

/** Puts a connection on the list the next flush sends. */
function markDirty (stream: GuardedStream): void {
  dirty.push(stream)
  if (!flushScheduled) {
    flushScheduled = true
    setImmediate(flushAll)
  }
}

function flushAll (): void {
  flushScheduled = false
  const list = dirty
  dirty = []
  for (const stream of list) stream.flush()
  lastChunks = []
  lastJoined = EMPTY
  flushed() // the timed messages written before this flush are in the sockets now (metrics/latency.ts)
}

const EMPTY = Buffer.alloc(0)
let lastChunks: Buffer[] = []
let lastJoined: Buffer = EMPTY

/**
 * The chunks as one Buffer. Fan-out gives many connections the same Buffers in the same order in one turn
 * (delivery.ts shares each message's encoding), so the last joined list is kept until the end of the flush and
 * reused when the next connection's list holds the very same Buffers: one copy per turn instead of one per viewer.
 * Neither ws (no masking on the server side) nor net changes a Buffer it sends.
 */
function joined (chunks: Buffer[]): Buffer {
  if (chunks.length === 1) return chunks[0]
  if (sameBuffers(chunks, lastChunks)) return lastJoined
  lastChunks = chunks
  lastJoined = Buffer.concat(chunks)
  return lastJoined
}

/** Whether two lists hold the very same Buffers in the same order (identity, not content). */
function sameBuffers (a: Buffer[], b: Buffer[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * The stream aedes sees for one connection: reads only bytes that passed the {@link PacketSizeGuard}, and writes
 * that never wait for the peer. Subclasses move the bytes over their transport.
 */
abstract class GuardedStream extends Duplex implements TimedPacket {
  readonly #guard: PacketSizeGuard
  readonly #packetTimeoutMs: number
  /** When the current packet began (ms since 1970; the clock stops while the node does not read), 0 between packets. */
  #packetStartedAt = 0
  /** The node stopped reading (aedes is behind): a slow packet is then not the peer's doing. */
  #inputPaused = false
  /** The packets and transport messages seen ended at the last look: when more have, the open one began since. */
  #packetsSeen = 0
  #messagesSeen = 0
  readonly #maxQueued: number
  readonly #peer: Peer
  readonly #onRefused: RefusedHandler
  readonly #counters: Counters | null
  #pending: Buffer[] | null = null
  /** A SUBACK is waiting: flush one turn later, with the retained messages and history that follow it. */
  #holdTurn = false
  #refused = false
  /** Why the guard closed it, once it did. */
  #closeReason: GuardClose | null = null
  /** When the unsent bytes were first seen above the limit (ms since epoch), 0 while below. */
  #overSince = 0
  /** The watch on a client with keep alive 0 (null for the others). */
  protected liveness: Liveness | null = null

  // No closure per connection for the report: the peer and a shared handler, joined only when it is refused.
  constructor (limits: ConnectionLimits, peer: Peer, onRefused: RefusedHandler) {
    super()
    this.#guard = new PacketSizeGuard(limits.maxPacketSize)
    this.#maxQueued = limits.maxQueuedBytes
    this.#packetTimeoutMs = limits.packetTimeoutMs ?? 0
    this.#peer = peer
    this.#onRefused = onRefused
    this.#counters = limits.counters ?? null
  }

  /** Sends bytes to the peer; returns the bytes now waiting to be sent. */
  protected abstract sendBytes (bytes: Buffer): number
  protected abstract pauseInput (): void
  protected abstract resumeInput (): void
  /** Ends the output gracefully (TCP FIN, WebSocket close frame). */
  protected abstract endOutput (): void
  protected abstract destroyTransport (): void
  protected abstract get transportClosed (): boolean

  /** Whether the transport is in the middle of a message of its own (a WebSocket frame or fragmented message). */
  protected midMessage (): boolean {
    return false
  }

  /** How many messages of its own the transport has seen end (WebSocket data messages). */
  protected messagesDone (): number {
    return 0
  }

  /** Starts or stops the clock of the current packet after bytes came (listeners/slow-packet.ts). */
  protected packetProgress (): void {
    if (this.#packetTimeoutMs === 0 || this.#refused || this.destroyed) return
    const packets = this.#guard.completed
    const messages = this.messagesDone()
    // A packet ended since the last look (or, between packets, a WebSocket message): what is open now began since.
    const progressed = packets !== this.#packetsSeen || (!this.#guard.midPacket && messages !== this.#messagesSeen)
    this.#packetsSeen = packets
    this.#messagesSeen = messages
    if (!(this.#guard.midPacket || this.midMessage())) {
      if (this.#packetStartedAt !== 0) {
        this.#packetStartedAt = 0
        stopPacketClock(this)
      }
    } else if (this.#packetStartedAt === 0) {
      this.#packetStartedAt = Date.now()
      startPacketClock(this)
    } else if (progressed) {
      this.#packetStartedAt = Date.now()
    }
  }

  /** Called by the sweep of listeners/slow-packet.ts: closes the connection when its packet is overdue. */
  checkPacket (now: number): void {
    if (this.#packetStartedAt === 0) return
    if (this.#inputPaused) {
      this.#packetStartedAt = now
      return
    }
    const age = now - this.#packetStartedAt
    if (age >= this.#packetTimeoutMs) {
      this.refuse(`slow packet: a packet begun ${age} ms ago is still incomplete (--packet-timeout ${this.#packetTimeoutMs} ms)`, 'slow-packet')
    }
  }

  /** Watches this connection for a dead peer (its client asked for keep alive 0); once. */
  watch (opts: LivenessOptions): void {
    if (this.liveness !== null || this.destroyed) return
    this.liveness = new Liveness(this.watched(), opts)
  }

  /** What the watch may do with this connection: close it (a WebSocket adds its ping). */
  protected watched (): Watched {
    return { refuse: (reason) => this.refuse(reason, 'idle') }
  }

  /** Why the guard closed this connection, or null when it did not. */
  get closeReason (): GuardClose | null {
    return this.#closeReason
  }

  /**
   * Closes the connection for `reason` (reported once); nothing received after this reaches aedes.
   * @param reason the words for the log; `code` names it
   */
  refuse (reason: string, code: GuardCloseReason): void {
    if (this.#refused) return
    this.#refused = true
    this.#closeReason = { reason: code, detail: reason }
    this.#onRefused(this.#peer, this.#closeReason)
    this.destroyTransport()
    this.destroy()
  }

  /** Bytes from the peer: checked, then handed to aedes. */
  protected received (chunk: Buffer): void {
    if (this.#refused) return
    this.liveness?.heard()
    if (this.#counters !== null) this.#counters.bytesReceived += chunk.length
    const refused = this.#guard.check(chunk)
    if (refused !== null) {
      this.refuse(refused.detail, refused.reason)
      return
    }
    this.packetProgress()
    if (!this.push(chunk)) {
      this.#inputPaused = true
      this.pauseInput()
    }
  }

  /**
   * Sends what aedes wrote since the last flush, as one write. Output that holds a SUBACK waits one more turn of the
   * event loop unless `now`: aedes sends the retained messages of a SUBSCRIBE from `setImmediate` callbacks queued
   * behind this flush, so they would take a write (a TCP segment, a WebSocket frame) of their own; waiting puts a
   * joining viewer's SUBACK, history and state in one write.
   */
  flush (now = false): void {
    const pending = this.#pending
    if (pending === null) return
    if (this.#holdTurn && !now) {
      this.#holdTurn = false
      markDirty(this)
      return
    }
    this.#holdTurn = false
    this.#pending = null
    if (this.#refused || this.transportClosed) return
    let queued = 0
    let size = 0
    for (const c of pending) size += c.length
    if (this.#counters !== null) this.#counters.bytesSent += size
    if (size <= MAX_WRITE) {
      queued = this.sendBytes(joined(pending))
    } else {
      let group: Buffer[] = []
      let groupSize = 0
      for (const c of pending) {
        group.push(c)
        groupSize += c.length
        if (groupSize >= MAX_WRITE) {
          queued = this.sendBytes(Buffer.concat(group))
          group = []
          groupSize = 0
        }
      }
      if (group.length > 0) queued = this.sendBytes(Buffer.concat(group))
    }
    this.#checkBacklog(queued)
  }

  /** Closes a slow consumer: unsent bytes above the limit for the grace period, or far above it at once. */
  #checkBacklog (queued: number): void {
    if (queued <= this.#maxQueued) {
      this.#overSince = 0
      return
    }
    const now = Date.now()
    if (this.#overSince === 0) this.#overSince = now
    if (queued > this.#maxQueued * HARD_FACTOR) {
      this.#slow()
      this.refuse(`slow consumer: ${queued} bytes waiting to be sent, more than ${HARD_FACTOR} x ${this.#maxQueued}`, 'slow-consumer')
    } else if (now - this.#overSince > SLOW_GRACE_MS) {
      this.#slow()
      this.refuse(`slow consumer: more than ${this.#maxQueued} bytes waiting to be sent for over ${SLOW_GRACE_MS} ms (${queued} now)`, 'slow-consumer')
    }
  }

  #slow (): void {
    if (this.#counters !== null && !this.#refused) this.#counters.slowConsumers++
  }

  #queue (chunk: Buffer): void {
    if (this.#refused || this.transportClosed) return
    // mqtt-packet writes a packet's fixed header byte as a chunk of its own; 0x90 is SUBACK's (MQTT 3.1.1 section
    // 3.9.1). A payload chunk that starts with 0x90 only delays its flush by one turn.
    if (chunk[0] === 0x90) this.#holdTurn = true
    if (this.#pending === null) {
      this.#pending = [chunk]
      markDirty(this)
    } else {
      this.#pending.push(chunk)
    }
  }

  override _read (): void {
    if (this.#inputPaused) {
      this.#inputPaused = false
      if (this.#packetStartedAt !== 0) this.#packetStartedAt = Date.now() // the peer's clock starts again
    }
    this.resumeInput()
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#queue(chunk)
    cb()
  }

  override _writev (chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    for (const { chunk } of chunks) this.#queue(chunk)
    cb()
  }

  override _final (cb: (err?: Error | null) => void): void {
    this.flush(true)
    this.endOutput()
    cb()
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.liveness?.stop()
    if (this.#packetStartedAt !== 0) stopPacketClock(this)
    this.#packetStartedAt = 0
    this.flush(true) // what aedes wrote just before closing (a refusing CONNACK) still goes out
    this.destroyTransport()
    cb(err)
  }
}

/**
 * The guard a transport's events go to. The listeners below are shared by all connections and find their guard
 * through this property of the transport (the emitter is `this` in a listener): no closures per connection.
 */
const GUARD = Symbol('tribune.guard')

/** A TCP or TLS socket behind the guard. */
class SocketStream extends GuardedStream {
  readonly #socket: Duplex & { [GUARD]?: SocketStream }
  readonly #onClosed: ((socket: Duplex) => void) | undefined

  constructor (socket: Duplex, limits: ConnectionLimits, peer: Peer, onRefused: RefusedHandler, onClosed?: (socket: Duplex) => void) {
    super(limits, peer, onRefused)
    this.#socket = socket
    this.#onClosed = onClosed
    this.#socket[GUARD] = this
    socket.on('data', SocketStream.#onData)
    socket.on('end', SocketStream.#onEnd)
    socket.on('error', SocketStream.#onError)
    socket.on('close', SocketStream.#onClose)
  }

  static #of (socket: Duplex): SocketStream { return (socket as Duplex & { [GUARD]: SocketStream })[GUARD] }
  static #onData (this: Duplex, chunk: Buffer): void { SocketStream.#of(this).received(chunk) }
  static #onEnd (this: Duplex): void { SocketStream.#of(this).push(null) }
  static #onError (this: Duplex, err: Error): void { SocketStream.#of(this).destroy(err) }
  static #onClose (this: Duplex): void {
    const self = SocketStream.#of(this)
    self.#onClosed?.(this)
    if (!self.destroyed) self.destroy()
  }

  protected sendBytes (bytes: Buffer): number {
    this.#socket.write(bytes)
    return this.#socket.writableLength
  }

  protected pauseInput (): void { this.#socket.pause() }
  protected resumeInput (): void { this.#socket.resume() }
  protected endOutput (): void { this.#socket.end() }
  protected destroyTransport (): void { this.#socket.destroy() }
  protected get transportClosed (): boolean { return this.#socket.destroyed }
}

/**
 * A WebSocket (ws 8) behind the guard: MQTT packets must come in binary frames [MQTT-6.0.0-1], so a text frame
 * closes the connection; each flush is one binary frame. With a packet timeout, the frames read from its socket are
 * followed too, so that a message begun and never finished is on the clock (ws says nothing until it is whole).
 */
class WebSocketStream extends GuardedStream {
  readonly #ws: WebSocket
  readonly #frames: WebSocketFrames | null = null
  #errored = false
  /** A WebSocket close code to end with (RFC 6455 section 7.4.1) instead of dropping the connection. */
  #closeCode = 0
  readonly #onClosed: ((ws: WebSocket) => void) | undefined

  constructor (ws: WebSocket, limits: ConnectionLimits, peer: Peer, onRefused: RefusedHandler, onClosed?: (ws: WebSocket) => void, socket?: Duplex) {
    super(limits, peer, onRefused)
    this.#ws = ws
    this.#onClosed = onClosed
    ;(ws as WebSocket & { [GUARD]: WebSocketStream })[GUARD] = this
    if (socket !== undefined && (limits.packetTimeoutMs ?? 0) > 0) {
      // After ws' own listener (it was added when the upgrade completed): ws has handled these bytes first.
      this.#frames = new WebSocketFrames()
      ;(socket as Duplex & { [GUARD]: WebSocketStream })[GUARD] = this
      socket.on('data', WebSocketStream.#onSocketData)
    }
    ws.on('message', WebSocketStream.#onMessage)
    // ws closes the connection itself after an error (e.g. a message over maxPayload: close code 1009).
    ws.on('error', WebSocketStream.#onError)
    ws.on('close', WebSocketStream.#onClose)
  }

  static #of (ws: WebSocket): WebSocketStream { return (ws as WebSocket & { [GUARD]: WebSocketStream })[GUARD] }
  static #onMessage (this: WebSocket, data: Buffer, isBinary: boolean): void {
    const self = WebSocketStream.#of(this)
    if (isBinary) self.received(data)
    else {
      self.#closeCode = 1003 // unsupported data
      self.refuse('text frame: MQTT packets must be sent in binary frames [MQTT-6.0.0-1]', 'protocol-error')
    }
  }

  static #onSocketData (this: Duplex, chunk: Buffer): void {
    const self = (this as Duplex & { [GUARD]: WebSocketStream })[GUARD]
    self.#frames?.scan(chunk)
    self.packetProgress()
  }

  protected override midMessage (): boolean {
    return this.#frames?.midMessage ?? false
  }

  protected override messagesDone (): number {
    return this.#frames?.messages ?? 0
  }

  static #onPong (this: WebSocket): void { WebSocketStream.#of(this).liveness?.pong() }

  protected override watched (): Watched {
    this.#ws.on('pong', WebSocketStream.#onPong)
    const ws = this.#ws
    return { refuse: (reason) => this.refuse(reason, 'idle'), ping: () => { if (ws.readyState === 1) ws.ping() } }
  }

  static #onError (this: WebSocket, err: Error): void {
    const self = WebSocketStream.#of(this)
    self.#errored = true
    self.destroy(err)
  }

  static #onClose (this: WebSocket): void {
    const self = WebSocketStream.#of(this)
    self.#onClosed?.(this)
    if (self.destroyed) return
    self.push(null)
    self.destroy()
  }

  protected sendBytes (bytes: Buffer): number {
    this.#ws.send(bytes)
    return this.#ws.bufferedAmount
  }

  protected pauseInput (): void { this.#ws.pause() }
  protected resumeInput (): void { if (this.#ws.isPaused) this.#ws.resume() }
  protected endOutput (): void { this.#ws.close() }
  protected destroyTransport (): void {
    if (this.#errored) return
    if (this.#closeCode !== 0 && this.#ws.readyState === 1) this.#ws.close(this.#closeCode, 'binary frames only') // ws terminates it if the peer does not answer
    else if (this.#closeCode === 0) this.#ws.terminate()
  }
  protected get transportClosed (): boolean { return this.#ws.readyState >= 2 } // CLOSING or CLOSED
}

/**
 * Watches the connection aedes reads from (a client's `conn`) for a dead peer, as listeners/liveness.ts describes: for
 * a client that asked for keep alive 0 (MQTT 3.1.1 section 3.1.2.10), which aedes then never times out.
 * @returns false when `conn` is not a guarded connection (nothing is watched)
 */
export function watchLiveness (conn: unknown, opts: LivenessOptions): boolean {
  if (!(conn instanceof GuardedStream)) return false
  conn.watch(opts)
  return true
}

/**
 * Why the guard closed the connection aedes reads from (a client's `conn`): the reason's name and its words; null when
 * the guard did not close it, or `conn` is not a guarded connection.
 */
export function guardCloseReason (conn: unknown): GuardClose | null {
  return conn instanceof GuardedStream ? conn.closeReason : null
}

/**
 * Guards a TCP or TLS socket (or any byte duplex) from `peer`. `onRefused(peer, close)` is called once when the
 * guard closes it; `onClosed(inner)` once the socket is closed.
 * @returns the stream aedes reads MQTT packets from and writes to
 */
export function guardConnection (inner: Duplex | Socket, limits: ConnectionLimits, peer: Peer, onRefused: RefusedHandler, onClosed?: (inner: Duplex) => void): Duplex {
  return new SocketStream(inner, limits, peer, onRefused, onClosed)
}

/**
 * Guards an open WebSocket: the stream aedes reads MQTT packets from (binary frames only) and writes to.
 * `onRefused(peer, close)` is called once when the guard closes it; `onClosed(ws)` once the WebSocket is closed.
 * `socket` is the upgraded connection under it, given once ws has taken it (its frames are followed for
 * `limits.packetTimeoutMs`; without it only MQTT packets split across messages are timed).
 * @returns the stream aedes reads MQTT packets from and writes to
 */
export function guardWebSocket (ws: WebSocket, limits: ConnectionLimits, peer: Peer, onRefused: RefusedHandler, onClosed?: (ws: WebSocket) => void, socket?: Duplex): Duplex {
  return new WebSocketStream(ws, limits, peer, onRefused, onClosed, socket)
}
