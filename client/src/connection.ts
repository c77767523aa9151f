// The viewer's connection to one of its broker URLs: which URL to try (TargetRotation), when (reconnectDelay: full
// jitter, plus a floor after a refusal), and how a refusal is recognised (refusal.ts). Imports only 'mqtt' and
// standard APIs, so it runs in the browser too.
//
// How the target changes: one MQTT.js client per URL, made up front with `manualConnect` and MQTT.js's own reconnect
// off; the connection uses one at a time and, when its connection closes, starts the next URL's client after the
// delay. MQTT.js 5 offers two other ways, neither fit: its `servers` option cycles host/port/protocol only (one path
// and one set of credentials for all, so ws://a/mqtt next to wss://b/live does not work, and the order and timing are
// its own), and a client's stream builder is private (the public constructor takes one, but the builders that know
// each protocol, and the browser's, are reachable only through `mqtt.connect`). A viewer's session is clean (nothing
// to carry from one node to the next: FeedSubscription resumes by position), so separate clients lose nothing.

import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { reconnectDelay, type AttemptFailure, type BackoffOptions } from './backoff.js'
import { ServerUnavailableError, closedBeforeAnswer, unavailableConnackCode, upgradeRefusalHook, type FinishRequest } from './refusal.js'

/** True where a refused WebSocket upgrade cannot be told from other failures: outside Node (browsers, TV apps). */
const OPAQUE_UPGRADES = typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node !== 'string'
import { RegionRotation, type BrokerTarget } from './targets.js'

/** Payload of the `reconnecting` event: the next attempt and why. */
export interface ReconnectInfo {
  /** 1 for the first retry since the last successful connect (CONNACK 0), 2 for the next, ... */
  readonly attempt: number
  /** Delay before this retry, ms. */
  readonly delayMs: number
  /** The broker URL the retry goes to (the next one in the shuffled order; the same one when there is one). */
  readonly url: string
  /** The broker URL whose attempt failed or whose connection was lost. */
  readonly lastUrl: string
  /** True if `lastUrl` refused the connection as overloaded (CONNACK 3, or HTTP 503/429 where it can be seen). */
  readonly refused: boolean
  /** The refusal's Retry-After in ms, when the server sent one and the platform let us read it (Node, WebSocket). */
  readonly retryAfterMs?: number
  /** With several regions: the index of the region `url` belongs to. */
  readonly region?: number
}

/** Payload of the `region` event: the client moved to another region, whose first attempt follows. */
export interface RegionChange {
  /** Index of the region moved to, in the order given (0: the viewer's own). */
  readonly index: number
  /** Index of the region left. */
  readonly previous: number
  /** The URLs of the region moved to, in the order they are tried. */
  readonly urls: readonly string[]
  /** How long the viewer had been without a connection when it moved, ms. */
  readonly downMs: number
}

/** Default time without a connection after which a client with several regions moves to the next one, ms. */
export const DEFAULT_REGION_TIMEOUT_MS = 15_000

/** What a {@link BrokerConnection} reports; the Viewer turns these into its events. */
export interface ConnectionHandlers {
  /** CONNACK 0 from `url`. */
  readonly connect: (url: string) => void
  /** The established connection to `url` was lost (or closed by {@link BrokerConnection.close}). */
  readonly disconnect: (url: string) => void
  /** A retry is scheduled. */
  readonly reconnecting: (info: ReconnectInfo) => void
  /** A connection error, or a {@link ServerUnavailableError} for a refusal. */
  readonly error: (error: Error) => void
  /** A PUBLISH received on the connection in use. */
  readonly message: (topic: string, payload: Uint8Array, retain: boolean) => void
  /** Moved to another region (several regions only); called before the first attempt there. */
  readonly region?: (change: RegionChange) => void
}

