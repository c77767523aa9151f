// Watching one feed through the broker's $replay subscriptions (the README's contract section, "Feeds" and
// "Subscribing"), as an explicit state machine over an injected transport. Delivers each envelope to the app
// exactly once and in seq order: duplicates are dropped, a gap triggers a resubscribe from the position, a
// reset notice restarts the position. With several regions it also keeps the ids it delivered, to resume in another
// region, where seq and epoch differ, by event id (resume-by-id.ts). Standard APIs only, so it runs in Node and in the
// browser.

import { TypedEmitter } from './emitter.js'
import { parseFeedPayload, type FeedEnvelope, type FeedPosition, type ResetNotice } from './envelope.js'
import { Position } from './position.js'
import { assertFeedTopic, parseFeedStart, replayFilter, type FeedStart, type NamedFeedStart } from './replay.js'
import { IdResume, eventId } from './resume-by-id.js'

/** MQTT quality of service level (MQTT 3.1.1 section 4.3). */
export type QoS = 0 | 1 | 2

/**
 * The small transport a {@link FeedSubscription} needs; the Viewer implements it on MQTT.js, tests with a fake.
 * A subscription pairs every `subscribe(filter)` call with exactly one later `unsubscribe(filter)` call, so an
 * implementation may reference-count filters shared by several subscriptions.
 */
export interface FeedTransport {
  /** True while an MQTT connection is up (CONNACK received, socket not closed). */
  readonly connected: boolean
  /**
   * Sends SUBSCRIBE for one filter (MQTT 3.1.1 section 3.8). Resolves on a SUBACK granting it; rejects with a
   * {@link SubackFailureError} if the broker refuses it (return code 0x80, section 3.9.3), and with any other error
   * when the connection is lost or fails before the SUBACK (the subscription then tries again).
   */
  subscribe: (filter: string, qos: QoS) => Promise<void>
  /** Sends UNSUBSCRIBE for one filter (section 3.10); resolves on UNSUBACK (or at once when offline). */
  unsubscribe: (filter: string) => Promise<void>
  /** Registers a listener for every incoming PUBLISH (topic, payload). Returns a function removing it. */
  onMessage: (listener: (topic: string, payload: Uint8Array | string) => void) => () => void
  /** Registers a listener for connection up (true, after CONNACK) / down (false). Returns a remover. */
  onConnectionChange: (listener: (connected: boolean) => void) => () => void
}

/** The broker refused a SUBSCRIBE: SUBACK return code 0x80 (MQTT 3.1.1 section 3.9.3). Final for a feed. */
export class SubackFailureError extends Error {
  constructor (message = 'SUBACK return code 0x80 (failure)') {
    super(message)
    this.name = 'SubackFailureError'
  }
}

/** ms before a SUBSCRIBE that failed without a refusal, on a connection still up, is sent again. */
const SUBSCRIBE_RETRY_MS = 1000

/** States of a feed subscription. */
export type FeedState = 'idle' | 'subscribing' | 'live' | 'resubscribing' | 'closed'

/**
 * Allowed transitions. `subscribing`: first SUBSCRIBE sent or waiting for a connection to send it;
 * `live`: SUBACK received, messages flowing; `resubscribing`: connection lost, gap seen or epoch reset,
 * waiting to (or about to) SUBSCRIBE from the position; `closed`: final.
 */
export const FEED_TRANSITIONS: Readonly<Record<FeedState, readonly FeedState[]>> = {
  idle: ['subscribing', 'closed'],
  subscribing: ['live', 'resubscribing', 'closed'],
  live: ['resubscribing', 'closed'],
  resubscribing: ['live', 'closed'],
  closed: []
}

/** True if {@link FEED_TRANSITIONS} allows `from` -> `to`. */
export function canTransition (from: FeedState, to: FeedState): boolean {
  return FEED_TRANSITIONS[from].includes(to)
}

/** Payload of the `state` event. */
export interface FeedStateChange {
  readonly old: FeedState
  readonly new: FeedState
  readonly reason: string
}

/** Payload of the `gap` event: the seq the position expected and the one that arrived. */
export interface FeedGap {
  readonly expected: number
  readonly got: number
}

