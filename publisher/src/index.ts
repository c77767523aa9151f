/**
 * The Tribune publisher library: how a back-end service puts match events and match state into a Tribune
 * broker over MQTT (MQTT.js 5, MQTT 3.1.1). Topics and payloads follow the README's contract section:
 *   - events go to a feed topic (e.g. `matches/<id>/events`) as JSON, QoS 1; the broker stamps them with seq;
 *   - state goes to a state topic (e.g. `matches/<id>/state`) as JSON, QoS 1, retained.
 *
 * Delivery: every publish is QoS 1 and its promise resolves on PUBACK (MQTT 3.1.1 section 4.3.2). The session is
 * persistent (clean session = false, MQTT 3.1.1 section 3.1.2.4) with a stable client id, so when the connection
 * drops MQTT.js keeps the unacknowledged packets and resends them after reconnecting; the promise then settles
 * on that PUBACK. A resend can reach the broker twice (at-least-once); the broker drops duplicate feed events by
 * their `id` and a repeated retained state is harmless. close() rejects whatever is still unacknowledged.
 *
 * Several broker URLs (the nodes of a cluster): one MQTT.js client for the Publisher's life, so that its session and
 * its unacknowledged packets go with it from node to node; its stream builder (the public `MqttClient` constructor
 * takes one) opens the connection to the URL in use, tried in a shuffled order, moving to the next on any failure.
 * Reconnecting is done here rather than by MQTT.js, to wait longer after a refusal (CONNACK 3, HTTP 503).
 */
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import tls from 'node:tls'
import mqtt, { type IClientOptions, type IStream, type MqttClient } from 'mqtt'
import { WebSocket, createWebSocketStream } from 'ws'
import { reconnectDelay, type AttemptFailure } from '../../client/src/backoff.js'
import type { ReconnectInfo } from '../../client/src/connection.js'
import { ServerUnavailableError, closedBeforeAnswer, unavailableConnackCode, upgradeRefusalHook } from '../../client/src/refusal.js'
import { TargetRotation, withoutPassword, type BrokerUrls } from '../../client/src/targets.js'

export type { MatchEvent, MatchState, Score, MatchStatus } from './replay/model.js'
export { eventsTopic, stateTopic } from './topics.js'
export { ServerUnavailableError } from '../../client/src/refusal.js'
export type { BrokerUrls } from '../../client/src/targets.js'
export type { ReconnectInfo } from '../../client/src/connection.js'

/** Options of {@link Publisher.connect}. */
export interface PublisherOptions {
  /** MQTT client id; keep it stable across restarts to resume the session. Default: "tribune-pub-<random>", fixed per Publisher. */
  clientId?: string
  /** User name, unless the URL in use carries one (`mqtt://user:password@host`). */
  username?: string
  /** Password, unless the URL in use carries a user name. */
  password?: string
  /** Keep-alive, seconds (MQTT 3.1.1 section 3.1.2.10). Default 30. */
  keepalive?: number
  /** Pause before a reconnect attempt after a failure or a lost connection, ms (> 0). Default 1000. */
  reconnectPeriod?: number
  /**
   * Least pause after a broker refused the connection as overloaded (CONNACK 3) without a Retry-After to read, ms
   * (>= 0). Default 1000. A WebSocket upgrade refused with 503 + Retry-After waits that instead. Either way a random
   * 0..reconnectPeriod ms is added.
   */
  refusedMinMs?: number
  /** Time to wait for CONNACK on each attempt, ms. Default 10000. */
  connectTimeout?: number
  /** Random source in [0, 1) for the order of the broker URLs and the jitter after a refusal. Default Math.random. */
  random?: () => number
  /**
   * Called with connection errors after the first connect (the client keeps retrying), a ServerUnavailableError
   * for a refusal included. Default: ignored.
   */
  onError?: (err: Error) => void
  /** Called when the connection goes up (true) or is lost (false) after the first connect. */
  onConnectionChange?: (connected: boolean) => void
  /** Called when a reconnect attempt is scheduled, after the first connect: `{attempt, delayMs, url, lastUrl, refused, retryAfterMs?}`. */
  onReconnecting?: (info: ReconnectInfo) => void
}

/** Thrown for publishes that are still unacknowledged when {@link Publisher.close} is called, or made after it. */
export class PublisherClosedError extends Error {
  constructor (message = 'publisher closed before the broker acknowledged the message') {
    super(message)
    this.name = 'PublisherClosedError'
  }
}

/**
 * Checks a topic name for publishing (MQTT 3.1.1 section 4.7.3: non-empty, no wildcards, no NUL, at most 65535 bytes).
 * @throws TypeError naming the problem
 */
