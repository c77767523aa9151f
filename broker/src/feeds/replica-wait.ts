/**
 * Waits until writes made on one Redis connection are on at least N replicas (Redis WAIT), so that a feed message is
 * acknowledged and delivered only once a failover can no longer lose it (`--redis-min-replicas`).
 *
 * Why WAIT and not the server's `min-replicas-to-write`: WAIT answers for this very write (every write this connection
 * made before it has reached N replicas); `min-replicas-to-write` only refuses writes while fewer than N replicas were
 * heard from in the last `min-replicas-max-lag` seconds, so a write it accepts may still be on the master alone when
 * the master dies, and a refused one is an error the publisher would have to resend.
 *
 * WAIT blocks the connection it runs on, so it runs on a connection of its own (feed appends only). One WAIT covers
 * every write whose reply came before it was sent (so Redis ran them before it, whatever ioredis sent again meanwhile,
 * an EVAL after a NOSCRIPT say): it is sent once the replies that came together are in (setImmediate), and writes
 * replied to while it is under way share the next one. While fewer
 * than N replicas acknowledge, WAIT is sent again (each waits `timeoutMs`), a warning is logged at most every 10 s,
 * and the writes wait: nothing is acknowledged meanwhile, nothing is lost.
 *
 * A WAIT counts the writes of the connection it runs on. When the connection was made again (a failover: ioredis
 * reconnects to the new master and sends the commands under way again) between a write's reply and its WAIT's
 * answer, that answer says nothing about the write: {@link ReplicaWait.confirm} then throws
 * {@link ConnectionChangedError}, and the caller writes again (feed appends recognise a resent data `id`).
 */
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'

/** The connection was made again between a write's reply and its confirmation: write again. */
export class ConnectionChangedError extends Error {
  override name = 'ConnectionChangedError'
  constructor () {
    super('the Redis connection was made again before the write was confirmed on the replicas')
  }
}

interface Wait {
  /** Writes numbered up to this one had their reply before the WAIT was sent (Infinity: not sent yet). */
  covers: number
  /** The connection (its count of closes) the WAIT was sent on. */
  generation: number
  answer: Promise<number>
}

export interface ReplicaWaitOptions {
  /** Replicas each write must reach (at least 1). */
  replicas: number
  /** ms one WAIT waits before it is sent again (default 1000). */
  timeoutMs?: number
  log: Logger
}

export class ReplicaWait {
  readonly #conn: Redis
  readonly #replicas: number
  readonly #timeoutMs: number
  readonly #log: Logger
  /** Writes replied to so far. */
  #replied = 0
  #generation = 0
  #last: Wait | null = null
  /** When writes began waiting for too few replicas (null: they do not), and when that was last logged. */
  #shortSince: number | null = null
  #loggedAt = 0
  #changedLogged = 0

  /** @param conn the connection the writes are made on; WAIT runs on it too (nothing else should use it) */
  constructor (conn: Redis, opts: ReplicaWaitOptions) {
    this.#conn = conn
    this.#replicas = opts.replicas
    this.#timeoutMs = opts.timeoutMs ?? 1000
    this.#log = opts.log
    conn.on('close', () => { this.#generation++ })
  }

  /**
   * Resolves once a write made on the connection is on the replicas; call as soon as its reply came (in the same turn,
   * with no other I/O between).
   * @throws ConnectionChangedError when the connection was made again since the reply (the write may be lost: write
   *   again); the Redis error when WAIT itself is refused
   */
  async confirm (): Promise<void> {
    const generation = this.#generation
    const n = ++this.#replied
    for (;;) {
      let wait = this.#last
      if (wait === null || wait.covers < n || wait.generation !== generation) wait = this.#schedule()
      let acked: number
      try {
        acked = await wait.answer
      } catch (err) {
        if (this.#generation !== generation) throw this.#changed()
        throw err
      }
      if (this.#generation !== generation) throw this.#changed()
      if (acked >= this.#replicas) {
        this.#enough(acked)
        return
      }
      this.#short(acked)
      if (this.#last === wait) this.#last = null // the next confirm sends a new WAIT
    }
  }

  /** The error for a write whose connection was made again; logged once per connection. */
  #changed (): ConnectionChangedError {
    if (this.#changedLogged !== this.#generation) {
      this.#changedLogged = this.#generation
      this.#log.info('the Redis connection of feed appends was made again (a failover?) before the replicas confirmed some: they are written again')
    }
    return new ConnectionChangedError()
  }

  /** A WAIT sent once this turn's replies are in; writes replied to until then join it. */
  #schedule (): Wait {
    const wait: Wait = { covers: Infinity, generation: this.#generation, answer: Promise.resolve(0) }
    wait.answer = new Promise<number>((resolve, reject) => {
      setImmediate(() => {
        wait.covers = this.#replied
        this.#conn.wait(this.#replicas, this.#timeoutMs).then(resolve, reject)
      })
    })
    this.#last = wait
    return wait
  }

  #short (acked: number): void {
    const now = Date.now()
    this.#shortSince ??= now
    if (now - this.#loggedAt < 10_000) return
    this.#loggedAt = now
    this.#log.warn({ wanted: this.#replicas, acknowledged: acked, waitingMs: now - this.#shortSince },
      'feed messages wait for Redis replicas (--redis-min-replicas): fewer acknowledge; their publishes are not acknowledged until enough do')
  }

  #enough (acked: number): void {
    if (this.#shortSince === null) return
    this.#log.info({ wanted: this.#replicas, acknowledged: acked, waitedMs: Date.now() - this.#shortSince }, 'feed messages reach enough Redis replicas again')
    this.#shortSince = null
    this.#loggedAt = 0
  }
}
