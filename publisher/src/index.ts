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
 * Several broker URLs (the nodes of a cluster): one connection (link.ts) moving from node to node with its session.
 * Several regions (independent clusters, each with its own Redis): one such connection per region, each with its own
 * queue (region-queue.ts), so a region that is down or slow neither blocks the others nor loses its own messages; a
 * publish resolves once the first region acknowledged it.
 */
import { randomBytes } from 'node:crypto'
import type { ReconnectInfo } from '../../client/src/connection.js'
import { eventId } from '../../client/src/resume-by-id.js'
import { regionList, type BrokerTarget } from '../../client/src/targets.js'
import { BrokerLink, PublisherClosedError } from './link.js'
import { DEFAULT_MAX_QUEUED, RegionQueue, RegionQueueFullError } from './region-queue.js'
import { settleOnce } from './settle.js'

export type { MatchEvent, MatchState, Score, MatchStatus } from './replay/model.js'
export { eventsTopic, stateTopic } from './topics.js'
export { ServerUnavailableError } from '../../client/src/refusal.js'
export type { BrokerUrls, BrokerRegions, BrokerTarget } from '../../client/src/targets.js'
export type { ReconnectInfo } from '../../client/src/connection.js'
export { PublisherClosedError } from './link.js'
export { RegionQueueFullError, DEFAULT_MAX_QUEUED } from './region-queue.js'

/** Options of {@link Publisher.connect}. */
export interface PublisherOptions {
  /** MQTT client id; keep it stable across restarts to resume the session. Default: "tribune-pub-<random>", fixed per Publisher (the same in every region). */
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
   * Several regions only: the most messages waiting for one region (not yet acknowledged there), >= 1. Default
   * {@link DEFAULT_MAX_QUEUED} (100,000). Beyond, that region's oldest waiting message is dropped for it, and onError
   * gets a {@link RegionQueueFullError} (once, until its queue is empty again).
   */
  maxQueued?: number
  /**
   * Called with connection errors after the first connect (the client keeps retrying), a ServerUnavailableError
   * for a refusal included, and the region's index (0 with one region). Default: ignored.
   */
  onError?: (err: Error, region: number) => void
  /** Called when the connection of a region (0 with one region) goes up (true) or is lost (false) after its first connect. */
  onConnectionChange?: (connected: boolean, region: number) => void
  /**
   * Called when a reconnect attempt is scheduled, after the first connect: `{attempt, delayMs, url, lastUrl, refused,
   * retryAfterMs?, region?}` (`region`: its index, with several regions).
   */
  onReconnecting?: (info: ReconnectInfo) => void
}

/** One region of a Publisher, for monitoring (see {@link Publisher.regions}). */
export interface PublisherRegion {
  /** Its index, in the order given. */
  readonly index: number
  /** Its broker URLs in the order they are tried. */
  readonly urls: readonly string[]
  /** The URL in use there. */
  readonly url: string
  /** True while connected there. */
  readonly connected: boolean
  /** Messages not yet acknowledged there (0 with one region: see {@link Publisher.inFlight}). */
  readonly queued: number
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
  /** Publishes whose promise has not settled (several regions: not acknowledged by any region yet). */
  private readonly pending = new Set<(err: Error) => void>()
  /** One promise per message and region, settled when that region acknowledged it or gave it up: what drain() waits for. */
  private readonly outstanding = new Set<Promise<void>>()
  private closed = false
  private closing: Promise<void> | undefined
  /** Several regions: their queues; null with one region (its link is used directly, as before regions existed). */
  private readonly queues: RegionQueue[] | null

  private constructor (private readonly links: readonly BrokerLink[], readonly clientId: string, opts: PublisherOptions) {
    this.queues = links.length > 1
      ? links.map((link, region) => new RegionQueue(region, link, opts.maxQueued ?? DEFAULT_MAX_QUEUED, opts.reconnectPeriod ?? 1000,
        (err) => { opts.onError?.(err, region) }))
      : null
  }

