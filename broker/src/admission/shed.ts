/**
 * Shedding: the second tier of admission control. A clear refusal (CONNACK 3, HTTP 503) still costs the node about
 * 100-160 µs of CPU, mostly Node's own socket and stream set-up (bench/RESULTS.md, "refusal cost"), a third of a
 * join; in a storm of many times the rate, and with refused clients retrying, clear refusals alone can take a core and
 * starve the viewers the node already serves. So clear refusals have a budget (`maxRefusalRate` a second, in bursts of
 * a tenth of that, {@link refusalBurst}: a clump of 1,200 answers at once held the loop 200 ms and lifted the viewers'
 * p99 2-3 times in a storm, bench/RESULTS.md): once it is spent, the node closes new connections at accept, for {@link SHED_MS} at a time, without an
 * answer. That is Node's own `server.maxConnections` mechanism (net.Server, event 'drop'): the accepted handle is
 * closed before any socket or stream object is made, about a fifth of a clear refusal's cost. The client sees the
 * connection closed or reset, and retries with its backoff, as after any network failure (as Envoy's overload manager
 * stops accepting, and HAProxy's maxconn leaves connections to the kernel).
 * Listeners that must stay answerable (`--metrics-port`: /healthz, /readyz) are never attached.
 */
import { performance } from 'node:perf_hooks'
import type { Server } from 'node:net'
import { TokenBucket } from './token-bucket.js'

/** How long one shedding period lasts, ms: the budget regains rate / 10 refusals meanwhile. */
export const SHED_MS = 100

/**
 * A `maxConnections` below any connection count: Node's accept callback closes every new connection while it is set
 * (net.js onconnection: `if (maxConnections && connections >= maxConnections)`, Node 18.6+ also emits 'drop').
 */
const DROP_ALL = -1

/**
 * The clear refusals a node answers at once, out of `maxRefusalRate` a second: a tenth of a second's worth, at least 1
 * (120 at the default 1,200/s, about 20 ms of the loop).
 */
export function refusalBurst (maxRefusalRate: number): number {
  return Math.max(1, Math.ceil(maxRefusalRate / 10))
}

export class Shedder {
  readonly #budget: TokenBucket | null
  readonly #servers = new Set<Server>()
  #timer: NodeJS.Timeout | null = null
  #shed = 0
  #periods = 0
  readonly #onDrop = (): void => { this.#shed++ }

  /**
   * @param maxRefusalRate clear refusals a second (at most {@link refusalBurst} of them at once) before shedding
   *   starts; 0: never shed
   */
  constructor (maxRefusalRate: number) {
    this.#budget = maxRefusalRate > 0 ? new TokenBucket(maxRefusalRate, refusalBurst(maxRefusalRate), performance.now()) : null
  }

  /** Lets shedding close new connections of `server` (a listener of MQTT, MQTT/TLS or WebSocket connections). */
  attach (server: Server): void {
    this.#servers.add(server)
    server.on('drop', this.#onDrop)
    if (this.#timer !== null) server.maxConnections = DROP_ALL
  }

  /** A connection was refused clearly; when that spends the last of the budget, shedding starts. */
  refused (): void {
    if (this.#budget === null || this.#timer !== null || this.#budget.take(performance.now())) return
    this.#start()
  }

  /**
   * Starts a shedding period now, whatever the budget (and also when `maxRefusalRate` is 0): refused connections
   * still open would otherwise take the file descriptors the node needs (admission.ts, `maxSocketsOpen`).
   */
  shed (): void {
    if (this.#timer === null) this.#start()
  }

  #start (): void {
    this.#periods++
    for (const server of this.#servers) server.maxConnections = DROP_ALL
    this.#timer = setTimeout(() => this.#stop(), SHED_MS)
    this.#timer.unref()
  }

  /** True while new connections are closed at accept. */
  get shedding (): boolean {
    return this.#timer !== null
  }

  /** Connections closed at accept since start (read on every rate refusal: no object made). */
  get shedCount (): number {
    return this.#shed
  }

  /** Connections closed at accept, and the shedding periods, since start. */
  stats (): { shed: number, periods: number } {
    return { shed: this.#shed, periods: this.#periods }
  }

  /** Ends shedding (at shutdown). */
  close (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#stop()
  }

  #stop (): void {
    this.#timer = null
    // 0 is Node's "no limit" (the check is on a truthy maxConnections).
    for (const server of this.#servers) server.maxConnections = 0
  }
}