/** Events of a {@link FeedSubscription}. */
export interface FeedSubscriptionEvents {
  /** Every state change, with the reason (e.g. "start", "subscribed", "disconnected", "gap: ..."). */
  state: [change: FeedStateChange]
  /** An envelope delivered to the app (exactly once, in seq order). */
  message: [envelope: FeedEnvelope]
  /**
   * The position was reset (broker reset notice, or an envelope with a new epoch, or, after a region switch, the
   * viewer's place not found in the new region: reason `region-changed`); what follows starts over.
   */
  reset: [notice: ResetNotice]
  /** A gap was seen; a resubscribe from the position follows. */
  gap: [gap: FeedGap]
  /** A malformed message, a refused subscription, an app callback that threw. Not thrown if unheard. */
  error: [error: Error]
}

/** Options of a {@link FeedSubscription}. */
export interface FeedSubscriptionOptions {
  /** Where to start: 'all' (default), 'last-<n>', or a position `{seq, epoch}` to resume after. */
  readonly from?: FeedStart
  /** QoS of the SUBSCRIBE; default 1 (feeds are published at QoS 1). */
  readonly qos?: QoS
  /**
   * Consecutive gap-triggered resubscribes allowed without the position advancing, before the subscription
   * gives up (emits `error` and closes); default 5. Guards against a resubscribe loop on a broker that keeps
   * sending a gap.
   */
  readonly maxGapRetries?: number
  /**
   * Resume by event id after a region switch ({@link FeedSubscription.changeRegion}); the Viewer sets it when given
   * several regions. `replay`: what to ask the new region for, `last-<n>` or `all` (n is also the most events held
   * while looking for the viewer's place); `deliveredIds`: how many delivered ids the feed keeps (>= 1).
   */
  readonly resumeById?: { readonly replay: NamedFeedStart, readonly deliveredIds: number }
}

/** Counters of a {@link FeedSubscription}, for diagnostics and tests. */
export interface FeedStats {
  delivered: number
  /** Dropped: seq already delivered. */
  duplicates: number
  /** Dropped: the event's id was delivered already (several regions only). */
  knownIds: number
  /** Dropped after a region switch: older than the event the viewer's place was found at. */
  older: number
  /** Region switches. */
  regionSwitches: number
  gaps: number
  resets: number
  ignored: number
  invalid: number
}

/**
 * Watches one feed over a {@link FeedTransport}.
 *
 * First SUBSCRIBE: `$replay/all/<feed>`, `$replay/last-<n>/<feed>` or `$replay/after-<seq>@<epoch>/<feed>` per
 * `from`. After a reconnect or a gap: UNSUBSCRIBE the previous filter, then SUBSCRIBE
 * `$replay/after-<seq>@<epoch>/<feed>` from the last delivered position (or `$replay/all/<feed>` after a reset
 * with nothing delivered since, or the initial filter if nothing was ever delivered). Only messages whose topic
 * equals the filter currently subscribed are considered. While (re)subscribing, in-order envelopes are still
 * delivered but gaps are ignored (the new subscription fills them); when live, a gap triggers a resubscribe.
 */
export class FeedSubscription extends TypedEmitter<FeedSubscriptionEvents> {
  readonly #feed: string
  readonly #transport: FeedTransport
  readonly #initial: FeedStart
  readonly #qos: QoS
  readonly #maxGapRetries: number
  readonly #onMessage: ((envelope: FeedEnvelope) => void) | undefined
  readonly #position: Position
  readonly #stats: FeedStats = { delivered: 0, duplicates: 0, knownIds: 0, older: 0, regionSwitches: 0, gaps: 0, resets: 0, ignored: 0, invalid: 0 }
  /** Resume by id across regions (null with one region). */
  readonly #ids: IdResume<FeedEnvelope> | null
  /** What the first SUBSCRIBE in a new region asks for, once something was delivered. */
  readonly #regionStart: NamedFeedStart
  #state: FeedState = 'idle'
  /** Incremented whenever a pending transport operation becomes stale (new attempt, disconnect, close). */
  #generation = 0
  /** True while an unsubscribe/subscribe sequence of the current generation awaits its acks. */
  #attempting = false
  /** The filter whose messages are accepted (null while switching filters or offline). */
  #activeFilter: string | null = null
  /** The filter passed to transport.subscribe and not yet passed to transport.unsubscribe. */
  #heldFilter: string | null = null
  /** True once a reset happened: with nothing delivered since, resubscribe with $replay/all. */
  #restarted = false
  /** True after a region switch with something delivered: with no position there yet, subscribe #regionStart. */
  #moved = false
  #gapRetries = 0
  #lastGapSeq: number | undefined
  #removers: Array<() => void> = []