  /**
   * Connects and resolves once a broker accepted (CONNACK).
   * @param target broker URL (mqtt://host:1883, mqtts://, ws://host/mqtt, wss://; credentials may be in it), or a list
   *   of them (the nodes of a cluster), tried in a shuffled order; or `{regions: [[a1, a2], [b1]]}`: several regions
   *   (independent clusters), each such a list, every message published to each.
   * @param opts credentials, client id and timing; the session is always persistent (clean = false)
   * @returns a Publisher that reconnects by itself after the first successful connect, moving to the next URL. With
   *   several regions it resolves once one region accepted; the others go on trying in the background, and get
   *   their messages when they accept.
   * @throws TypeError / RangeError for a bad URL or option; the connection error (e.g. ECONNREFUSED, "Connection
   *   refused: Not authorized", "connack timeout", ServerUnavailableError) when every URL failed once (an
   *   AggregateError of each URL's error when there are several, of each region's with several regions); no retry
   *   is made in that case. A refusal of the login (CONNACK 1, 2, 4, 5) rejects at once, without trying the other
   *   URLs (with several regions: if no region accepted yet).
   */
  static async connect (target: BrokerTarget, opts: PublisherOptions = {}): Promise<Publisher> {
    const clientId = opts.clientId ?? `tribune-pub-${randomBytes(6).toString('hex')}`
    const regions = regionList(target)
    if (opts.maxQueued !== undefined && (!Number.isSafeInteger(opts.maxQueued) || opts.maxQueued < 1)) throw new RangeError(`maxQueued must be an integer >= 1, got ${String(opts.maxQueued)}`)
    const several = regions.length > 1
    const links = regions.map((urls, region) => new BrokerLink(urls, clientId, {
      ...opts,
      onError: (err) => { opts.onError?.(err, region) },
      onConnectionChange: (up) => { opts.onConnectionChange?.(up, region) },
      onReconnecting: (info) => { opts.onReconnecting?.(several ? { ...info, region } : info) }
    }))
    if (!several) {
      try {
        await links[0].firstConnect()
      } catch (err) {
        links[0].abandon()
        throw err
      }
      return new Publisher(links, clientId, opts)
    }
    return new Publisher(links, clientId, opts).firstConnect()
  }

  /** Several regions: every region's first pass at once; resolves on the first region up (see connect). */
  private async firstConnect (): Promise<this> {
    const errors: Array<Error | undefined> = this.links.map(() => undefined)
    let up = false
    await new Promise<void>((resolve, reject) => {
      let failed = 0
      const giveUp = (err: Error): void => {
        for (const link of this.links) link.abandon()
        reject(err)
      }
      this.links.forEach((link, region) => {
        link.firstConnect().then(() => {
          if (up) return
          up = true
          resolve()
        }, (err: Error) => {
          errors[region] = err
          if (up) {
            // Another region is up: this one goes on trying, and gets its queue when it accepts.
            if (link.refusedLogin) link.opts.onError?.(err)
            link.keepTrying()
            return
          }
          if (link.refusedLogin) {
            giveUp(err)
            return
          }
          if (++failed === this.links.length) {
            giveUp(new AggregateError(errors, `no region accepted the connection: ${errors.map((e, i) => `region ${i}: ${e?.message ?? ''}`).join('; ')}`))
          }
        })
      })
    })
    // Regions whose first pass already failed before the first one came up go on trying too.
    this.links.forEach((link, region) => { if (errors[region] !== undefined) link.keepTrying() })
    return this
  }

  /** The broker URL in use (with several regions: in the first region). */
  get url (): string {
    return this.links[0].url
  }

  /** The broker URLs in the order this Publisher tries them (shuffled once, at connect; with several regions: the first region's). */
  get urls (): readonly string[] {
    return this.links[0].urls
  }

  /** Each region's URLs, state and queue (one entry with one region). */
  get regions (): readonly PublisherRegion[] {
    return this.links.map((link, index) => ({
      index,
      urls: link.urls,
      url: link.url,
      connected: link.connected,
      queued: this.queues?.[index].size ?? 0
    }))
  }

  /** Whether the connection to the broker is currently up (with several regions: to at least one). */
  get connected (): boolean {
    return this.links.some((link) => link.connected)
  }

