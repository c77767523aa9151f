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
import { TargetRotation, type BrokerUrls } from './targets.js'

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
}

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
}

/** Options of a {@link BrokerConnection}. */
export interface ConnectionOptions {
  /** MQTT.js options for every URL's client (`manualConnect` and `reconnectPeriod` are set here). */
  readonly mqtt: IClientOptions
  /** Backoff (validated, defaults filled in), or null to never retry. */
  readonly backoff: Required<BackoffOptions> | null
  /** Random source in [0, 1) for the URL order and the jitter. */
  readonly random: () => number
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
 * resets the attempt count only on CONNACK 0.
 */
export class BrokerConnection {
  readonly #targets: TargetRotation
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

  /**
   * Makes one MQTT.js client per URL (not connected yet: call {@link BrokerConnection.start}).
   * @throws RangeError for an empty URL list; Error from MQTT.js for a URL it cannot use (e.g. no protocol).
   */
  constructor (urls: BrokerUrls, options: ConnectionOptions, handlers: ConnectionHandlers) {
    this.#targets = new TargetRotation(urls, options.random)
    this.#backoff = options.backoff
    this.#random = options.random
    this.#handlers = handlers
    this.#protocolVersion = options.mqtt.protocolVersion ?? 4
    this.#freshIds = options.mqtt.clientId === undefined && options.mqtt.clean !== false
    for (const url of this.#targets.order) {
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

  /** Every broker URL, in the order they are tried. */
  get urls (): readonly string[] {
    return this.#targets.order
  }

  /** True while connected (CONNACK 0 received and the connection not lost). */
  get connected (): boolean {
    return this.#connected
  }

  /** Starts the first attempt, on the first URL of the shuffled order. */
  start (): void {
    this.#tryCurrent()
  }

  /** Stops retrying for good (the connection in use, if any, stays up until {@link BrokerConnection.close}). */
  stop (): void {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
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
    this.#handlers.connect(this.#targets.current)
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
    if (wasConnected) this.#handlers.disconnect(lastUrl)
    if (!this.#open) return
    this.#open = false
    if (this.#closed || this.#backoff === null) return
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
      ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {})
    })
  }
}