/** Options of a {@link BrokerConnection}. */
export interface ConnectionOptions {
  /** MQTT.js options for every URL's client (`manualConnect` and `reconnectPeriod` are set here). */
  readonly mqtt: IClientOptions
  /** Backoff (validated, defaults filled in), or null to never retry. */
  readonly backoff: Required<BackoffOptions> | null
  /** Random source in [0, 1) for the URL order and the jitter. */
  readonly random: () => number
  /**
   * With several regions: ms without a connection (since it was lost, or since the start) after which the next
   * attempt goes to the next region; default {@link DEFAULT_REGION_TIMEOUT_MS}.
   */
  readonly regionTimeoutMs?: number
}

/**
 * A client id for one connection attempt: `tribune_` and 16 random hex digits. A clean-session viewer has nothing to
 * keep under its id, and a new one per attempt keeps a stale CONNECT (an earlier attempt the viewer gave up on, still
 * in a busy node's accept queue) from taking over the viewer's live connection when the node reads it at last (a
 * CONNECT with a client id in use closes the other connection, MQTT 3.1.1 section 3.1.4, MQTT-3.1.4-2).
 */
export function freshClientId (): string {
  const bytes = new Uint8Array(8)
  globalThis.crypto.getRandomValues(bytes)
  return `tribune_${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`
}

/**
 * One live MQTT connection at a time, to one of several broker URLs: tries them in a shuffled order, stays on the one
 * that works, moves to the next on any failure (refused, timed out, connection lost) after the reconnect delay, and
 * resets the attempt count only on CONNACK 0. With several regions it does so within the region in use, and when no
 * connection was made there for `regionTimeoutMs` (an attempt under way is abandoned), it moves to the next region,
 * round and round, and stays there while it works.
 */
export class BrokerConnection {
  readonly #targets: RegionRotation
  readonly #clients = new Map<string, MqttClient>()
  readonly #started = new Set<MqttClient>()
  readonly #backoff: Required<BackoffOptions> | null
  readonly #random: () => number
  readonly #handlers: ConnectionHandlers
  readonly #protocolVersion: number
  /** A new client id for each attempt (clean session, none given): see {@link freshClientId}. */
  readonly #freshIds: boolean
  #client: MqttClient
  #connected = false
  #closed = false
  /** True from the start of an attempt until its client's close: a second close of it is ignored. */
  #open = false
  #attempt = 0
  #failure: AttemptFailure = { refused: false }
  /** The first error of the current attempt, if any. */
  #attemptError: Error | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  readonly #regionTimeoutMs: number
  /** Fires when the region in use has been without a connection for regionTimeoutMs (several regions only). */
  #regionTimer: ReturnType<typeof setTimeout> | undefined
  /** When the connection was lost (or the start), for the region event's downMs. */
  #downSince = Date.now()
  /** Set when the region timer abandoned the attempt under way: its close moves to the next region. */
  #regionExpired = false

