/**
 * The cluster's message stream: what aedes uses as its `mq`. Messages go between nodes through Redis pub/sub
 * (mqemitter-redis; the channel of topic `t` is `<prefix>/t`, so every channel and pattern starts with the prefix), except those that concern this node only, which stay in a local
 * emitter and cost Redis nothing:
 *  - per-client `$SYS` notices of this node (`new/subscribes`, `new/unsubscribes`, `disconnect/clients`, and
 *    `new/clients` of clean-session clients); `new/clients` of a persistent session still goes to every node, which
 *    is how a node hears that a session it holds was taken over elsewhere;
 *  - the individual `$SYS` statistics values of this node (metrics/sys.ts); its heartbeat, birth, statistics
 *    document (`$SYS/<id>/stats`) and feed resets (`$SYS/<id>/feeds/reset`) go to every node;
 *  - `$replay/...` subscriptions: nothing is ever published there (the feed hub serves them).
 * It also closes two gaps of mqemitter-redis 7.2.1:
 *  - a second subscriber of a topic is confirmed only once the first one's Redis SUBSCRIBE is, so no message
 *    published elsewhere in between is missed;
 *  - a message on a channel under the prefix that is not one of ours (another application) is dropped and counted,
 *    instead of crashing the node.
 */
import { createRequire } from 'node:module'
import MQEmitter from 'mqemitter'
import type { Redis } from 'ioredis'

const require = createRequire(import.meta.url)
const { MQEmitterRedisPrefix } = require('mqemitter-redis') as { MQEmitterRedisPrefix: new (prefix: string, opts: object) => RedisEmitter }

/** An MQTT message as it travels through the stream. */
export interface StreamPacket {
  topic: string
  payload: Buffer | string
  [key: string]: unknown
}

type Listener = (packet: StreamPacket, done: () => void) => void

/** The part of an mqemitter (and mqemitter-redis) that aedes and Tribune use. */
export interface Emitter {
  on: (topic: string, listener: Listener, done?: () => void) => unknown
  removeListener: (topic: string, listener: Listener, done?: () => void) => unknown
  emit: (packet: StreamPacket, done?: (err?: Error) => void) => void
  close: (done: () => void) => void
}

interface RedisEmitter extends Emitter {
  state: NodeJS.EventEmitter
  subConn: Redis
  pubConn: Redis
  _subTopic: (topic: string) => string
  /** Listeners per Redis channel or pattern (mqemitter-redis' count; at 0 it UNSUBSCRIBEs). */
  _topics: Record<string, number | undefined>
}

/** How long a Redis subscription outlives its last listener, in ms: a reconnect herd re-subscribes for free. */
const LINGER_MS = 30_000

export interface ClusterEmitterOptions {
  /** This node's aedes id: its `$SYS/<id>/...` notices are the ones kept local. */
  nodeId: string
  /** Channel prefix, e.g. `tribune:` (channels are `tribune:/<topic>`); every Redis channel the node uses starts with it. */
  prefix: string
  /** Connections for publishing and subscribing (the emitter closes them). */
  pubConn: Redis
  subConn: Redis
  /** The client with this id on this node, if any: its clean session flag and identity (auth/access.ts). */
  clientInfo: (clientId: string) => { clean: boolean, identity: string | undefined } | undefined
  /** Called for each foreign message dropped. */
  onForeign?: (channel: string, err: Error) => void
  /** Called when a takeover notice from `byNode` is about to make aedes close this node's client `clientId`. */
  onTakeover?: (clientId: string, byNode: string) => void
}

/** The `$SYS/<this node>/...` notices that go to every node (the others of this node stay local). */
const TO_EVERY_NODE = new Set(['heartbeat', 'birth', 'stats', 'feeds/reset'])

export class ClusterEmitter implements Emitter {
  readonly #redis: RedisEmitter
  readonly #local: Emitter
  readonly #nodeId: string
  readonly #prefix: string
  readonly #clientInfo: ClusterEmitterOptions['clientInfo']
  readonly #onTakeover: ClusterEmitterOptions['onTakeover']
  /** Listeners of takeover notices, and what they were wrapped in for the notices that come through Redis. */
  readonly #wrapped = new WeakMap<Listener, Listener>()
  /** Redis subscriptions not yet confirmed, by Redis channel or pattern. */
  readonly #pending = new Map<string, Promise<void>>()
  /** Redis subscriptions kept after their last listener left, by channel or pattern. */
  readonly #lingering = new Map<string, NodeJS.Timeout>()
  /** Messages dropped because they were not ours. */
  foreignMessages = 0

