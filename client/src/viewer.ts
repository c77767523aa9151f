// The viewer client: one MQTT.js connection (clean session, reconnect with full-jitter backoff done here),
// feeds watched through $replay subscriptions (FeedSubscription), retained JSON state topics through plain
// subscriptions. Follows the README's contract section. Imports only 'mqtt' and standard APIs, so it runs in the
// browser too (MQTT.js uses a WebSocket for ws:// and wss:// URLs).

import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js'
import { TypedEmitter } from './emitter.js'
import { decodePayload, type FeedEnvelope } from './envelope.js'
import { FeedSubscription, type FeedSubscriptionOptions, type FeedTransport, type QoS } from './feed-subscription.js'
import { isValidTopicFilter, topicMatches } from './replay.js'

/** Options of {@link Viewer.connect}. */
export interface ViewerOptions {
  /** MQTT client id; default MQTT.js's random `mqttjs_xxxxxxxx`. */
  readonly clientId?: string
  readonly username?: string
  readonly password?: string
  /**
   * Reconnect policy: `true` (default) = full-jitter exponential backoff with {@link DEFAULT_BACKOFF}
   * (base 500 ms, cap 30 s), an object = the same with these base/cap, `false` = never reconnect.
   */
  readonly reconnect?: boolean | BackoffOptions
  /** Random source in [0, 1) for the backoff jitter; default Math.random. */
  readonly random?: () => number
  /** Time to wait for CONNACK, ms; default 10000. */
  readonly connectTimeoutMs?: number
  /** MQTT keep alive, seconds (MQTT 3.1.1 section 3.1.2.10); default 30. */
  readonly keepaliveSec?: number
  /**
   * Extra MQTT.js options (TLS, wsOptions, protocolVersion, ...). `clean`, `reconnectPeriod`, `resubscribe` and
   * `manualConnect` are owned by the Viewer and overridden.
   */
  readonly mqtt?: Omit<IClientOptions, 'clean' | 'reconnectPeriod' | 'resubscribe' | 'manualConnect'>
}

/** Payload of the `reconnecting` event. */
export interface ReconnectInfo {
  /** 1 for the first retry since the last successful connect, 2 for the next, ... */
  readonly attempt: number
  /** Delay before this retry, ms. */
  readonly delayMs: number
}

/** Events of a {@link Viewer}. */
export interface ViewerEvents {
  /** CONNACK received (first connect and every reconnect). */
  connect: []
  /** An established connection was lost (or closed by {@link Viewer.close}). */
  disconnect: []
  /** A reconnect is scheduled. */
  reconnecting: [info: ReconnectInfo]
  /** Connection errors (refused, timeout, ...), refused state subscriptions, state callbacks that threw. */
  error: [error: Error]
  /** The viewer is closed for good. */
  close: []
}

/** A message of a plain (state) subscription. */
export interface StateMessage {
  /** The topic it was published to. */
  readonly topic: string
  /** Parsed JSON, or the text if not JSON, or null for an empty payload (retained message cleared). */
  readonly payload: unknown
  /** True if it is a retained message sent on subscribe (MQTT 3.1.1 section 3.3.1.3). */
  readonly retain: boolean
}

/**
 * The broker answered a state SUBSCRIBE with return code 0x80 (MQTT 3.1.1 section 3.9.3): the topic rules of the
 * viewer's identity do not allow the filter, or the filter is invalid. Emitted as the viewer's `error`; not retried.
 */
export class SubscriptionRefusedError extends Error {
  /** The topic filter refused. */
  readonly topic: string

  constructor (topic: string) {
    super(`subscribe ${topic} refused by the broker (SUBACK 0x80): its topic rules do not allow this filter for these credentials, or the filter is invalid`)
    this.name = 'SubscriptionRefusedError'
    this.topic = topic
  }
}

/** Handle of {@link Viewer.watchState}. */
export interface StateWatch {
  /** The topic filter watched. */
  readonly topic: string
  /** Stops the callbacks and UNSUBSCRIBEs if no other watch uses the filter. Idempotent. */
  close: () => Promise<void>
}

/** Options of {@link Viewer.watchFeed}. */
export type WatchFeedOptions = FeedSubscriptionOptions