  /**
   * Makes one MQTT.js client per URL of every region (not connected yet: call {@link BrokerConnection.start}).
   * @throws RangeError for an empty URL list or region list, a URL in two regions, or a bad regionTimeoutMs; Error
   *   from MQTT.js for a URL it cannot use (e.g. no protocol).
   */
  constructor (target: BrokerTarget, options: ConnectionOptions, handlers: ConnectionHandlers) {
    this.#targets = new RegionRotation(target, options.random)
    this.#regionTimeoutMs = options.regionTimeoutMs ?? DEFAULT_REGION_TIMEOUT_MS
    if (!(this.#regionTimeoutMs > 0) || !Number.isFinite(this.#regionTimeoutMs)) throw new RangeError(`regionTimeoutMs must be a finite number > 0, got ${String(options.regionTimeoutMs)}`)
    this.#backoff = options.backoff
    this.#random = options.random
    this.#handlers = handlers
    this.#protocolVersion = options.mqtt.protocolVersion ?? 4
    this.#freshIds = options.mqtt.clientId === undefined && options.mqtt.clean !== false
    for (const url of this.#targets.regions.flat()) {
      if (!this.#clients.has(url)) this.#clients.set(url, this.#createClient(url, options.mqtt))
    }
    this.#client = this.#clientOf(this.#targets.current)
  }

  /** The MQTT.js client of the URL in use (connected, being tried, or to be tried next). */
  get client (): MqttClient {
    return this.#client
  }

  /** The broker URL in use (connected, being tried, or to be tried next). */
  get url (): string {
    return this.#targets.current
  }

  /** The broker URLs of the region in use, in the order they are tried. */
  get urls (): readonly string[] {
    return this.#targets.order
  }

  /** The index of the region in use (0 with one region). */
  get region (): number {
    return this.#targets.region
  }

  /** Every region's broker URLs, each in the order they are tried. */
  get regions (): ReadonlyArray<readonly string[]> {
    return this.#targets.regions
  }

  /** True while connected (CONNACK 0 received and the connection not lost). */
  get connected (): boolean {
    return this.#connected
  }

  /** Starts the first attempt, on the first URL of the shuffled order. */
  start (): void {
    this.#downSince = Date.now()
    this.#tryCurrent()
  }

  /** Stops retrying for good (the connection in use, if any, stays up until {@link BrokerConnection.close}). */
  stop (): void {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#clearRegionTimer()
  }

  /**
   * Stops for good: no more attempts; ends every client that was started (the one in use with a DISCONNECT when
   * `graceful` and connected, the others at once). Resolves when MQTT.js has closed them.
   */
  async close (graceful: boolean): Promise<void> {
    this.stop()
    const force = !graceful || !this.#connected
    await Promise.all([...this.#started].map(async (client) => {
      await new Promise<void>((resolve) => { client.end(client === this.#client ? force : true, () => { resolve() }) })
    }))
  }

  #clientOf (url: string): MqttClient {
    const client = this.#clients.get(url)
    if (client === undefined) throw new Error(`no client for ${url}`) // cannot happen: one per URL of the order
    return client
  }

  #createClient (url: string, base: IClientOptions): MqttClient {
    // In Node, MQTT.js hands wsOptions to `ws`, whose finishRequest sees the HTTP answer to the upgrade; browsers
    // ignore wsOptions (their WebSocket shows no status).
    const wsOptions: Record<string, unknown> = { ...(base.wsOptions as Record<string, unknown> | undefined) }
    const finish = wsOptions.finishRequest as FinishRequest | undefined
    let self: MqttClient | undefined
    wsOptions.finishRequest = upgradeRefusalHook((status, retryAfterMs) => {
      if (self !== this.#client || !this.#open) return
      this.#failure = retryAfterMs !== undefined ? { refused: true, retryAfterMs } : { refused: true }
      this.#handlers.error(new ServerUnavailableError(url, { status, retryAfterMs }))
    }, finish)
    const client = mqtt.connect(url, {
      ...base,
      wsOptions: wsOptions as IClientOptions['wsOptions'],
      reconnectPeriod: 0,
      manualConnect: true
    })
    self = client
    // Events of a client not in use (none is expected: the next one starts after this one closed) are dropped.
    client.on('connect', () => { if (client === this.#client) this.#onConnect() })
    client.on('close', () => { if (client === this.#client) this.#onClose() })
    client.on('error', (err) => { if (client === this.#client) this.#onError(url, err) })
    client.on('message', (topic, payload, packet) => {
      if (client === this.#client) this.#handlers.message(topic, payload, packet.retain)
    })
    return client
  }

  #tryCurrent (): void {
    this.#timer = undefined
    if (this.#closed || this.#connected) return
    this.#armRegionTimer()
    const client = this.#clientOf(this.#targets.current)
    this.#client = client
    this.#failure = { refused: false }
    this.#attemptError = undefined
    this.#open = true
    if (this.#freshIds) client.options.clientId = freshClientId()
    if (this.#started.has(client)) {
      client.reconnect()
    } else {
      this.#started.add(client)
      client.connect()
    }
  }

  #onConnect (): void {
    if (this.#closed) return
    this.#connected = true
    this.#attempt = 0
    this.#clearRegionTimer()
    this.#handlers.connect(this.#targets.current)
  }

  /**
   * Starts the region deadline unless one runs (several regions, retrying): no connection within it moves to the next
   * region. Armed when the connection is lost, and by each attempt (so a region moved to gets its full time from its
   * first attempt); cleared by a connection.
   */
  #armRegionTimer (): void {
    if (this.#targets.count < 2 || this.#backoff === null || this.#closed || this.#regionTimer !== undefined) return
    this.#regionTimer = setTimeout(() => {
      this.#regionTimer = undefined
      this.#onRegionTimeout()
    }, this.#regionTimeoutMs)
  }

  #clearRegionTimer (): void {
    if (this.#regionTimer !== undefined) clearTimeout(this.#regionTimer)
    this.#regionTimer = undefined
  }

  #onRegionTimeout (): void {
    if (this.#closed || this.#connected) return
    if (this.#timer !== undefined) {
      // Waiting to retry in this region: go to the next one instead.
      clearTimeout(this.#timer)
      this.#timer = undefined
      this.#moveRegion(this.#targets.current)
      return
    }
    if (this.#open) {
      // An attempt under way (a node that does not answer can hold it for connectTimeoutMs): abandon it; its close
      // moves to the next region.
      this.#regionExpired = true
      this.#client.stream?.destroy()
    }
  }

  /** Moves to the next region and schedules its first attempt after the jitter of a first retry. */
  #moveRegion (lastUrl: string): void {
    this.#clearRegionTimer()
    const previous = this.#targets.region
    const index = this.#targets.nextRegion()
    const url = this.#targets.current
    this.#attempt = 0
    this.#handlers.region?.({ index, previous, urls: this.#targets.order, downMs: Date.now() - this.#downSince })
    if (this.#closed || this.#backoff === null) return
    const delayMs = reconnectDelay(0, { refused: false }, this.#backoff, this.#random)
    this.#attempt++
    // The new region's deadline starts with its first attempt (#tryCurrent), so it is always tried.
    this.#timer = setTimeout(() => { this.#tryCurrent() }, delayMs)
    this.#handlers.reconnecting({ attempt: this.#attempt, delayMs, url, lastUrl, refused: false, region: index })
  }

  #onError (url: string, err: Error): void {
    const code = unavailableConnackCode(err, this.#protocolVersion)
    this.#attemptError ??= err
    if (code === undefined) {
      this.#handlers.error(err)
      return
    }
    this.#failure = { refused: true }
    this.#handlers.error(new ServerUnavailableError(url, { code }))
  }

  #onClose (): void {
    const lastUrl = this.#targets.current
    const wasConnected = this.#connected
    this.#connected = false
    if (wasConnected) {
      this.#downSince = Date.now()
      this.#handlers.disconnect(lastUrl)
    }
    if (!this.#open) return
    this.#open = false
    if (this.#closed || this.#backoff === null) return
    if (this.#regionExpired) {
      this.#regionExpired = false
      this.#moveRegion(lastUrl)
      return
    }
    this.#armRegionTimer()
    // A browser's WebSocket shows no HTTP status: an upgrade refused with 503 looks like any failure before CONNACK.
    // And a node shedding load (beyond its budget of answered refusals) closes new connections at accept, with no
    // answer: a connection that was made, then closed or reset before any CONNACK. Count both as a refusal (wait the
    // refusal minimum), so viewers of a herd spread out; a node that cannot be reached (ECONNREFUSED, ENOTFOUND,
    // ETIMEDOUT, ...) is a plain failure, and the next URL is tried after the jitter alone.
    const shed = closedBeforeAnswer(this.#attemptError)
    const failure = !wasConnected && !this.#failure.refused && (shed || (OPAQUE_UPGRADES && /^wss?:/i.test(lastUrl))) ? { refused: true } : this.#failure
    const url = this.#targets.next()
    const delayMs = reconnectDelay(this.#attempt, failure, this.#backoff, this.#random)
    this.#attempt++
    this.#timer = setTimeout(() => { this.#tryCurrent() }, delayMs)
    this.#handlers.reconnecting({
      attempt: this.#attempt,
      delayMs,
      url,
      lastUrl,
      refused: failure.refused,
      ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {}),
      ...(this.#targets.count > 1 ? { region: this.#targets.region } : {})
    })
  }
}
