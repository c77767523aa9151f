// The viewer client: one MQTT connection at a time to one of its broker URLs (clean session; which URL and when to
// retry, and when to move to another region: connection.ts), feeds watched through $replay subscriptions
// (FeedSubscription; resumed by event id in another region), retained JSON state topics through plain subscriptions. Follows the README's contract section. Imports only 'mqtt' and standard APIs, so it
// runs in the browser too (MQTT.js uses a WebSocket for ws:// and wss:// URLs).

import type { IClientOptions, MqttClient } from 'mqtt'
import { backoffOptions, type BackoffOptions } from './backoff.js'
import { BrokerConnection, DEFAULT_REGION_TIMEOUT_MS, type ReconnectInfo, type RegionChange } from './connection.js'
import { TypedEmitter } from './emitter.js'
import { decodePayload, type FeedEnvelope } from './envelope.js'
import { FeedSubscription, type FeedSubscriptionOptions } from './feed-subscription.js'
import { MqttFeedTransport } from './mqtt-transport.js'
import { isValidTopicFilter, parseFeedStart, topicMatches, type NamedFeedStart } from './replay.js'
import { DEFAULT_DELIVERED_IDS } from './resume-by-id.js'
import { regionList, type BrokerTarget } from './targets.js'

export type { ReconnectInfo, RegionChange } from './connection.js'
export { DEFAULT_REGION_TIMEOUT_MS } from './connection.js'
export { DEFAULT_DELIVERED_IDS } from './resume-by-id.js'

/** Default history a feed asks a new region for after a region switch: the broker's default --feed-history. */
export const DEFAULT_REGION_REPLAY: NamedFeedStart = 'last-1000'

/** Options of {@link Viewer.connect}. */
export interface ViewerOptions {
  /** MQTT client id; default MQTT.js's random `mqttjs_xxxxxxxx`. */
  readonly clientId?: string
  readonly username?: string
  readonly password?: string
  /**
   * Reconnect policy: `true` (default) = full-jitter exponential backoff with `DEFAULT_BACKOFF` (base 500 ms,
   * cap 30 s; after a refusal at least Retry-After, else `refusedMinMs` 1000 ms, more), an object = the same with
   * these values, `false` = never retry (one attempt, on the first URL of the shuffled order).
   */
  readonly reconnect?: boolean | BackoffOptions
  /** Random source in [0, 1) for the order of the broker URLs and the backoff jitter; default Math.random. */
  readonly random?: () => number
  /** Time to wait for CONNACK, ms; default 10000. */
  readonly connectTimeoutMs?: number
  /** MQTT keep alive, seconds (MQTT 3.1.1 section 3.1.2.10); default 30. */
  readonly keepaliveSec?: number
  /**
   * Extra MQTT.js options (TLS, wsOptions, protocolVersion, ...), for every broker URL. `clean`, `reconnectPeriod`,
   * `resubscribe` and `manualConnect` are owned by the Viewer and overridden; a `wsOptions.finishRequest` of yours
   * still runs (the viewer wraps it to read a refused upgrade's status and Retry-After in Node).
   */
  readonly mqtt?: Omit<IClientOptions, 'clean' | 'reconnectPeriod' | 'resubscribe' | 'manualConnect'>
  /**
   * Several regions only: ms without a connection in the region in use (since the connection was lost, or since the
   * start) after which the viewer moves to the next region; default {@link DEFAULT_REGION_TIMEOUT_MS} (15 s), above
   * the few seconds a node's viewers take to come back on its region's other nodes.
   */
  readonly regionTimeoutMs?: number
  /**
   * Several regions only: the history each feed asks the new region for after a switch, `last-<n>` (n >= 1) or
   * `all`; default {@link DEFAULT_REGION_REPLAY} (`last-1000`). Events published there while the viewer was away are
   * recovered if they are among these n.
   */
  readonly regionReplay?: NamedFeedStart
  /**
   * Several regions only: delivered event ids each feed keeps (its most recent ones), to find its place in another
   * region; default {@link DEFAULT_DELIVERED_IDS} (1000).
   */
  readonly regionDeliveredIds?: number
}

