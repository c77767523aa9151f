/**
 * Admission control: whether a node takes a new connection, decided when it arrives, before any MQTT or
 * authentication work, so that beyond its limits a node refuses early and cheaply and keeps serving the viewers it has.
 *
 * Checks, in order (the first that fails is the reason):
 *  1. `overload`: the event loop lags beyond `overloadLagMs` (admission/lag.ts), whatever the rate says;
 *  2. `max-connections`: the node holds `maxConnections` connections (every socket from accept, on each listener:
 *     the WebSocket listener's too, whether they upgrade or not, each until it closes);
 *  3. `address-connections`: the peer's address holds `maxConnsPerAddress`;
 *  4. `address-rate`: the peer's address opened more than `maxConnRatePerAddress` a second (a bucket of one second);
 *  5. `rate`: new connections beyond `maxConnRate` a second with bursts of `maxConnBurst` (one token bucket per
 *     node, shared by every listener: what it protects, the node's CPU and event loop, is per node, and a herd on one
 *     listener must not get more because another is idle).
 * Later, `login-busy`: a CONNECT whose password the node has no capacity to check (auth/password-gate.ts) is refused
 * with CONNACK 3 by the connect hook, and counted here ({@link Admission.refuse}).
 * A limit of 0 is off. Refusals are counted by reason and logged as one summary line per interval.
 * Beyond `maxRefusalRate` clear refusals a second, or while `maxSocketsOpen` connections, held and refused, are open, new
 * connections are closed at accept without an answer (shed.ts).
 */
