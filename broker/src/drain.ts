/**
 * Drain: a node leaves without a herd (node.drain, SIGTERM with --drain-seconds). It stops taking new connections
 * (admission refuses them as `draining`: CONNACK 3 over MQTT/TCP, HTTP 503 with Retry-After for a WebSocket upgrade, a
 * close before the handshake over TLS), `/readyz` answers 503 from that moment (main.ts), and the clients it holds are
 * disconnected at an even rate over the drain's seconds, so that they reconnect to other nodes spread out in time
 * instead of all at once. Then the node closes (SIGTERM) or stays up, empty and refusing, until {@link Drain.stop}.
 *
 * The pace: the clients held when the drain starts are put in order (viewers first, then publishers, then operators:
 * publishing goes on while viewers move, and the operator who asked for the drain sees it through) and every tick
 * closes the first ceil(n x elapsed / duration) of them; a client that left by itself still takes its turn, so the
 * schedule does not speed up. At the end, whoever is still connected (a CONNECT under way when the drain began) is
 * closed too, and so is a client that completes its CONNECT while the node stays drained.
 */
import type { Client } from 'aedes'
import type { Logger } from './log.js'

/** The longest drain accepted, seconds (a day). */
export const MAX_DRAIN_SECONDS = 86_400

/** The shortest and longest time between two ticks of the pace, ms. */
const TICK_MIN_MS = 10
const TICK_MAX_MS = 100

/** How long the end of a drain waits for the last clients to leave the table, ms. */
const END_GRACE_MS = 2000

/** What a drain works on: the node's clients, their order, how one is closed, and its admission control. */
export interface DrainTarget {
  /** The clients connected now. */
  clients: () => Client[]
  /** Where a client goes in the order (lower first). */
  rank: (client: Client) => number
  /** Closes a client for the drain (its disconnect line says `drain`). */
  disconnect: (client: Client) => void
  /** The node's admission control: refuses every new connection while `draining` is true. */
  admission: { draining: boolean }
  log: Logger
}

/** One drain under way. */
interface Run {
  queue: Client[]
  next: number
  started: number
  ms: number
  timer: NodeJS.Timeout
  /** When every client still connected was closed, after the duration (0 before). */
  sweptAt: number
  /** Called with true when the drain completes, false when it is stopped first. */
  settle: Array<(completed: boolean) => void>
}

export class Drain {
  readonly #target: DrainTarget
  #run: Run | null = null
  #closed = false

  constructor (target: DrainTarget) {
    this.#target = target
  }

  /** True from {@link Drain.start} until {@link Drain.stop}: new connections are refused and /readyz says 503. */
  get draining (): boolean {
    return this.#target.admission.draining
  }

  /**
   * Starts draining: new connections are refused from now on, and the clients held now are disconnected at an even
   * rate over `seconds` (0: all at once). A drain already under way is planned again, its remaining clients over the
   * new `seconds` from now.
   * @param seconds the drain's duration, 0 to {@link MAX_DRAIN_SECONDS}
   * @returns resolves with true once every client is gone (the node then holds none, and keeps refusing until
   *   {@link Drain.stop}), or false when the drain is stopped or the node closes first
   * @throws RangeError when `seconds` is not a number from 0 to {@link MAX_DRAIN_SECONDS}; Error when the node is closing
   */
  async start (seconds: number): Promise<boolean> {
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_DRAIN_SECONDS) {
      throw new RangeError(`drain: seconds must be a number from 0 to ${MAX_DRAIN_SECONDS}, got ${JSON.stringify(seconds) ?? String(seconds)}`)
    }
    if (this.#closed) throw new Error('drain: the node is closing')
    this.#target.admission.draining = true
    const settle = this.#run?.settle ?? []
    if (this.#run !== null) clearInterval(this.#run.timer)
    // Ranked once each; Array.prototype.sort is stable: clients of one rank keep the table's order (their arrival).
    const queue = this.#target.clients().filter((c) => !c.closed).map((client) => ({ client, rank: this.#target.rank(client) }))
      .sort((a, b) => a.rank - b.rank).map((r) => r.client)
    const ms = seconds * 1000
    const tickMs = Math.min(TICK_MAX_MS, Math.max(TICK_MIN_MS, queue.length > 0 ? ms / queue.length : TICK_MAX_MS))
    const run: Run = { queue, next: 0, started: Date.now(), ms, timer: setInterval(() => this.#tick(run), tickMs), sweptAt: 0, settle }
    this.#run = run
    this.#target.log.info({ clients: queue.length, seconds }, `draining: refusing new connections, disconnecting ${queue.length} clients over ${seconds} s`)
    const done = new Promise<boolean>((resolve) => settle.push(resolve))
    this.#tick(run)
    return await done
  }

  /** A client completed its CONNECT: while the node stays drained (or the drain's end is past) it is closed at once. */
  connected (client: Client): void {
    if (!this.draining) return
    if (this.#run === null || this.#run.sweptAt > 0) this.#target.disconnect(client)
  }

  /**
   * Ends draining (the node takes new connections again, /readyz answers 200 when nothing else is wrong); a drain
   * under way stops where it is, and the clients not yet disconnected stay. Does nothing when not draining.
   */
  stop (): void {
    if (!this.draining) return
    this.#target.admission.draining = false
    const run = this.#end(false)
    this.#target.log.info({ left: run === null ? 0 : run.queue.length - run.next }, 'drain stopped: taking new connections again')
  }

  /** The node closes: a drain under way stops (its promise resolves with false); no drain starts after this. */
  close (): void {
    this.#closed = true
    this.#end(false)
  }

  #tick (run: Run): void {
    if (this.#run !== run) return
    const now = Date.now()
    const elapsed = now - run.started
    const total = run.queue.length
    const due = elapsed >= run.ms ? total : Math.min(total, Math.ceil(total * elapsed / run.ms))
    while (run.next < due) {
      const client = run.queue[run.next++]
      if (!client.closed) this.#target.disconnect(client)
    }
    // Before the end, unless nobody is left to pace (none to begin with, or all gone by themselves).
    if (elapsed < run.ms && (run.next < total || this.#target.clients().length > 0)) return
    if (run.sweptAt === 0) {
      run.sweptAt = now
      for (const client of this.#target.clients()) if (!client.closed) this.#target.disconnect(client)
    }
    const left = this.#target.clients().length
    if (left > 0 && now - run.sweptAt < END_GRACE_MS) return
    this.#end(true)
    const fields = { disconnected: total, ms: now - run.started, ...(left > 0 ? { left } : {}) }
    this.#target.log.info(fields, left > 0 ? `drained, but ${left} clients have not left yet` : `drained: ${total} clients disconnected; refusing new connections until the drain is stopped`)
  }

  /** Stops the run under way, if any, and settles its promises. */
  #end (completed: boolean): Run | null {
    const run = this.#run
    if (run === null) return null
    clearInterval(run.timer)
    this.#run = null
    for (const settle of run.settle) settle(completed)
    return run
  }
}