/** {@link FeedTransport} over an MQTT.js client; reference-counts filters shared by several subscriptions. */
class MqttFeedTransport implements FeedTransport {
  readonly #client: MqttClient
  readonly #isConnected: () => boolean
  readonly #counts = new Map<string, number>()
  readonly #messageListeners = new Set<(topic: string, payload: Uint8Array | string) => void>()
  readonly #connectionListeners = new Set<(connected: boolean) => void>()
  /** Set when the viewer closes: no more packets are sent. */
  closing = false

  constructor (client: MqttClient, isConnected: () => boolean) {
    this.#client = client
    this.#isConnected = isConnected
  }

  get connected (): boolean {
    return !this.closing && this.#isConnected()
  }

  async subscribe (filter: string, qos: QoS): Promise<void> {
    this.#counts.set(filter, (this.#counts.get(filter) ?? 0) + 1)
    if (!this.connected) throw new Error('not connected')
    const granted = await this.#client.subscribeAsync(filter, { qos })
    if (granted.some((g) => (g.qos & 0x80) !== 0)) throw new Error('SUBACK return code 0x80 (failure)')
  }

  async unsubscribe (filter: string): Promise<void> {
    const count = (this.#counts.get(filter) ?? 1) - 1
    if (count > 0) {
      this.#counts.set(filter, count)
      return
    }
    this.#counts.delete(filter)
    if (!this.connected) return
    await this.#client.unsubscribeAsync(filter)
  }

  onMessage (listener: (topic: string, payload: Uint8Array | string) => void): () => void {
    this.#messageListeners.add(listener)
    return () => { this.#messageListeners.delete(listener) }
  }

  onConnectionChange (listener: (connected: boolean) => void): () => void {
    this.#connectionListeners.add(listener)
    return () => { this.#connectionListeners.delete(listener) }
  }

  dispatchMessage (topic: string, payload: Uint8Array): void {
    for (const listener of [...this.#messageListeners]) listener(topic, payload)
  }

  dispatchConnection (connected: boolean): void {
    for (const listener of [...this.#connectionListeners]) listener(connected)
  }
}

interface StateWatchEntry {
  readonly topic: string
  readonly onState: (message: StateMessage) => void
}

function toError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/**
 * A viewer connection to a Tribune broker. Create with {@link Viewer.connect}; watch feeds with
 * {@link Viewer.watchFeed} and retained state topics with {@link Viewer.watchState}; stop with {@link Viewer.close}.
 *
 * The MQTT session is clean (MQTT 3.1.1 section 3.1.2.4) and MQTT.js's own reconnect and resubscribe are off:
 * the viewer reconnects with delay = random(0, min(cap, base * 2^attempt)), attempt reset on CONNACK, then
 * resubscribes state topics and lets each feed subscription resume after its last delivered position.
 */
export class Viewer extends TypedEmitter<ViewerEvents> {
  readonly #client: MqttClient
  readonly #transport: MqttFeedTransport
  readonly #backoff: BackoffOptions | null
  readonly #random: () => number
  readonly #feeds = new Set<FeedSubscription>()
  readonly #states = new Set<StateWatchEntry>()
  #connected = false
  #closed = false
  #attempt = 0
  #timer: ReturnType<typeof setTimeout> | undefined

  private constructor (client: MqttClient, options: ViewerOptions) {
    super()
    this.#client = client
    this.#transport = new MqttFeedTransport(client, () => this.#connected)
    const reconnect = options.reconnect ?? true
    this.#backoff = reconnect === false ? null : reconnect === true ? DEFAULT_BACKOFF : reconnect
    if (this.#backoff !== null) backoffDelay(0, this.#backoff) // validates base/cap now
    this.#random = options.random ?? Math.random
    client.on('connect', () => { this.#onConnect() })
    client.on('close', () => { this.#onClose() })
    client.on('error', (err) => { this.#emitSafely('error', toError(err)) })
    client.on('message', (topic, payload, packet) => { this.#onMessage(topic, payload, packet.retain) })
  }

  /**
   * Connects to a broker and returns at once; the connection is made (and remade) in the background: listen to
   * `connect` / `disconnect` / `reconnecting` / `error`, or await {@link Viewer.waitConnected}.
   * @param url broker URL: `ws://host:port/path` or `wss://...` (browser and Node), `mqtt://` / `mqtts://` (Node).
   * @param options see {@link ViewerOptions}.
   * @throws Error from MQTT.js if the URL protocol is not supported; RangeError for an invalid backoff.
   */
  static connect (url: string, options: ViewerOptions = {}): Viewer {
    const clientOptions: IClientOptions = {
      keepalive: options.keepaliveSec ?? 30,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      ...options.mqtt,
      clean: true,
      reconnectPeriod: 0,
      resubscribe: false,
      manualConnect: true
    }
    if (options.clientId !== undefined) clientOptions.clientId = options.clientId
    if (options.username !== undefined) clientOptions.username = options.username
    if (options.password !== undefined) clientOptions.password = options.password
    const client = mqtt.connect(url, clientOptions)
    const viewer = new Viewer(client, options)
    client.connect()
    return viewer
  }

  /** True while connected (CONNACK received and the connection not lost). */
  get connected (): boolean {
    return this.#connected
  }

  /** True once {@link Viewer.close} was called. */
  get closed (): boolean {
    return this.#closed
  }

  /** The underlying MQTT.js client (escape hatch, e.g. to publish). Do not end or reconnect it directly. */
  get mqttClient (): MqttClient {
    return this.#client
  }

  /**
   * Resolves when connected (at once if already), rejects after `timeoutMs` (no timeout if omitted) or if the
   * viewer is closed first.
   * @throws (rejects) Error "timed out ..." / "viewer closed".
   */
  async waitConnected (timeoutMs?: number): Promise<void> {
    if (this.#connected) return
    if (this.#closed) throw new Error('viewer closed')
    await new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const done = (err?: Error): void => {
        if (timer !== undefined) clearTimeout(timer)
        this.off('connect', onConnect)
        this.off('close', onClose)
        if (err === undefined) resolve()
        else reject(err)
      }
      const onConnect = (): void => { done() }
      const onClose = (): void => { done(new Error('viewer closed')) }
      this.on('connect', onConnect)
      this.on('close', onClose)
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => { done(new Error(`timed out after ${timeoutMs} ms waiting for the broker`)) }, timeoutMs)
      }
    })
  }

  /**
   * Watches a feed: history per `options.from`, then live, each envelope delivered once and in seq order
   * (contract "Subscribing"). The subscription starts on the next microtask, so listeners attached right after
   * this call see every event.
   * @param feed feed topic, e.g. `matches/2022-12-18-argentina-france/events`.
   * @param options `from`: 'all' (default) | 'last-<n>' | `{seq, epoch}` (resume after it); `qos` (default 1).
   * @param onMessage optional callback per envelope `{seq, epoch, ts, data}` (same as the `message` event).
   * @returns the {@link FeedSubscription} (events: state, message, reset, gap, error; `close()`).
   * @throws Error if the viewer is closed; RangeError if the feed or `from` is invalid.
   */
  watchFeed (feed: string, options: WatchFeedOptions = {}, onMessage?: (envelope: FeedEnvelope) => void): FeedSubscription {
    if (this.#closed) throw new Error('viewer closed')
    const subscription = new FeedSubscription(feed, this.#transport, options, onMessage)
    this.#feeds.add(subscription)
    subscription.on('state', (change) => {
      if (change.new === 'closed') this.#feeds.delete(subscription)
    })
    queueMicrotask(() => {
      if (subscription.state === 'idle' && !this.#closed) subscription.start()
    })
    return subscription
  }

  /**
   * Watches a retained JSON state topic (or a filter such as `matches/+/state`) with a plain QoS 1 subscription:
   * the retained message on subscribe, then every update; resubscribed after each reconnect (so the retained
   * message comes again). Callbacks that throw are reported on `error`.
   * @param topic topic or topic filter (MQTT 3.1.1 section 4.7).
   * @param onState called with `{topic, payload, retain}` per message.
   * @returns a {@link StateWatch} handle (`close()`).
   * @throws Error if the viewer is closed; RangeError if the filter is invalid.
   */
  watchState (topic: string, onState: (message: StateMessage) => void): StateWatch {
    if (this.#closed) throw new Error('viewer closed')
    if (!isValidTopicFilter(topic)) throw new RangeError(`invalid topic filter "${topic}"`)
    const entry: StateWatchEntry = { topic, onState }
    this.#states.add(entry)
    if (this.#connected) this.#subscribeState(topic)
    return {
      topic,
      close: async () => {
        if (!this.#states.delete(entry)) return
        const stillUsed = [...this.#states].some((other) => other.topic === topic)
        if (stillUsed || !this.#connected || this.#closed) return
        try {
          await this.#client.unsubscribeAsync(topic)
        } catch {
          // connection lost meanwhile: the clean session forgets it anyway
        }
      }
    }
  }

  /**
   * Closes every feed subscription and state watch, stops reconnecting and disconnects (DISCONNECT packet if
   * connected). Idempotent; emits `close` once.
   */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#transport.closing = true
    // UNSUBSCRIBE politely, but not forever: a broker that does not answer (its store down) must not keep us open.
    let polite = true
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      Promise.all([...this.#feeds].map(async (subscription) => { await subscription.close('viewer closed') })),
      new Promise<void>((resolve) => { timer = setTimeout(() => { polite = false; resolve() }, 2000) })
    ])
    clearTimeout(timer)
    this.#states.clear()
    const force = !this.#connected || !polite
    await new Promise<void>((resolve) => {
      this.#client.end(force, () => { resolve() })
    })
    this.#emitSafely('close')
  }

  #subscribeState (topic: string): void {
    this.#client.subscribeAsync(topic, { qos: 1 }).then((granted) => {
      if (granted.some((g) => (g.qos & 0x80) !== 0)) throw new SubscriptionRefusedError(topic)
    }).catch((err: unknown) => {
      if (this.#connected && !this.#closed) {
        // MQTT.js rejects a SUBACK failure code itself ("Subscribe error: ..."): the broker refused it all the same.
        const refused = err instanceof SubscriptionRefusedError || /subscribe error/i.test(toError(err).message)
        this.#emitSafely('error', refused ? new SubscriptionRefusedError(topic) : new Error(`subscribe ${topic} failed: ${toError(err).message}`))
      }
    })
  }

  #onConnect (): void {
    if (this.#closed) return
    this.#connected = true
    this.#attempt = 0
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    for (const topic of new Set([...this.#states].map((entry) => entry.topic))) this.#subscribeState(topic)
    this.#transport.dispatchConnection(true)
    this.#emitSafely('connect')
  }

  #onClose (): void {
    const wasConnected = this.#connected
    this.#connected = false
    if (wasConnected) {
      this.#transport.dispatchConnection(false)
      this.#emitSafely('disconnect')
    }
    if (!this.#closed) this.#scheduleReconnect()
  }

  #scheduleReconnect (): void {
    if (this.#backoff === null || this.#timer !== undefined) return
    const delayMs = backoffDelay(this.#attempt, this.#backoff, this.#random)
    this.#attempt++
    this.#emitSafely('reconnecting', { attempt: this.#attempt, delayMs })
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (!this.#closed && !this.#connected) this.#client.reconnect()
    }, delayMs)
  }

  #onMessage (topic: string, payload: Uint8Array, retain: boolean): void {
    this.#transport.dispatchMessage(topic, payload)
    let decoded: { value: unknown } | undefined
    for (const entry of [...this.#states]) {
      if (!topicMatches(entry.topic, topic)) continue
      decoded ??= { value: decodePayload(payload) }
      try {
        entry.onState({ topic, payload: decoded.value, retain })
      } catch (err) {
        this.#emitSafely('error', toError(err))
      }
    }
  }

  /** Emits without letting a throwing app listener break MQTT.js's packet handling. */
  #emitSafely<K extends keyof ViewerEvents> (event: K, ...args: ViewerEvents[K]): void {
    try {
      this.emit(event, ...args)
    } catch (err) {
      if (event === 'error') return
      try {
        this.emit('error', toError(err))
      } catch {
        // an error listener that throws: nothing more to do
      }
    }
  }
}