import { readFileSync, readdirSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../log.js'
import { TokenBucket } from './token-bucket.js'
import { LagMonitor } from './lag.js'
import { Shedder } from './shed.js'
import type { Server } from 'node:net'
import type { Duplex } from 'node:stream'

/** Why a connection was refused. */
export type RefusalReason = 'draining' | 'overload' | 'max-connections' | 'address-connections' | 'address-rate' | 'rate' | 'login-busy'

export const REFUSAL_REASONS: readonly RefusalReason[] = ['draining', 'overload', 'max-connections', 'address-connections', 'address-rate', 'rate', 'login-busy']

/** The limits; 0 turns one off. Rates per second, times in ms. */
export interface AdmissionLimits {
  maxConnections: number
  maxConnRate: number
  maxConnBurst: number
  maxConnsPerAddress: number
  maxConnRatePerAddress: number
  overloadLagMs: number
  /** Clear refusals (CONNACK 3, HTTP 503) a second, and at once, before new connections are shed (shed.ts). */
  maxRefusalRate: number
  /**
   * Connections held and refused ones still open (each refused one is kept up to 2 s to be answered,
   * admission/refuse.ts), together, beyond which new connections are shed at accept, so that the node never runs out
   * of file descriptors; 0 or absent: no bound (main.ts sets it from the open-file limit).
   */
  maxSocketsOpen?: number
}

/** What `/healthz` shows. */
export interface AdmissionStats {
  /** Connections held now. */
  connections: number
  /** Connections taken since start. */
  accepted: number
  /** Connections refused since start, by reason. */
  refused: Record<RefusalReason, number>
  /** Connections closed at accept without an answer since start (the clear refusals' budget was spent). */
  shed: number
  /** True while new connections are closed at accept. */
  shedding: boolean
  /**
   * Connections closed at once without an answer because their address was over its own limits and had had its
   * answers ({@link ADDRESS_ANSWERS_PER_S}); counted in `refused` too.
   */
  addressDropped: number
  /** True while overload protection refuses new connections. */
  overloaded: boolean
  /** The last sampled event-loop lag, ms. */
  lagMs: number
}

/**
 * Refusals answered a second (and at once) to one address over its own limits (`address-connections`,
 * `address-rate`); beyond, its new connections are closed without an answer. These refusals never spend the node's
 * shared budget of answers (shed.ts): one address over its share must not make the node shed everyone else.
 */
export const ADDRESS_ANSWERS_PER_S = 50

/** The longest Retry-After given, seconds. */
export const MAX_RETRY_AFTER_S = 30

/** How often the refusals are summed up in one log line, ms. */
export const SUMMARY_MS = 10_000

/**
 * Retry-After (seconds) a refused client is given, by reason; the client adds its own jitter. A draining node says 1:
 * the client library waits at least the Retry-After before any next attempt, on any of its URLs, and a viewer turned
 * away by a node that is leaving should go to the next one soon.
 */
const RETRY_AFTER_S: Record<RefusalReason, number> = {
  draining: 1,
  overload: 2,
  'max-connections': 5,
  'address-connections': 5,
  'address-rate': 1,
  rate: 1,
  'login-busy': 1
}

const zeroCounts = (): Record<RefusalReason, number> => ({ draining: 0, overload: 0, 'max-connections': 0, 'address-connections': 0, 'address-rate': 0, rate: 0, 'login-busy': 0 })

/** How a refused client was answered on a listener of this protocol, for the summary lines (refuse.ts). */
const ANSWER: Record<string, { returnCode?: number, status?: number }> = { mqtt: { returnCode: 3 }, ws: { status: 503 }, wss: { status: 503 }, mqtts: {} }

export class Admission {
  readonly limits: Readonly<AdmissionLimits>
  readonly #log: Logger
  readonly #bucket: TokenBucket | null
  readonly #lag: LagMonitor | null
  readonly #shedder: Shedder
  #shedAtSummary = 0
  /** Connections held per address (only when a per-address limit is on). */
  readonly #perAddress = new Map<string, number>()
  readonly #addressBuckets = new Map<string, TokenBucket>()
  /** Answers left to addresses refused for their own limits ({@link ADDRESS_ANSWERS_PER_S}). */
  readonly #addressAnswers = new Map<string, TokenBucket>()
  /** Connections of addresses over their own limits closed without an answer, since start. */
  #addressDropped = 0
  readonly #trackAddresses: boolean
  readonly #timer: NodeJS.Timeout
  #connections = 0
  #accepted = 0
  #acceptedSinceSummary = 0
  readonly #refused = zeroCounts()
  /** Refusals since the last summary, by listener name (`''` when the caller gave none). */
  #refusedSinceSummary = new Map<string, Record<RefusalReason, number>>()
  #draining = false
  /**
   * Rate refusals in the current one-second window and in the one before, and connections shed in the one before and
   * the shed count when the current one started (for Retry-After).
   */
  #rateRefusedNow = 0
  #rateRefusedBefore = 0
  #shedBefore = 0
  #shedAtWindowStart = 0
  #windowStart = 0
  /** Refused connections not yet closed (passed to admit). */
  #refusedOpen = 0
  readonly #onRefusedClose = (): void => { this.#refusedOpen-- }

  /**
   * @param limits the limits (see the module comment); 0 turns one off
   * @param log where the summary lines go (warn when something was refused in the interval)
   */
  constructor (limits: AdmissionLimits, log: Logger) {
    this.limits = Object.freeze({ ...limits })
    this.#log = log
    const now = performance.now()
    this.#bucket = limits.maxConnRate > 0 ? new TokenBucket(limits.maxConnRate, Math.max(1, limits.maxConnBurst), now) : null
    this.#lag = limits.overloadLagMs > 0 ? new LagMonitor(limits.overloadLagMs) : null
    this.#shedder = new Shedder(limits.maxRefusalRate)
    this.#trackAddresses = limits.maxConnsPerAddress > 0 || limits.maxConnRatePerAddress > 0
    this.#timer = setInterval(() => this.#summary(), SUMMARY_MS)
    this.#timer.unref()
  }

  /**
   * Decides on a new connection from `peer` (its address) on `listener` (its name, e.g. `ws:8080`, for the summary
   * lines) and, when it is taken, counts it (call {@link Admission.release} when it closes).
   * @param socket the connection: when refused, it is counted as open until it closes (see `maxSocketsOpen`)
   * @returns null when taken, else the reason it is refused
   */
  admit (peer: string, listener = '', socket?: Duplex): RefusalReason | null {
    const address = this.#trackAddresses ? addressKey(peer) : peer
    const reason = this.#check(address)
    if (reason !== null) {
      if (reason === 'rate') {
        this.#rollWindow(performance.now(), this.#shedder.shedCount)
        this.#rateRefusedNow++
      }
      const byAddress = reason === 'address-connections' || reason === 'address-rate'
      if (byAddress && socket !== undefined && !this.#answerAddress(address)) {
        // Over its own limits and its answers: closed now, without an answer (the caller's answer finds it closed).
        this.#count(reason, listener)
        this.#addressDropped++
        socket.destroy()
        return reason
      }
      if (socket !== undefined) {
        this.#refusedOpen++
        socket.once('close', this.#onRefusedClose)
      }
      if (!byAddress) {
        this.refuse(reason, listener)
        return reason
      }
      // The open-file bound still holds (shed whatever the budget says); the budget of answers is not spent.
      this.#count(reason, listener)
      const maxOpen = this.limits.maxSocketsOpen ?? 0
      if (maxOpen > 0 && this.#connections + this.#refusedOpen >= maxOpen) this.#shedder.shed()
      return reason
    }
    this.#connections++
    this.#accepted++
    this.#acceptedSinceSummary++
    if (this.limits.maxConnsPerAddress > 0) this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1)
    return null
  }

  /**
   * Counts a refusal made after the connection was taken, by what it asked for (`login-busy`: CONNACK 3 to a CONNECT
   * whose password the node had no capacity to check, auth/password-gate.ts), as {@link Admission.admit} counts its
   * own: by reason and listener, in the summary lines, and against the clear refusals' budget (shed.ts).
   */
  refuse (reason: RefusalReason, listener = ''): void {
    this.#count(reason, listener)
    const maxOpen = this.limits.maxSocketsOpen ?? 0
    if (maxOpen > 0 && this.#connections + this.#refusedOpen >= maxOpen) this.#shedder.shed()
    else this.#shedder.refused()
  }

  /** True while `address` may still be answered for a refusal over its own limits ({@link ADDRESS_ANSWERS_PER_S}). */
  #answerAddress (address: string): boolean {
    const now = performance.now()
    let bucket = this.#addressAnswers.get(address)
    if (bucket === undefined) {
      bucket = new TokenBucket(ADDRESS_ANSWERS_PER_S, ADDRESS_ANSWERS_PER_S, now)
      this.#addressAnswers.set(address, bucket)
    }
    return bucket.take(now)
  }

  /** Counts a refusal by reason and listener (the totals and the summary lines). */
  #count (reason: RefusalReason, listener: string): void {
    this.#refused[reason]++
    let counts = this.#refusedSinceSummary.get(listener)
    if (counts === undefined) {
      counts = zeroCounts()
      this.#refusedSinceSummary.set(listener, counts)
    }
    counts[reason]++
  }

  /** Lets shedding close new connections of this listener's server at accept (shed.ts). */
  attach (server: Server): void {
    this.#shedder.attach(server)
  }

  /** A connection taken by {@link Admission.admit} closed (`peer` as given to it). */
  release (peer: string): void {
    this.#connections--
    if (this.limits.maxConnsPerAddress > 0) {
      const address = addressKey(peer)
      const n = (this.#perAddress.get(address) ?? 1) - 1
      if (n > 0) this.#perAddress.set(address, n)
      else this.#perAddress.delete(address)
    }
  }

  /**
   * Seconds a client refused for `reason` should wait before it tries this node again (HTTP Retry-After). For the rate,
   * a random whole number from 1 to 1 + the backlog's length in seconds (the rate refusals and the connections shed
   * in the last 1-2 s, over `maxConnRate`, at most {@link MAX_RETRY_AFTER_S}): the clients refused in a herd are told
   * to come back spread over the time the node needs to take them, instead of all after 1 s to be refused again (a
   * refusal costs the node a third to half of a join, bench/RESULTS.md). The shed count matters: answered refusals
   * stop at `--max-refusal-rate`, so without it the backlog would look no longer than 1-2 s however many wait.
   */
  retryAfter (reason: RefusalReason): number {
    if (reason !== 'rate' || this.limits.maxConnRate === 0) return RETRY_AFTER_S[reason]
    const shed = this.#shedder.shedCount
    this.#rollWindow(performance.now(), shed)
    const waiting = this.#rateRefusedNow + this.#rateRefusedBefore + (shed - this.#shedAtWindowStart) + this.#shedBefore
    const backlog = Math.min(MAX_RETRY_AFTER_S, waiting / this.limits.maxConnRate)
    return 1 + Math.floor(Math.random() * (backlog + 1))
  }

  /** Starts a new one-second window of rate refusals (and sheds) when the current one is over. */
  #rollWindow (now: number, shed: number): void {
    if (now - this.#windowStart < 1000) return
    const recent = now - this.#windowStart < 2000
    this.#rateRefusedBefore = recent ? this.#rateRefusedNow : 0
    this.#shedBefore = recent ? shed - this.#shedAtWindowStart : 0
    this.#rateRefusedNow = 0
    this.#shedAtWindowStart = shed
    this.#windowStart = now
  }

  /**
   * True while the node drains (drain.ts): every new connection is refused (`draining`), before any other check.
   * Set back to false to take connections again.
   */
  get draining (): boolean {
    return this.#draining
  }

  set draining (on: boolean) {
    this.#draining = on
  }

  /** True while overload protection refuses new connections. */
  get overloaded (): boolean {
    return this.#lag?.overloaded() ?? false
  }

  /** True when the node holds as many connections as it may. */
  get full (): boolean {
    return this.limits.maxConnections > 0 && this.#connections >= this.limits.maxConnections
  }

  stats (): AdmissionStats {
    return {
      connections: this.#connections,
      accepted: this.#accepted,
      refused: { ...this.#refused },
      shed: this.#shedder.shedCount,
      shedding: this.#shedder.shedding,
      addressDropped: this.#addressDropped,
      overloaded: this.overloaded,
      lagMs: Math.round(this.#lag?.lastLagMs ?? 0)
    }
  }

  /** Stops the timers (and writes the last summary). */
  close (): void {
    clearInterval(this.#timer)
    this.#lag?.close()
    this.#shedder.close()
    this.#summary()
  }

  #check (address: string): RefusalReason | null {
    if (this.#draining) return 'draining'
    if (this.#lag?.overloaded() === true) return 'overload'
    if (this.full) return 'max-connections'
    if (this.#trackAddresses) {
      if (this.limits.maxConnsPerAddress > 0 && (this.#perAddress.get(address) ?? 0) >= this.limits.maxConnsPerAddress) return 'address-connections'
      if (this.limits.maxConnRatePerAddress > 0) {
        const now = performance.now()
        let bucket = this.#addressBuckets.get(address)
        if (bucket === undefined) {
          bucket = new TokenBucket(this.limits.maxConnRatePerAddress, this.limits.maxConnRatePerAddress, now)
          this.#addressBuckets.set(address, bucket)
        }
        if (!bucket.take(now)) return 'address-rate'
      }
    }
    if (this.#bucket !== null && !this.#bucket.take(performance.now())) return 'rate'
    return null
  }

  /**
   * The summary of the last interval, if anything was refused: one line per listener and reason, with the field names
   * of every refusal line (connection-log.ts: `reason`, `transport`, `listener`, `returnCode`; `status` for an HTTP
   * answer) and `refused`, the count; one line for connections shed at accept. Never a line per refusal.
   */
  #summary (): void {
    const refused = this.#refusedSinceSummary
    this.#refusedSinceSummary = new Map()
    const accepted = this.#acceptedSinceSummary
    this.#acceptedSinceSummary = 0
    const lagMaxMs = Math.round(this.#lag?.takeMax() ?? 0)
    // Per-address buckets that are full again hold nothing worth keeping.
    const now = performance.now()
    for (const [address, bucket] of this.#addressBuckets) if (bucket.full(now)) this.#addressBuckets.delete(address)
    for (const [address, bucket] of this.#addressAnswers) if (bucket.full(now)) this.#addressAnswers.delete(address)
    const shedNow = this.#shedder.shedCount
    const shed = shedNow - this.#shedAtSummary
    this.#shedAtSummary = shedNow
    const context = { accepted, connections: this.#connections, lagMaxMs, intervalMs: SUMMARY_MS }
    for (const [listener, counts] of refused) {
      // Listener names are `<protocol>:<port>` (listeners/plan.ts).
      const transport = listener === '' ? undefined : listener.split(':')[0]
      for (const reason of REFUSAL_REASONS) {
        if (counts[reason] === 0) continue
        // A CONNECT refused (login-busy) is answered CONNACK 3 whatever carried it.
        const answer = reason === 'login-busy' ? { returnCode: 3 } : ANSWER[transport ?? '']
        this.#log.warn({ reason, transport, listener: listener === '' ? undefined : listener, ...answer, refused: counts[reason], ...context },
          `admission: refused ${counts[reason]} new connections (${reason})${listener === '' ? '' : ` on ${listener}`} in the last ${SUMMARY_MS / 1000} s`)
      }
    }
    if (shed > 0) this.#log.warn({ reason: 'shed', shed, ...context }, `admission: closed ${shed} new connections at accept without an answer (over --max-refusal-rate, or too many refused connections still closing) in the last ${SUMMARY_MS / 1000} s`)
  }
}

/**
 * What the per-address limits count by: an IPv4 address (also when it comes IPv4-mapped, `::ffff:a.b.c.d`, on a
 * dual-stack listener), or an IPv6 address's /64 (one host, or one customer of an ISP, usually holds a whole /64).
 */
export function addressKey (address: string): string {
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7)
  if (!address.includes(':')) return address
  const [head, tail] = address.split('%')[0].split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? left : [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`
}

/**
 * The soft limit on open files of this process (Linux: /proc/self/limits), or undefined when it cannot be read.
 * Each connection holds one; a node that reaches it fails to accept (EMFILE) instead of refusing clearly.
 */
export function openFileLimit (): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0]
    return soft === undefined || soft === 'unlimited' ? undefined : Number(soft)
  } catch {
    return undefined
  }
}

/**
 * The files this process has open now (Linux: the entries of /proc/self/fd), or 0 when they cannot be listed.
 * Taken once the stores are open, it is the node's own share (store, Redis, logs, Node's internals: about 20 on an
 * idle node with the in-memory store) that the connection limits must leave free.
 */
export function openFileCount (): number {
  try {
    return readdirSync('/proc/self/fd').length
  } catch {
    return 0
  }
}