/** Events of a {@link Viewer}. */
export interface ViewerEvents {
  /** CONNACK 0 received (first connect and every reconnect), from the broker URL given. */
  connect: [url: string]
  /** An established connection (to the URL given) was lost, or closed by {@link Viewer.close}. */
  disconnect: [url: string]
  /** A retry is scheduled: `{attempt, delayMs, url, lastUrl, refused, retryAfterMs?}` (see {@link ReconnectInfo}). */
  reconnecting: [info: ReconnectInfo]
  /**
   * Connection errors (timeout, connection refused by the OS, ...), a `ServerUnavailableError` when a broker refused
   * the connection as overloaded, refused state subscriptions (`SubscriptionRefusedError`), state callbacks that threw.
   */
  error: [error: Error]
  /**
   * Several regions only: the region in use was unreachable for `regionTimeoutMs`, and the viewer moves to the next
   * one (`{index, previous, urls, downMs}`); its first attempt there follows. Each feed then resumes there by event id.
   */
  region: [change: RegionChange]
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

interface StateWatchEntry {
  readonly topic: string
  readonly onState: (message: StateMessage) => void
}

function toError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/**
 * A viewer connection to a Tribune broker, or to one of several (the nodes of a cluster, or a load balancer and
 * fallbacks). Create with {@link Viewer.connect}; watch feeds with {@link Viewer.watchFeed} and retained state topics
 * with {@link Viewer.watchState}; stop with {@link Viewer.close}.
 *
 * The MQTT session is clean (MQTT 3.1.1 section 3.1.2.4) and MQTT.js's own reconnect and resubscribe are off: the
 * viewer tries its URLs in a shuffled order, stays on the one that works and moves to the next on any failure, after
 * delay = random(0, min(cap, base * 2^attempt)) (plus Retry-After or refusedMinMs after a refusal), attempt reset on
 * CONNACK 0; then it resubscribes state topics and lets each feed subscription resume after its last delivered
 * position (seq and epoch are cluster-wide, so this holds on another node too).
 *
 * With several regions (independent clusters) it does so within its region; when no connection was made there for
 * `regionTimeoutMs` it moves to the next region (event `region`), where seq and epoch differ: each feed replays the
 * new region's recent history (`regionReplay`) and delivers, in that region's order, only the events whose id
 * (`data.id`) it has not delivered, after the last one it has (client/README.md, "Regions").
 */
export class Viewer extends TypedEmitter<ViewerEvents> {
  readonly #connection: BrokerConnection
  readonly #transport: MqttFeedTransport
  readonly #feeds = new Set<FeedSubscription>()
  readonly #states = new Set<StateWatchEntry>()
  /** With several regions: how feeds resume by id after a switch; undefined with one region. */
  readonly #resumeById: { readonly replay: NamedFeedStart, readonly deliveredIds: number } | undefined
  #closed = false

