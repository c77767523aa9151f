/**
 * Which `$replay` subscriptions each client holds, kept in step with aedes' own view of the client's subscriptions
 * (`client.subscriptions`), and where persistent sessions stopped so that their reconnect resumes instead of
 * replaying everything again. Each subscription is a slot: taken when the SUBSCRIBE is authorized (so the limit per
 * client counts it), attached to the hub once aedes has subscribed the client, released on UNSUBSCRIBE or disconnect.
 */
import type { Attachment, FeedHub } from './hub.js'
import type { ReplayFrom, ReplayRequest } from './replay-filter.js'
import type { ClientSinks, FeedClient } from './client-sink.js'

interface Slot {
  request: ReplayRequest
  att: Attachment | null
  released: boolean
}

export class ReplaySubscriptions {
  readonly #hub: FeedHub
  readonly #sinks: ClientSinks
  readonly #maxPerClient: number
  readonly #maxParked: number
  readonly #slots = new WeakMap<FeedClient, Map<string, Slot>>()
  /** The connection that currently holds each persistent session, by client id. */
  readonly #sessions = new Map<string, FeedClient>()
  /** Where persistent sessions' `$replay` subscriptions stopped, by client id and filter. */
  readonly #parked = new Map<string, { seq: number, epoch: string }>()
  /** For a connection that took over a persistent session: the connection it replaced. */
  readonly #previous = new WeakMap<FeedClient, FeedClient>()

  /**
   * @param maxPerClient `$replay` subscriptions one client may hold
   * @param maxParked persistent sessions' positions kept for their reconnect (oldest dropped first)
   */
  constructor (hub: FeedHub, sinks: ClientSinks, maxPerClient: number, maxParked = 100_000) {
    this.#hub = hub
    this.#sinks = sinks
    this.#maxPerClient = maxPerClient
    this.#maxParked = maxParked
  }

  /**
   * Takes a slot for a `$replay` subscription being authorized.
   * @returns false when the client already holds the most it may (the SUBSCRIBE then gets 0x80 for it)
   */
  reserve (client: FeedClient, filter: string, request: ReplayRequest): boolean {
    // A SUBSCRIBE authorized after its connection closed (aedes may still run it) must leave nothing behind.
    if (client.closed) return false
    let mine = this.#slots.get(client)
    if (mine === undefined) {
      mine = new Map()
      this.#slots.set(client, mine)
    }
    const before = mine.get(filter)
    if (before === undefined && mine.size >= this.#maxPerClient) return false
    if (!client.clean) this.#holdSession(client)
    if (before !== undefined) this.#release(before)
    mine.set(filter, { request, att: null, released: false })
    return true
  }

  /**
   * Starts sending once aedes has subscribed the client (its `subscribe` event), or at once for a persistent
   * session's subscriptions that aedes restores before CONNACK.
   * @param qos the QoS granted; messages go at min(qos, 1)
   */
  async start (client: FeedClient, filter: string, qos: number): Promise<void> {
    const slot = this.#slots.get(client)?.get(filter)
    if (slot === undefined || slot.released || slot.att !== null) return
    const from = this.#resumePoint(client, filter) ?? slot.request.from
    const sink = this.#sinks.sink(client, filter, qos > 0 ? 1 : 0)
    const att = await this.#hub.attach(slot.request.feed, from, sink)
    slot.att = att
    if (slot.released || client.closed) this.#hub.detach(att)
  }

  /** Ends a subscription on UNSUBSCRIBE, in packet order. */
  unsubscribed (client: FeedClient, filter: string): void {
    const mine = this.#slots.get(client)
    const slot = mine?.get(filter)
    if (slot === undefined) return
    this.#release(slot)
    mine?.delete(filter)
  }

  /** Ends all of a client's subscriptions when it disconnects; a persistent session's positions are kept. */
  disconnected (client: FeedClient): void {
    const mine = this.#slots.get(client)
    this.#slots.delete(client)
    this.#previous.delete(client)
    const current = this.#sessions.get(client.id) === client
    if (current) this.#sessions.delete(client.id)
    if (mine === undefined) return
    for (const [filter, slot] of mine) {
      this.#release(slot)
      // A session taken over by a newer connection has already moved on: only the current holder parks.
      if (current && !client.clean && slot.att !== null && slot.att.epoch !== null) {
        this.#park(`${client.id}\u0000${filter}`, slot.att.lastSeq, slot.att.epoch)
      }
    }
  }

  /**
   * Where a restored persistent session resumes: after the last message sent to the connection it replaces
   * (a takeover), or after the position parked when it last disconnected.
   */
  #resumePoint (client: FeedClient, filter: string): ReplayFrom | null {
    if (client.clean || client.connackSent) return null
    const key = `${client.id}\u0000${filter}`
    const parked = this.#parked.get(key)
    this.#parked.delete(key)
    const previous = this.#previous.get(client)
    const att = previous !== undefined ? this.#slots.get(previous)?.get(filter)?.att : undefined
    if (att != null && att.epoch !== null) return { kind: 'after', seq: att.lastSeq, epoch: att.epoch }
    return parked !== undefined ? { kind: 'after', seq: parked.seq, epoch: parked.epoch } : null
  }

  /** Records `client` as the holder of its session id, remembering the connection it takes over, if any. */
  #holdSession (client: FeedClient): void {
    const holder = this.#sessions.get(client.id)
    if (holder === client) return
    if (holder !== undefined && !this.#previous.has(client)) this.#previous.set(client, holder)
    this.#sessions.set(client.id, client)
  }

  #park (key: string, seq: number, epoch: string): void {
    this.#parked.delete(key)
    this.#parked.set(key, { seq, epoch })
    if (this.#parked.size > this.#maxParked) this.#parked.delete(this.#parked.keys().next().value as string)
  }

  #release (slot: Slot): void {
    slot.released = true
    if (slot.att !== null) this.#hub.detach(slot.att)
  }
}