  /** Number of publishes waiting for their PUBACK (with several regions: for the first region's PUBACK). */
  get inFlight (): number {
    return this.queues === null ? this.links[0].inFlight : this.pending.size
  }

  /**
   * Publishes an event to a feed topic as JSON, QoS 1, not retained.
   * The event should carry a string `id`, unique and deterministic within the feed: the broker uses it to drop
   * resends (the README's contract section, "Feeds"), and viewers moving between regions recognise events by it; with
   * several regions it must.
   * @param feedTopic e.g. `matches/2022-12-18-argentina-france/events`
   * @param event a JSON-serialisable object
   * @returns resolves on PUBACK (with several regions: the first region's), also when it comes after a reconnect;
   *   rejects with PublisherClosedError on close()
   * @throws TypeError (as a rejection) for a bad topic, a non-object event, or, with several regions, an event
   *   without a string `id`
   */
  async publishEvent (feedTopic: string, event: object): Promise<void> {
    if (this.queues !== null && event !== null && typeof event === 'object' && !Array.isArray(event) && eventId(event) === undefined) {
      throw new TypeError('with several regions every event needs a non-empty string "id", the same in every region: viewers moving between regions recognise events by it')
    }
    return await this.send(feedTopic, event, false)
  }

  /**
   * Publishes a state object as JSON, QoS 1, retained (MQTT 3.1.1 section 3.3.1.3), replacing the previous state.
   * @param topic e.g. `matches/2022-12-18-argentina-france/state`
   * @param state a JSON-serialisable object
   * @returns resolves on PUBACK (with several regions: the first region's), also when it comes after a reconnect;
   *   rejects with PublisherClosedError on close()
   * @throws TypeError (as a rejection) for a bad topic or a non-object state
   */
  async setState (topic: string, state: object): Promise<void> {
    return await this.send(topic, state, true)
  }

  /**
   * Resolves once every message given so far was acknowledged by every region (or given up there: closed, dropped
   * from a full queue). With a region down it waits until that region is back: race it with a timeout, and read
   * {@link Publisher.regions} for what is still queued.
   */
  async drain (): Promise<void> {
    while (this.outstanding.size > 0) await Promise.allSettled([...this.outstanding])
  }

  private async send (topic: string, payload: object, retain: boolean): Promise<void> {
    checkTopic(topic)
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      throw new TypeError('payload must be a JSON object')
    }
    if (this.closed) throw new PublisherClosedError('publisher is closed')
    const body = JSON.stringify(payload)
    if (this.queues === null) {
      const sent = this.links[0].send(topic, body, retain)
      this.track(sent)
      await sent
      return
    }
    const queues = this.queues
    await new Promise<void>((resolve, reject) => {
      let failures = 0
      const settle = settleOnce(this.pending, resolve, reject)
      for (const queue of queues) {
        this.track(new Promise<void>((resolveRegion) => {
          queue.push(topic, body, retain, (err) => {
            resolveRegion()
            if (err === undefined) settle()
            else if (++failures === queues.length) settle(err)
          })
        }))
      }
    })
  }

  /** Keeps `sent` among what drain() waits for until it settles. */
  private track (sent: Promise<void>): void {
    const entry = sent.then(() => {}, () => {}).finally(() => { this.outstanding.delete(entry) })
    this.outstanding.add(entry)
  }

  /**
   * Disconnects. If the connection is up and nothing is in flight, sends DISCONNECT (MQTT 3.1.1 section 3.14);
   * otherwise closes the socket. Publishes still waiting for PUBACK are rejected with PublisherClosedError; with
   * several regions, what a region has not acknowledged yet is given up for it (call drain() first to wait).
   * Idempotent; later publishes reject.
   */
  async close (): Promise<void> {
    if (this.closing !== undefined) return await this.closing
    this.closed = true
    for (const queue of this.queues ?? []) queue.close()
    for (const settle of [...this.pending]) settle(new PublisherClosedError())
    this.closing = Promise.all(this.links.map(async (link) => { await link.close() })).then(() => {})
    await this.closing
  }
}