  private constructor (target: BrokerTarget, clientOptions: IClientOptions, options: ViewerOptions) {
    super()
    const reconnect = options.reconnect ?? true
    if (regionList(target).length > 1) {
      const replay = parseFeedStart(options.regionReplay ?? DEFAULT_REGION_REPLAY)
      if (typeof replay !== 'string' || replay === 'last-0') throw new RangeError(`regionReplay must be all or last-<n> with n >= 1, got ${JSON.stringify(options.regionReplay)}`)
      const deliveredIds = options.regionDeliveredIds ?? DEFAULT_DELIVERED_IDS
      if (!Number.isSafeInteger(deliveredIds) || deliveredIds < 1) throw new RangeError(`regionDeliveredIds must be an integer >= 1, got ${String(options.regionDeliveredIds)}`)
      this.#resumeById = { replay, deliveredIds }
    }
    this.#connection = new BrokerConnection(target, {
      mqtt: clientOptions,
      backoff: reconnect === false ? null : backoffOptions(reconnect === true ? {} : reconnect),
      random: options.random ?? Math.random,
      ...(options.regionTimeoutMs !== undefined ? { regionTimeoutMs: options.regionTimeoutMs } : {})
    }, {
      connect: (url) => { this.#onConnect(url) },
      disconnect: (url) => { this.#onDisconnect(url) },
      reconnecting: (info) => { this.#emitSafely('reconnecting', info) },
      error: (err) => { this.#emitSafely('error', toError(err)) },
      message: (topic, payload, retain) => { this.#onMessage(topic, payload, retain) },
      region: (change) => { this.#onRegion(change) }
    })
    this.#transport = new MqttFeedTransport(() => this.#connection.client, () => this.#connection.connected)
  }

  /**
   * Connects to a broker and returns at once; the connection is made (and remade) in the background: listen to
   * `connect` / `disconnect` / `reconnecting` / `error` (and `region`), or await {@link Viewer.waitConnected}.
   * @param target a broker URL, or a list of them tried in a shuffled order (may mix protocols):
   *   `ws://host:port/path` or `wss://...` (browser and Node), `mqtt://` / `mqtts://` (Node). Credentials may be
   *   given in a URL (`mqtt://user:password@host`), else `options.username` / `password` apply. Or
   *   `{regions: [[a1, a2], [b1, b2]]}`: several regions (independent clusters), each such a list, the viewer's own
   *   region first; it moves to the next region when its own is unreachable for `options.regionTimeoutMs`.
   * @param options see {@link ViewerOptions}.
   * @throws Error from MQTT.js if a URL cannot be used (e.g. no protocol); RangeError for an empty list, a URL in two
   *   regions, an invalid backoff or region option.
   */
  static connect (target: BrokerTarget, options: ViewerOptions = {}): Viewer {
    const clientOptions: IClientOptions = {
      keepalive: options.keepaliveSec ?? 30,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      ...options.mqtt,
      clean: true,
      resubscribe: false
    }
    if (options.clientId !== undefined) clientOptions.clientId = options.clientId
    if (options.username !== undefined) clientOptions.username = options.username
    if (options.password !== undefined) clientOptions.password = options.password
    const viewer = new Viewer(target, clientOptions, options)
    viewer.#connection.start()
    return viewer
  }

  /** True while connected (CONNACK 0 received and the connection not lost). */
  get connected (): boolean {
    return this.#connection.connected
  }

  /** True once {@link Viewer.close} was called. */
  get closed (): boolean {
    return this.#closed
  }

  /** The broker URL in use: connected to, being tried, or to be tried next. */
  get url (): string {
    return this.#connection.url
  }

  /**
   * The broker URLs of the region in use, in the order this viewer tries them (shuffled once, at
   * {@link Viewer.connect}); with one region, all of them.
   */
  get urls (): readonly string[] {
    return this.#connection.urls
  }

  /** The index of the region in use: 0 (the first given, the viewer's own) until it moved. */
  get region (): number {
    return this.#connection.region
  }

  /** Every region's broker URLs, each in the order this viewer tries them. */
  get regions (): ReadonlyArray<readonly string[]> {
    return this.#connection.regions
  }

  /**
   * The MQTT.js client of the broker URL in use (escape hatch, e.g. to publish). The viewer has one client per URL,
   * so with several URLs this is another object after the viewer moved to another URL: read it when you use it (after
   * a `connect` event it is the connected one), do not keep it. With one URL it is always the same client. Do not
   * end or reconnect it directly.
   */
  get mqttClient (): MqttClient {
    return this.#connection.client
  }

  /**
   * Resolves when connected (at once if already), rejects after `timeoutMs` (no timeout if omitted) or if the
   * viewer is closed first.
   * @throws (rejects) Error "timed out ..." / "viewer closed".
   */
  async waitConnected (timeoutMs?: number): Promise<void> {
    if (this.connected) return
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
    const subscription = new FeedSubscription(feed, this.#transport,
      this.#resumeById !== undefined ? { ...options, resumeById: this.#resumeById } : options, onMessage)
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
    if (this.connected) this.#subscribeState(topic)
    return {
      topic,
      close: async () => {
        if (!this.#states.delete(entry)) return
        const stillUsed = [...this.#states].some((other) => other.topic === topic)
        if (stillUsed || !this.connected || this.#closed) return
        try {
          await this.#connection.client.unsubscribeAsync(topic)
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
    this.#connection.stop()
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
    await this.#connection.close(polite)
    this.#emitSafely('close')
  }

  #subscribeState (topic: string): void {
    this.#connection.client.subscribeAsync(topic, { qos: 1 }).then((granted) => {
      if (granted.some((g) => (g.qos & 0x80) !== 0)) throw new SubscriptionRefusedError(topic)
    }).catch((err: unknown) => {
      if (this.connected && !this.#closed) {
        // MQTT.js rejects a SUBACK failure code itself ("Subscribe error: ..."): the broker refused it all the same.
        const refused = err instanceof SubscriptionRefusedError || /subscribe error/i.test(toError(err).message)
        this.#emitSafely('error', refused ? new SubscriptionRefusedError(topic) : new Error(`subscribe ${topic} failed: ${toError(err).message}`))
      }
    })
  }

  #onConnect (url: string): void {
    if (this.#closed) return
    for (const topic of new Set([...this.#states].map((entry) => entry.topic))) this.#subscribeState(topic)
    this.#transport.dispatchConnection(true)
    this.#emitSafely('connect', url)
  }

  #onRegion (change: RegionChange): void {
    if (this.#closed) return
    // Before the first connection there: each feed's next SUBSCRIBE asks the new region for its recent history.
    for (const subscription of [...this.#feeds]) subscription.changeRegion()
    this.#emitSafely('region', change)
  }

  #onDisconnect (url: string): void {
    this.#transport.dispatchConnection(false)
    this.#emitSafely('disconnect', url)
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