  /**
   * @param feed the feed topic, e.g. `matches/2022-12-18-argentina-france/events` (no wildcards, no leading $).
   * @param transport the MQTT transport (see {@link FeedTransport}).
   * @param options start point, QoS, gap retry limit.
   * @param onMessage optional callback for each delivered envelope (same as the `message` event).
   * @throws RangeError if the feed topic or the start point is invalid.
   */
  constructor (feed: string, transport: FeedTransport, options: FeedSubscriptionOptions = {},
    onMessage?: (envelope: FeedEnvelope) => void) {
    super()
    assertFeedTopic(feed)
    const raw = options.from ?? 'all'
    // Accept the textual forms too ('after-<seq>@<epoch>' from a command line); validates `from`.
    const from = typeof raw === 'string' ? parseFeedStart(raw) : raw
    replayFilter(feed, from)
    this.#feed = feed
    this.#transport = transport
    this.#initial = from
    this.#qos = options.qos ?? 1
    this.#maxGapRetries = options.maxGapRetries ?? 5
    this.#onMessage = onMessage
    this.#position = new Position(typeof from === 'string' ? undefined : from)
    const resume = options.resumeById
    if (resume !== undefined) {
      const start = parseFeedStart(resume.replay)
      if (typeof start !== 'string') throw new RangeError(`resumeById.replay must be all or last-<n>, got ${JSON.stringify(resume.replay)}`)
      const n = start === 'all' ? resume.deliveredIds : Number(start.slice('last-'.length))
      if (n < 1) throw new RangeError(`resumeById.replay must replay at least one event, got ${start}`)
      this.#ids = new IdResume(resume.deliveredIds, n)
      this.#regionStart = start
    } else {
      this.#ids = null
      this.#regionStart = 'all'
    }
  }

  /** The feed topic watched. */
  get feed (): string {
    return this.#feed
  }

  /** The current state. */
  get state (): FeedState {
    return this.#state
  }

  /** The last delivered position `{seq, epoch}`, or undefined if nothing delivered since start / the last reset. */
  get position (): FeedPosition | undefined {
    return this.#position.current
  }

  /** The $replay filter whose messages are currently accepted, or undefined. */
  get filter (): string | undefined {
    return this.#activeFilter ?? undefined
  }

