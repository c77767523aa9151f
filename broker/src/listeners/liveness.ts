/**
 * Finding a dead peer that sends nothing. A client that asks for keep alive 0 (MQTT 3.1.1 section 3.1.2.10: "turns off
 * the keep alive mechanism") gets no keep alive timeout from aedes, and may legitimately stay silent for hours; its
 * connection (listeners/guard.ts) is watched instead:
 *  - every MQTT/TCP, MQTT/TLS and WebSocket socket has TCP keepalive on (listeners/tcp.ts, ws.ts): once a connection is
 *    idle for {@link TCP_KEEPALIVE_IDLE_MS}, the kernel probes the peer's host (Linux: 9 probes 75 s apart) and closes
 *    the connection when it is gone;
 *  - `wsPingIntervalMs` (`--ws-ping-interval`, 0 off): a WebSocket gets a ping frame (RFC 6455 section 5.5.2) every
 *    interval, and is closed when the previous one got no pong by then; browsers and WebSocket libraries answer by
 *    themselves, and a ping crosses the proxies that TCP keepalive stops at;
 *  - `idleTimeoutMs` (`--idle-timeout`, 10 minutes by default, 0 off): closed when nothing came from it for that long
 *    (pongs do not count), the MQTT way (the server may close a client it deems inactive at any time, section
 *    3.1.2.10), so silent clients cannot hold connection slots for ever.
 */

/** ms a connection is idle before the kernel starts its TCP keepalive probes (SO_KEEPALIVE, TCP_KEEPIDLE). */
export const TCP_KEEPALIVE_IDLE_MS = 60_000

/** How a keep alive 0 client's connection is watched; 0 turns a check off. */
export interface LivenessOptions {
  /** ms without any byte from the client after which it is closed. */
  idleTimeoutMs: number
  /** ms between WebSocket pings; a ping without pong by the next closes the connection. */
  wsPingIntervalMs: number
}

/** What the watch needs of a connection. */
export interface Watched {
  /** Closes the connection for `reason` (logged with the peer). */
  refuse: (reason: string) => void
  /** Sends a WebSocket ping; absent when the transport has none (TCP, TLS). */
  ping?: () => void
}

/** The watch on one connection: its timers, stopped when the connection closes. */
export class Liveness {
  readonly #conn: Watched
  readonly #opts: LivenessOptions
  #idle: NodeJS.Timeout | null = null
  #pinger: NodeJS.Timeout | null = null
  #awaitingPong = false

  constructor (conn: Watched, opts: LivenessOptions) {
    this.#conn = conn
    this.#opts = opts
    if (opts.idleTimeoutMs > 0) {
      this.#idle = setTimeout(() => conn.refuse(`idle: nothing received for ${opts.idleTimeoutMs} ms from a client with keep alive 0 (--idle-timeout)`), opts.idleTimeoutMs)
      this.#idle.unref()
    }
    if (opts.wsPingIntervalMs > 0 && conn.ping !== undefined) {
      this.#pinger = setInterval(() => this.#ping(), opts.wsPingIntervalMs)
      this.#pinger.unref()
    }
  }

  /** Bytes came from the client: the idle timeout starts again. */
  heard (): void {
    this.#idle?.refresh()
  }

  /** The client answered a ping. */
  pong (): void {
    this.#awaitingPong = false
  }

  /** The connection closed. */
  stop (): void {
    if (this.#idle !== null) clearTimeout(this.#idle)
    if (this.#pinger !== null) clearInterval(this.#pinger)
    this.#idle = null
    this.#pinger = null
  }

  #ping (): void {
    if (this.#awaitingPong) {
      this.#conn.refuse(`no answer to a WebSocket ping within ${this.#opts.wsPingIntervalMs} ms from a client with keep alive 0 (--ws-ping-interval)`)
      return
    }
    this.#awaitingPong = true
    this.#conn.ping?.()
  }
}
