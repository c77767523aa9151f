/**
 * One cluster's connection of a Publisher (with several regions, one per region): one MQTT.js client for its whole
 * life, with a persistent session (clean session = false, MQTT 3.1.1 section 3.1.2.4) under a fixed client id, so that
 * when the connection drops MQTT.js keeps the unacknowledged QoS 1 packets and resends them after reconnecting; its
 * stream builder (the public `MqttClient` constructor takes one) opens the connection to the URL in use, tried in a
 * shuffled order, moving to the next on any failure. Reconnecting is done here rather than by MQTT.js, to wait longer
 * after a refusal (CONNACK 3, HTTP 503).
 */
import net from 'node:net'
import tls from 'node:tls'
import mqtt, { type IClientOptions, type IStream, type MqttClient } from 'mqtt'
import { WebSocket, createWebSocketStream } from 'ws'
import { reconnectDelay, type AttemptFailure } from '../../client/src/backoff.js'
import { settleOnce } from './settle.js'
import type { ReconnectInfo } from '../../client/src/connection.js'
import { ServerUnavailableError, closedBeforeAnswer, unavailableConnackCode, upgradeRefusalHook } from '../../client/src/refusal.js'
import { TargetRotation, withoutPassword, type BrokerUrls } from '../../client/src/targets.js'

/** What a {@link BrokerLink} needs: credentials, timing, and where it reports (see the Publisher's options). */
export interface LinkOptions {
  username?: string
  password?: string
  keepalive?: number
  reconnectPeriod?: number
  refusedMinMs?: number
  connectTimeout?: number
  random?: () => number
  onError?: (err: Error) => void
  onConnectionChange?: (connected: boolean) => void
  onReconnecting?: (info: ReconnectInfo) => void
}

/** Thrown for publishes that are still unacknowledged when the Publisher is closed, or made after it. */
export class PublisherClosedError extends Error {
  constructor (message = 'publisher closed before the broker acknowledged the message') {
    super(message)
    this.name = 'PublisherClosedError'
  }
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

/**
 * One cluster's connection: see the module comment. Make it, then {@link BrokerLink.firstConnect}; if that fails,
 * either {@link BrokerLink.abandon} it or let it {@link BrokerLink.keepTrying} in the background.
 */
export class BrokerLink {
  /** Unacknowledged publishes, rejected by close(). */
  private readonly pending = new Set<(err: Error) => void>()
  private readonly upListeners = new Set<() => void>()
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
  /** True once the first connect succeeded (or keepTrying was called): from then on the link reconnects by itself. */
  private running = false
  private up = false
  private attempt = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  /** True when the first connect's pass ended on a refused login (CONNACK 1, 2, 4 or 5), which another node would answer too. */
  refusedLogin = false

  /**
   * @throws TypeError for a URL that does not parse or has another protocol than mqtt, mqtts, ws, wss (tcp, ssl, tls);
   *   RangeError for an empty list or a bad reconnectPeriod / refusedMinMs.
   */
  constructor (urls: BrokerUrls, readonly clientId: string, readonly opts: LinkOptions) {
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

  /** The broker URL in use: connected to, being tried, or to be tried next. */
  get url (): string {
    return this.targets.current
  }

  /** The broker URLs in the order this link tries them (shuffled once). */
  get urls (): readonly string[] {
    return this.targets.order
  }

  /** Whether the connection to the broker is currently up (CONNACK received). */
  get connected (): boolean {
    return this.client.connected
  }

  /** True once connected and MQTT.js has resent what waited from the previous connection (its `connect` event). */
  get isUp (): boolean {
    return this.up && !this.closed
  }

  /** Number of publishes waiting for their PUBACK. */
  get inFlight (): number {
    return this.pending.size
  }

  /** Calls `listener` each time the link is up (see {@link BrokerLink.isUp}); returns a remover. */
  onUp (listener: () => void): () => void {
    this.upListeners.add(listener)
    return () => { this.upListeners.delete(listener) }
  }

  /**
   * One pass over the URLs, one attempt each, until one accepts.
   * @throws (rejects) the connection error when every URL failed (an AggregateError of each URL's error when there
   *   are several); at once on a refused login (then `refusedLogin` is true). The link is left as it is: abandon it,
   *   or keepTrying.
   */
  async firstConnect (): Promise<void> {
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
      if (this.closed) throw new PublisherClosedError('publisher closed while connecting')
      const error = this.attemptError ?? new Error(`connection to ${withoutPassword(url)} closed before CONNACK`)
      errors.push(error)
      const code = (error as { code?: unknown }).code
      if (!(error instanceof ServerUnavailableError) && typeof code === 'number' && FATAL_CONNACK.has(code)) {
        this.refusedLogin = true
        break
      }
    }
    if (errors.length === 1) throw errors[0]
    throw new AggregateError(errors, `no broker accepted the connection: ${errors.map((e, i) => `${withoutPassword(this.targets.order[i])}: ${e.message}`).join('; ')}`)
  }

  /** After a failed first connect: go on trying (the next URL after reconnectPeriod, and so on), as after a lost connection. */
  keepTrying (): void {
    if (this.closed || this.running) return
    this.running = true
    this.scheduleRetry(this.failure)
  }

  /** After a failed first connect: give up for good. */
  abandon (): void {
    this.closed = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.client.end(true)
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
    for (const listener of [...this.upListeners]) listener()
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
    this.scheduleRetry(failure)
  }

  /** The next attempt, on the next URL: after reconnectPeriod, or after a refusal Retry-After / refusedMinMs plus jitter. */
  private scheduleRetry (failure: AttemptFailure): void {
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

  /**
   * Publishes `body` to `topic`, QoS 1; resolves on PUBACK, also when it comes after a reconnect (MQTT.js resends it
   * from the session's store); rejects with PublisherClosedError on close().
   */
  async send (topic: string, body: string, retain: boolean): Promise<void> {
    if (this.closed) throw new PublisherClosedError('publisher is closed')
    await new Promise<void>((resolve, reject) => {
      const settle = settleOnce(this.pending, resolve, reject)
      this.client.publish(topic, body, { qos: 1, retain }, (err) => { settle(err ?? undefined) })
    })
  }

  /**
   * Disconnects. If the connection is up and nothing is in flight, sends DISCONNECT (MQTT 3.1.1 section 3.14);
   * otherwise closes the socket. Publishes still waiting for PUBACK are rejected with PublisherClosedError.
   * Idempotent.
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