  constructor (opts: ClusterEmitterOptions) {
    this.#nodeId = opts.nodeId
    // The prefix is a topic level of its own (`tribune:/matches/1/events`): glued to the first level, it would turn
    // a filter that starts with a wildcard (`#`, `+/x`) into a plain word (`tribune:#`) that matches nothing.
    this.#prefix = `${opts.prefix}/`
    this.#clientInfo = opts.clientInfo
    this.#onTakeover = opts.onTakeover
    this.#local = new (MQEmitter as unknown as new (opts: object) => Emitter)({ matchEmptyLevels: true })
    this.#redis = new MQEmitterRedisPrefix(this.#prefix, { pubConn: opts.pubConn, subConn: opts.subConn, matchEmptyLevels: true })
    // mqemitter-redis re-emits connection errors on `state`; the connections' own handlers (cluster/open.ts) log them,
    // and without a listener here each one would be thrown.
    this.#redis.state.on('error', () => {})
    guardForeign(this.#redis.subConn, (channel, err) => {
      this.foreignMessages++
      opts.onForeign?.(channel, err)
    })
  }

  /**
   * Subscribes `listener` to `topic` (a topic filter); `done` runs once messages from every node will reach it.
   * `$SYS` filters listen locally and on Redis; `$replay` filters locally only; everything else on Redis.
   */
  on (topic: string, listener: Listener, done?: () => void): this {
    const where = this.#route(topic)
    let waits = 0
    const finish = (): void => { if (--waits === 0) done?.() }
    if (where !== 'redis') {
      waits++
      this.#local.on(topic, listener, finish)
    }
    if (where !== 'local') {
      waits++
      listener = this.#takeoverGuard(topic, listener)
      const channel = this.#redis._subTopic(this.#prefix + topic)
      // While Redis is unreachable nothing flows between nodes, and ioredis subscribes once it is back: the SUBACK
      // need not wait (a viewer can join during an outage).
      const up = this.#redis.subConn.status === 'ready'
      const pending = this.#pending.get(channel)
      if (pending !== undefined) {
        this.#redis.on(topic, listener)
        if (up) void pending.then(finish)
        else finish()
      } else {
        const confirmed = new Promise<void>((resolve) => this.#redis.on(topic, listener, resolve))
        this.#pending.set(channel, confirmed)
        void confirmed.then(() => { if (this.#pending.get(channel) === confirmed) this.#pending.delete(channel) })
        if (up) void confirmed.then(finish)
        else finish()
      }
    }
    return this
  }

  removeListener (topic: string, listener: Listener, done?: () => void): this {
    const where = this.#route(topic)
    let waits = where === 'both' ? 2 : 1
    const finish = (): void => { if (--waits === 0) done?.() }
    if (where !== 'redis') this.#local.removeListener(topic, listener, finish)
    if (where !== 'local') {
      const channel = this.#redis._subTopic(this.#prefix + topic)
      if (this.#redis._topics[channel] === 1 && !this.#lingering.has(channel)) this.#linger(topic, channel)
      this.#redis.removeListener(topic, this.#wrapped.get(listener) ?? listener, finish)
    }
    return this
  }

  /**
   * The last listener of a Redis channel is leaving: a listener that ignores everything keeps the subscription for
   * LINGER_MS, so viewers that come back (a reconnect herd, a viewer moving node) cost no SUBSCRIBE/UNSUBSCRIBE.
   */
  #linger (topic: string, channel: string): void {
    const keeper: Listener = (_packet, done) => done()
    this.#redis.on(topic, keeper)
    const timer = setTimeout(() => {
      this.#lingering.delete(channel)
      this.#redis.removeListener(topic, keeper)
    }, LINGER_MS)
    timer.unref()
    this.#lingering.set(channel, timer)
  }

  /** Publishes a message: through Redis to every node, or (this node's per-client notices) locally. */
  emit (packet: StreamPacket, done?: (err?: Error) => void): void {
    if (this.#isLocalNotice(packet)) {
      this.#local.emit(packet, done)
    } else if (packet.topic === `$SYS/${this.#nodeId}/new/clients`) {
      // A persistent session's takeover notice carries the identity that took it, for #takeoverGuard.
      const clientId = String(packet.payload)
      const payload = JSON.stringify({ clientId, identity: this.#clientInfo(clientId)?.identity ?? null })
      this.#redis.emit({ ...packet, payload: Buffer.from(payload) }, done)
    } else {
      this.#redis.emit(packet, done)
    }
  }

  /**
   * Takeover notices (`$SYS/<node>/new/clients`) from other nodes make aedes close its own client with that id
   * (MQTT 3.1.1 section 3.1.4). One sent for another identity's connection is dropped: a client id in use here is not
   * taken over by someone else elsewhere. The listener gets the plain client id as aedes sends it.
   */
  #takeoverGuard (topic: string, listener: Listener): Listener {
    if (topic !== '$SYS/+/new/clients') return listener
    const guarded: Listener = (packet, done) => {
      let notice: { clientId?: unknown, identity?: unknown }
      try {
        notice = JSON.parse(String(packet.payload)) as typeof notice
      } catch {
        notice = { clientId: String(packet.payload) }
      }
      if (typeof notice.clientId !== 'string') return done()
      const here = this.#clientInfo(notice.clientId)
      if (here?.identity !== undefined && notice.identity !== here.identity) return done()
      const byNode = packet.topic.split('/')[1]
      if (here !== undefined && byNode !== this.#nodeId) this.#onTakeover?.(notice.clientId, byNode)
      listener({ ...packet, payload: Buffer.from(notice.clientId) }, done)
    }
    this.#wrapped.set(listener, guarded)
    return guarded
  }

  /** Closes the local emitter and both Redis connections. */
  close (done: () => void): void {
    for (const timer of this.#lingering.values()) clearTimeout(timer)
    // mqemitter-redis QUITs and waits for the connections to end, which never happens while Redis is unreachable:
    // then drop them after 2 s and finish without it.
    let finished = false
    const finish = (): void => {
      if (finished) return
      finished = true
      clearTimeout(force)
      done()
    }
    const force = setTimeout(() => {
      this.#redis.subConn.disconnect()
      this.#redis.pubConn.disconnect()
      finish()
    }, 2000)
    force.unref()
    this.#local.close(() => this.#redis.close(finish))
  }

  #route (topic: string): 'local' | 'redis' | 'both' {
    if (topic.startsWith('$replay/')) return 'local'
    if (topic.startsWith('$SYS/') || topic === '$SYS') return 'both'
    return 'redis'
  }

  #isLocalNotice (packet: StreamPacket): boolean {
    const topic = packet.topic
    if (topic.startsWith('$replay/')) return true
    const mine = `$SYS/${this.#nodeId}/`
    if (!topic.startsWith(mine)) return false
    const what = topic.slice(mine.length)
    if (what === 'new/clients') return this.#clientInfo(String(packet.payload))?.clean === true
    // To every node: aedes' heartbeat and birth (how nodes learn of each other), the statistics document, and a feed
    // reset (every node's hub tells its viewers, feeds.ts).
    return !TO_EVERY_NODE.has(what)
  }
}

/**
 * Wraps the message handlers mqemitter-redis put on the subscriber connection, so a message it cannot decode (another
 * application publishing under our prefix) is dropped instead of throwing out of the connection's event handler.
 */
function guardForeign (sub: Redis, onForeign: (channel: string, err: Error) => void): void {
  for (const event of ['messageBuffer', 'pmessageBuffer'] as const) {
    const handlers = sub.listeners(event) as Array<(...args: Buffer[]) => void>
    sub.removeAllListeners(event)
    for (const handler of handlers) {
      sub.on(event, (...args: Buffer[]) => {
        try {
          handler(...args)
        } catch (err) {
          onForeign(String(args[event === 'pmessageBuffer' ? 1 : 0]), err as Error)
        }
      })
    }
  }
}