  /** A copy of the counters (delivered, duplicates, knownIds, older, regionSwitches, gaps, resets, ignored, invalid). */
  get stats (): FeedStats {
    return { ...this.#stats }
  }

  /**
   * Starts watching: idle -> subscribing, and sends the first SUBSCRIBE now if connected, else on the next
   * connection.
   * @throws Error if not idle.
   */
  start (): void {
    if (this.#state !== 'idle') throw new Error(`cannot start a feed subscription in state ${this.#state}`)
    this.#removers.push(
      this.#transport.onMessage((topic, payload) => { this.#handleMessage(topic, payload) }),
      this.#transport.onConnectionChange((up) => { this.#handleConnection(up) })
    )
    this.#setState('subscribing', 'start')
    if (this.#transport.connected) this.#subscribeNext()
  }

  /**
   * Stops watching: -> closed, and UNSUBSCRIBEs the held filter (if any). Idempotent.
   * @param reason recorded in the `state` event; default "closed".
   */
  async close (reason = 'closed'): Promise<void> {
    if (this.#state === 'closed') return
    this.#generation++
    this.#attempting = false
    this.#activeFilter = null
    for (const remove of this.#removers) remove()
    this.#removers = []
    this.#setState('closed', reason)
    const held = this.#heldFilter
    this.#heldFilter = null
    if (held !== null) {
      try {
        await this.#transport.unsubscribe(held)
      } catch {
        // offline or closing: nothing to undo on the broker (clean session)
      }
    }
  }

  /**
   * The viewer's connection moved to another region (seq and epoch differ there): the position is forgotten, and the
   * next SUBSCRIBE (on the next connection) asks the new region for its recent history (`resumeById.replay`), from
   * which only events whose id was not delivered are delivered, after the last one that was (see resume-by-id.ts).
   * With nothing delivered yet, it subscribes as it would have at the start. Without `resumeById`, the feed starts
   * over as after a reset, since a position of one region means nothing in another.
   */
  changeRegion (): void {
    if (this.#state === 'closed' || this.#state === 'idle') return
    this.#stats.regionSwitches++
    this.#generation++
    this.#attempting = false
    this.#activeFilter = null
    const hadPosition = this.#position.epoch !== undefined
    this.#position.reset()
    this.#gapRetries = 0
    this.#lastGapSeq = undefined
    let startOver = false
    if (this.#ids === null) {
      startOver = hadPosition
    } else if (this.#ids.hasDelivered) {
      this.#ids.switched()
      this.#moved = true
      this.#restarted = false
    }
    if (startOver) this.#restarted = true
    if (this.#state === 'live' || this.#state === 'subscribing') this.#setState('resubscribing', 'region changed')
    if (startOver) {
      this.#stats.resets++
      this.#emitSafely('reset', { reset: true, epoch: null, reason: 'region-changed' })
    }
    if (this.#transport.connected) this.#subscribeNext()
  }

  /** The single place the state changes; emits `state` {old, new, reason}. Same-state calls are ignored. */
  #setState (next: FeedState, reason: string): void {
    const old = this.#state
    if (old === next) return
    if (!canTransition(old, next)) throw new Error(`illegal feed state transition ${old} -> ${next} (${reason})`)
    this.#state = next
    this.#emitSafely('state', { old, new: next, reason })
  }

  /** The filter to subscribe next: resume after the position, else all (after a reset), else the initial one. */
  #nextFilter (): string {
    const current = this.#position.current
    if (current !== undefined) return replayFilter(this.#feed, current)
    if (this.#restarted) return replayFilter(this.#feed, 'all')
    if (this.#moved) return replayFilter(this.#feed, this.#regionStart)
    return replayFilter(this.#feed, this.#initial)
  }

  /** UNSUBSCRIBE the held filter (if any), then SUBSCRIBE the next one; -> live on SUBACK. */
  #subscribeNext (): void {
    const generation = ++this.#generation
    this.#attempting = true
    this.#activeFilter = null
    const filter = this.#nextFilter()
    const old = this.#heldFilter
    this.#heldFilter = null
    const run = async (): Promise<void> => {
      if (old !== null) {
        try {
          await this.#transport.unsubscribe(old)
        } catch {
          // the old subscription is gone with the connection, or the broker did not know it: fine either way
        }
        if (generation !== this.#generation) return
      }
      // From here on, messages on `filter` belong to the new subscription: any message of an old subscription
      // with the same filter string arrived before its UNSUBACK (MQTT 3.1.1 section 3.10.4, packets in order).
      this.#heldFilter = filter
      this.#activeFilter = filter
      try {
        await this.#transport.subscribe(filter, this.#qos)
      } catch (err) {
        if (generation !== this.#generation) return
        this.#attempting = false
        if (!this.#transport.connected) return // the reconnect resubscribes
        if (!(err instanceof SubackFailureError)) {
          // Lost before its SUBACK ("Connection closed" while the client still counts as connected, as when a
          // silent broker's keepalive runs out): not a refusal. Sent again unless the connection's loss comes first.
          setTimeout(() => {
            if (generation === this.#generation && this.#state !== 'closed' && this.#transport.connected) this.#subscribeNext()
          }, SUBSCRIBE_RETRY_MS)
          return
        }
        const error = new Error(`subscribe ${filter} refused: ${err instanceof Error ? err.message : String(err)}`)
        this.#emitSafely('error', error)
        await this.close(`subscribe refused: ${filter}`)
        return
      }
      if (generation !== this.#generation) return
      this.#attempting = false
      this.#setState('live', this.#state === 'subscribing' ? `subscribed ${filter}` : `resubscribed ${filter}`)
    }
    void run()
  }

  #handleConnection (up: boolean): void {
    if (this.#state === 'closed' || this.#state === 'idle') return
    if (!up) {
      this.#generation++
      this.#attempting = false
      this.#activeFilter = null
      if (this.#state === 'live' || this.#state === 'subscribing') this.#setState('resubscribing', 'disconnected')
      return
    }
    if (this.#attempting) return
    if (this.#state === 'subscribing' || this.#state === 'resubscribing') this.#subscribeNext()
  }

  #handleMessage (topic: string, payload: Uint8Array | string): void {
    if (this.#state === 'closed' || this.#activeFilter === null || topic !== this.#activeFilter) {
      if (this.#state !== 'closed' && topic.startsWith('$replay/') && topic.endsWith(`/${this.#feed}`)) {
        this.#stats.ignored++
      }
      return
    }
    const parsed = parseFeedPayload(payload)
    if (parsed.kind === 'invalid') {
      this.#stats.invalid++
      this.#emitSafely('error', new Error(`invalid message on ${topic}: ${parsed.error}`))
      return
    }
    if (parsed.kind === 'reset') {
      this.#position.reset(parsed.notice.epoch ?? undefined)
      this.#ids?.reset()
      this.#restarted = true
      this.#gapRetries = 0
      this.#lastGapSeq = undefined
      this.#stats.resets++
      this.#emitSafely('reset', parsed.notice)
      return
    }
    const envelope = parsed.envelope
    const decision = this.#position.accept(envelope)
    switch (decision.kind) {
      case 'deliver':
        this.#admit(envelope)
        return
      case 'epoch-change':
        this.#restarted = true
        this.#ids?.reset()
        this.#stats.resets++
        this.#gapRetries = 0
        this.#lastGapSeq = undefined
        this.#emitSafely('reset', { reset: true, epoch: decision.to, reason: 'epoch-changed' })
        this.#admit(envelope)
        return
      case 'duplicate':
        this.#stats.duplicates++
        return
      case 'gap':
        this.#handleGap(decision.expected, decision.got)
    }
  }

  #handleGap (expected: number, got: number): void {
    // While (re)subscribing, the new subscription replays from the position and fills the gap by itself.
    if (this.#state !== 'live') return
    this.#stats.gaps++
    const seq = this.#position.seq
    if (seq === this.#lastGapSeq) {
      this.#gapRetries++
    } else {
      this.#gapRetries = 1
      this.#lastGapSeq = seq
    }
    this.#emitSafely('gap', { expected, got })
    if (this.#gapRetries > this.#maxGapRetries) {
      this.#emitSafely('error', new Error(
        `feed ${this.#feed}: gap at seq ${expected} persists after ${this.#maxGapRetries} resubscribes`))
      void this.close(`gap persists at seq ${expected}`)
      return
    }
    this.#setState('resubscribing', `gap: expected seq ${expected}, got ${got}`)
    if (this.#transport.connected) this.#subscribeNext()
  }

  /** An envelope next in seq order: delivered, unless its id says the app has it (several regions only). */
  #admit (envelope: FeedEnvelope): void {
    if (this.#ids === null) {
      this.#deliver(envelope)
      return
    }
    const decision = this.#ids.offer(eventId(envelope.data), envelope)
    switch (decision.kind) {
      case 'deliver':
        this.#deliver(envelope)
        return
      case 'known':
        this.#stats.knownIds++
        this.#stats.older += decision.older
        return
      case 'hold':
        return
      case 'release':
        // The viewer's place is not in what the new region holds: the app starts over from there.
        this.#restarted = true
        this.#stats.resets++
        this.#emitSafely('reset', { reset: true, epoch: envelope.epoch, reason: 'region-changed' })
        for (const held of decision.held) this.#deliver(held)
    }
  }

  #deliver (envelope: FeedEnvelope): void {
    this.#ids?.delivered(eventId(envelope.data))
    this.#stats.delivered++
    try {
      this.#onMessage?.(envelope)
    } catch (err) {
      this.#emitSafely('error', err instanceof Error ? err : new Error(String(err)))
    }
    this.#emitSafely('message', envelope)
  }

  /** Emits without letting a throwing app listener break the transport's message dispatch. */
  #emitSafely<K extends keyof FeedSubscriptionEvents & string> (event: K, ...args: FeedSubscriptionEvents[K]): void {
    try {
      this.emit(event, ...args)
    } catch (err) {
      if (event !== 'error') {
        try {
          this.emit('error', err instanceof Error ? err : new Error(String(err)))
        } catch {
          // an error listener that throws: nothing more we can do
        }
      }
    }
  }
}