function checkTopic (topic: string): void {
  if (typeof topic !== 'string' || topic.length === 0) throw new TypeError('topic must be a non-empty string')
  if (/[+#\u0000]/.test(topic)) throw new TypeError(`topic "${topic}" must not contain wildcards (+, #) or NUL`)
  if (Buffer.byteLength(topic) > 65535) throw new TypeError('topic is longer than 65535 bytes')
}

const PROTOCOLS = new Set(['mqtt:', 'tcp:', 'mqtts:', 'ssl:', 'tls:', 'ws:', 'wss:'])
/** CONNACK return codes (MQTT 3.1.1 section 3.2.2.3) no other node would answer differently: bad protocol level, client id, credentials, not authorized. */
const FATAL_CONNACK = new Set([1, 2, 4, 5])

/** Host name of a URL for net/tls: without the brackets of an IPv6 address. */
function hostOf (url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1')
}

/**
 * Opens the transport to one broker URL, as MQTT.js's own stream builders do in Node: TCP, TLS (certificates
 * checked), or MQTT over a WebSocket (subprotocol `mqtt`), whose refused upgrade (503/429) is reported to `onRefused`.
 */
function openStream (url: URL, onRefused: (status: number, retryAfterMs: number | undefined) => void): IStream {
  const host = hostOf(url)
  switch (url.protocol) {
    case 'mqtt:': case 'tcp:':
      return net.connect({ host, port: Number(url.port || 1883) })
    case 'mqtts:': case 'ssl:': case 'tls:':
      return tls.connect({ host, port: Number(url.port || 8883), servername: net.isIP(host) === 0 ? host : undefined, rejectUnauthorized: true })
    default: {
      const target = new URL(url.href)
      target.username = ''
      target.password = ''
      const socket = new WebSocket(target.href, ['mqtt'], { finishRequest: upgradeRefusalHook(onRefused) })
      const stream = createWebSocketStream(socket)
      socket.on('close', () => { stream.destroy() })
      return stream
    }
  }
}

/** A connected publisher; create with {@link Publisher.connect}. */
export class Publisher {
  /** Unacknowledged publishes, rejected by close(). */
  private readonly pending = new Set<(err: Error) => void>()
  private closed = false
  private closing: Promise<void> | undefined
  private readonly targets: TargetRotation
  private readonly client: MqttClient
  private readonly reconnectPeriod: number
  private readonly refusedMinMs: number
  private readonly random: () => number
  /** How the attempt in progress (or the last one) ended, as far as the next delay is concerned. */
  private failure: AttemptFailure = { refused: false }
  /** The first error of the attempt in progress, for the first connect's rejection. */
  private attemptError: Error | undefined
  /** True from the start of an attempt until its connection closes. */
  private open = false
  private started = false
  /** True once the first connect succeeded: from then on the Publisher reconnects by itself. */
  private running = false
  private up = false
  private attempt = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  private constructor (urls: BrokerUrls, readonly clientId: string, private readonly opts: PublisherOptions) {
    this.random = opts.random ?? Math.random
    this.targets = new TargetRotation(urls, this.random)
    for (const url of this.targets.order) {
      let protocol: string
      try {
        protocol = new URL(url).protocol
      } catch {
        throw new TypeError(`not a URL: "${withoutPassword(url)}"`)
      }
      if (!PROTOCOLS.has(protocol)) throw new TypeError(`unsupported protocol "${protocol}" in "${withoutPassword(url)}" (use mqtt, mqtts, ws or wss)`)
    }
    this.reconnectPeriod = opts.reconnectPeriod ?? 1000
    if (!(this.reconnectPeriod > 0) || !Number.isFinite(this.reconnectPeriod)) throw new RangeError(`reconnectPeriod must be > 0 ms, got ${this.reconnectPeriod}`)
    this.refusedMinMs = opts.refusedMinMs ?? 1000
    if (!(this.refusedMinMs >= 0) || !Number.isFinite(this.refusedMinMs)) throw new RangeError(`refusedMinMs must be >= 0 ms, got ${this.refusedMinMs}`)
    const options: IClientOptions = {
      clientId,
      clean: false,
      protocolVersion: 4,
      keepalive: opts.keepalive ?? 30,
      reconnectPeriod: 0, // reconnects are scheduled here (see onClose)
      connectTimeout: opts.connectTimeout ?? 10_000,
      resubscribe: false,
      queueQoSZero: false,
      manualConnect: true
    }
    this.client = new mqtt.MqttClient(() => openStream(new URL(this.targets.current), (status, retryAfterMs) => { this.onRefused(status, retryAfterMs) }), options)
    // A permanent listener: an 'error' event without one would crash the process.
    this.client.on('error', (err) => { this.onError(err) })
    this.client.on('connect', () => { this.onConnect() })
    this.client.on('close', () => { this.onClose() })
  }

  /**
   * Connects to a broker and resolves once the first CONNACK arrives.
   * @param urls broker URL (mqtt://host:1883, mqtts://, ws://host/mqtt, wss://; credentials may be in it), or a list of
   *   them (the nodes of a cluster), tried in a shuffled order
   * @param opts credentials, client id and timing; the session is always persistent (clean = false)
   * @returns a Publisher that reconnects by itself after the first successful connect, moving to the next URL
   * @throws TypeError / RangeError for a bad URL or option; the connection error (e.g. ECONNREFUSED, "Connection
   *   refused: Not authorized", "connack timeout", ServerUnavailableError) when every URL failed once (an
   *   AggregateError of each URL's error when there are several); no retry is made in that case. A refusal of the
   *   login (CONNACK 1, 2, 4, 5) rejects at once, without trying the other URLs.
   */
  static async connect (urls: BrokerUrls, opts: PublisherOptions = {}): Promise<Publisher> {
    const publisher = new Publisher(urls, opts.clientId ?? `tribune-pub-${randomBytes(6).toString('hex')}`, opts)
    await publisher.firstConnect()
    return publisher
  }

  /** The broker URL in use: connected to, being tried, or to be tried next. */
  get url (): string {
    return this.targets.current
  }

  /** The broker URLs in the order this Publisher tries them (shuffled once, at connect). */
  get urls (): readonly string[] {
    return this.targets.order
  }

  /** One pass over the URLs, one attempt each, until one accepts; rejects with the errors otherwise. */
  private async firstConnect (): Promise<void> {
    const errors: Error[] = []
    for (let i = 0; i < this.targets.order.length; i++) {
      if (i > 0) this.targets.next()
      const url = this.targets.current
      const connected = await new Promise<boolean>((resolve) => {
        const onConnect = (): void => { done(true) }
        const onClose = (): void => { done(false) }
        const done = (ok: boolean): void => {
          this.client.off('connect', onConnect)
          this.client.off('close', onClose)
          resolve(ok)
        }
        this.client.on('connect', onConnect)
        this.client.on('close', onClose)
        this.startAttempt()
      })
      if (connected) {
        this.running = true
        return
      }
      const error = this.attemptError ?? new Error(`connection to ${withoutPassword(url)} closed before CONNACK`)
      errors.push(error)
      const code = (error as { code?: unknown }).code
      if (!(error instanceof ServerUnavailableError) && typeof code === 'number' && FATAL_CONNACK.has(code)) break
    }
    this.closed = true
    this.client.end(true)
    if (errors.length === 1) throw errors[0]
    throw new AggregateError(errors, `no broker accepted the connection: ${errors.map((e, i) => `${withoutPassword(this.targets.order[i])}: ${e.message}`).join('; ')}`)
  }

  /** Starts an attempt on the URL in use, with its credentials; keeps the session's stores across attempts. */
  private startAttempt (): void {
    this.timer = undefined
    if (this.closed) return
    const url = new URL(this.targets.current)
    this.client.options.username = url.username !== '' ? decodeURIComponent(url.username) : this.opts.username
    this.client.options.password = url.username !== '' ? decodeURIComponent(url.password) : this.opts.password
    this.failure = { refused: false }
    this.attemptError = undefined
    this.open = true
    if (!this.started) {
      this.started = true
      this.client.connect()
    } else {
      // Given the stores, reconnect() keeps the unacknowledged packets, which MQTT.js resends after CONNACK.
      this.client.reconnect({ incomingStore: this.client.incomingStore, outgoingStore: this.client.outgoingStore })
    }
  }

  private onRefused (status: number, retryAfterMs: number | undefined): void {
    if (!this.open) return
    this.failure = retryAfterMs !== undefined ? { refused: true, retryAfterMs } : { refused: true }
    this.onError(new ServerUnavailableError(this.targets.current, { status, retryAfterMs }))
  }

  private onError (err: Error): void {
    const code = unavailableConnackCode(err)
    if (code !== undefined) {
      this.failure = { refused: true }
      err = new ServerUnavailableError(this.targets.current, { code })
    }
    this.attemptError ??= err
    if (this.running) this.opts.onError?.(err)
  }

  private onConnect (): void {
    this.attempt = 0
    this.up = true
    if (this.running) this.opts.onConnectionChange?.(true)
  }

  private onClose (): void {
    const wasUp = this.up
    if (this.up) {
      this.up = false
      if (!this.closed) this.opts.onConnectionChange?.(false) // not for close(): nothing was lost
    }
    if (!this.open) return // a second close of the same attempt
    this.open = false
    if (!this.running || this.closed) return // the first connect's pass goes on by itself
    // Made, then closed or reset before any answer (shed at accept, or TLS refused before the handshake): a refusal.
    const failure: AttemptFailure = !wasUp && !this.failure.refused && closedBeforeAnswer(this.attemptError) ? { refused: true } : this.failure
    const lastUrl = this.targets.current
    const url = this.targets.next()
    const delayMs = failure.refused
      ? reconnectDelay(0, failure, { baseMs: this.reconnectPeriod, capMs: this.reconnectPeriod, refusedMinMs: this.refusedMinMs }, this.random)
      : this.reconnectPeriod
    this.attempt++
    this.timer = setTimeout(() => { this.startAttempt() }, delayMs)
    this.opts.onReconnecting?.({
      attempt: this.attempt,
      delayMs,
      url,
      lastUrl,
      refused: failure.refused,
      ...(failure.retryAfterMs !== undefined ? { retryAfterMs: failure.retryAfterMs } : {})
    })
  }

  /** Whether the connection to the broker is currently up. */
  get connected (): boolean {
    return this.client.connected
  }

  /** Number of publishes waiting for their PUBACK. */
  get inFlight (): number {
    return this.pending.size
  }

  /**
   * Publishes an event to a feed topic as JSON, QoS 1, not retained.
   * The event should carry a string `id`, unique and deterministic within the feed: the broker uses it to drop
   * resends (the README's contract section, "Feeds").
   * @param feedTopic e.g. `matches/2022-12-18-argentina-france/events`
   * @param event a JSON-serialisable object
   * @returns resolves on PUBACK, also when it comes after a reconnect; rejects with PublisherClosedError on close()
   * @throws TypeError (as a rejection) for a bad topic or a non-object event
   */
  async publishEvent (feedTopic: string, event: object): Promise<void> {
    return await this.send(feedTopic, event, false)
  }

  /**
   * Publishes a state object as JSON, QoS 1, retained (MQTT 3.1.1 section 3.3.1.3), replacing the previous state.
   * @param topic e.g. `matches/2022-12-18-argentina-france/state`
   * @param state a JSON-serialisable object
   * @returns resolves on PUBACK, also when it comes after a reconnect; rejects with PublisherClosedError on close()
   * @throws TypeError (as a rejection) for a bad topic or a non-object state
   */
  async setState (topic: string, state: object): Promise<void> {
    return await this.send(topic, state, true)
  }

  private async send (topic: string, payload: object, retain: boolean): Promise<void> {
    checkTopic(topic)
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new TypeError('payload must be a JSON object')
    }
    if (this.closed) throw new PublisherClosedError('publisher is closed')
    const body = JSON.stringify(payload)
    await new Promise<void>((resolve, reject) => {
      let settled = false
      const settle = (err?: Error): void => {
        if (settled) return
        settled = true
        this.pending.delete(settle)
        if (err === undefined) resolve()
        else reject(err)
      }
      this.pending.add(settle)
      this.client.publish(topic, body, { qos: 1, retain }, (err) => { settle(err ?? undefined) })
    })
  }

  /**
   * Disconnects. If the connection is up and nothing is in flight, sends DISCONNECT (MQTT 3.1.1 section 3.14);
   * otherwise closes the socket. Publishes still waiting for PUBACK are rejected with PublisherClosedError.
   * Idempotent; later publishes reject.
   */
  async close (): Promise<void> {
    if (this.closing !== undefined) return await this.closing
    this.closed = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const force = this.pending.size > 0 || !this.client.connected
    for (const settle of [...this.pending]) settle(new PublisherClosedError())
    this.closing = new Promise<void>((resolve) => {
      if (!this.client.connected) {
        // Offline (between reconnect attempts, or trying one): no socket may emit 'close', so MQTT.js's end
        // callback may never run. end(true) destroys any half-open socket; done.
        this.client.end(true)
        resolve()
        return
      }
      // A graceful end can wait on a broker that never closes its side; fall back to destroying the socket after 2 s.
      const timer = setTimeout(() => {
        this.client.stream?.destroy()
        resolve()
      }, 2000)
      this.client.end(force, () => {
        clearTimeout(timer)
        resolve()
      })
    })
    await this.closing
  }
}
