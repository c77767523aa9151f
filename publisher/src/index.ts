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
 */
import { randomBytes } from 'node:crypto'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'

export type { MatchEvent, MatchState, Score, MatchStatus } from './replay/model.js'
export { eventsTopic, stateTopic } from './topics.js'

/** Options of {@link Publisher.connect}. */
export interface PublisherOptions {
  /** MQTT client id; keep it stable across restarts to resume the session. Default: "tribune-pub-<random>", fixed per Publisher. */
  clientId?: string
  username?: string
  password?: string
  /** Keep-alive, seconds (MQTT 3.1.1 section 3.1.2.10). Default 30. */
  keepalive?: number
  /** Pause between reconnect attempts, ms. Default 1000. */
  reconnectPeriod?: number
  /** Time to wait for CONNACK on each attempt, ms. Default 10000. */
  connectTimeout?: number
  /** Called with connection errors after the first connect (the client keeps retrying). Default: ignored. */
  onError?: (err: Error) => void
  /** Called when the connection goes up (true) or is lost (false) after the first connect. */
  onConnectionChange?: (connected: boolean) => void
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

/** A connected publisher; create with {@link Publisher.connect}. */
export class Publisher {
  /** Unacknowledged publishes, rejected by close(). */
  private readonly pending = new Set<(err: Error) => void>()
  private closed = false
  private closing: Promise<void> | undefined

  private constructor (private readonly client: MqttClient, readonly clientId: string) {}

  /**
   * Connects to a broker and resolves once the first CONNACK arrives.
   * @param url broker URL: mqtt://host:1883, mqtts://, ws://host/mqtt, wss://
   * @param opts credentials, client id and timing; the session is always persistent (clean = false)
   * @returns a Publisher that reconnects by itself after the first successful connect
   * @throws the connection error (e.g. ECONNREFUSED, "Connection refused: Not authorized", "connack timeout")
   *   when the first attempt fails; no retry is made in that case
   */
  static async connect (url: string, opts: PublisherOptions = {}): Promise<Publisher> {
    const clientId = opts.clientId ?? `tribune-pub-${randomBytes(6).toString('hex')}`
    const options: IClientOptions = {
      clientId,
      clean: false,
      protocolVersion: 4,
      keepalive: opts.keepalive ?? 30,
      reconnectPeriod: opts.reconnectPeriod ?? 1000,
      connectTimeout: opts.connectTimeout ?? 10_000,
      resubscribe: false,
      queueQoSZero: false,
      // After the first connect, keep retrying when a restarting broker refuses us (e.g. "Server unavailable").
      reconnectOnConnackError: true
    }
    if (opts.username !== undefined) options.username = opts.username
    if (opts.password !== undefined) options.password = opts.password
    const client = mqtt.connect(url, options)
    let onError = (_err: Error): void => {}
    // A permanent listener: an 'error' event without one would crash the process.
    client.on('error', (err) => { onError(err) })
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        client.off('connect', onConnect)
        client.off('close', onClose)
        onError = () => {}
      }
      const onConnect = (): void => { cleanup(); resolve() }
      const onFail = (err: Error): void => {
        cleanup()
        client.end(true)
        reject(err)
      }
      const onClose = (): void => { onFail(new Error(`connection to ${url} closed before CONNACK`)) }
      onError = onFail
      client.on('connect', onConnect)
      client.on('close', onClose)
    })
    const publisher = new Publisher(client, clientId)
    onError = (err) => { opts.onError?.(err) }
    client.on('connect', () => { opts.onConnectionChange?.(true) })
    client.on('offline', () => { opts.onConnectionChange?.(false) })
    return publisher
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
    const force = this.pending.size > 0 || !this.client.connected
    for (const settle of [...this.pending]) settle(new PublisherClosedError())
    this.closing = new Promise<void>((resolve) => {
      if (!this.client.connected) {
        // Offline (between reconnect attempts): no socket will emit 'close', so MQTT.js's end callback may
        // never run. end(true) stops the reconnect timer and destroys any half-open socket; done.
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
