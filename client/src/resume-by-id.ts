// Resuming a feed in another region by event id. Regions are independent clusters: a feed's seq and epoch differ
// between them, and what is the same is the id the publisher gives each event (`data.id`, README "Regions"). So a
// viewer keeps the ids it delivered, the most recent ones per feed, and after moving region replays the new region's
// recent history: an event whose id it delivered is dropped; the events before the last such one in that history are
// older than what it delivered (it never saw them: it started later, or their ids fell out of the bound) and are
// dropped too; what follows is delivered, in the new region's order, then live.
// Pure logic, no I/O, standard APIs only, so it runs in Node and in the browser.

/** Default number of delivered ids a feed keeps for a region switch (see {@link DeliveredIds}). */
export const DEFAULT_DELIVERED_IDS = 1000

/** The id of a feed event: `data.id` when `data` is an object whose `id` is a non-empty string, else undefined. */
export function eventId (data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined
  const id = (data as { id?: unknown }).id
  return typeof id === 'string' && id.length > 0 ? id : undefined
}

/**
 * The ids of the events delivered for one feed: the most recent `limit` of them (the oldest is forgotten when a new
 * one comes, so memory is bounded whatever the length of the feed).
 */
export class DeliveredIds {
  readonly #limit: number
  /** A Set iterates in insertion order: its first entry is the oldest. */
  readonly #ids = new Set<string>()

  /**
   * @param limit ids kept, an integer >= 1.
   * @throws RangeError for another limit.
   */
  constructor (limit: number = DEFAULT_DELIVERED_IDS) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`the number of delivered ids kept must be an integer >= 1, got ${String(limit)}`)
    this.#limit = limit
  }

  /** How many ids are kept now (at most the limit). */
  get size (): number {
    return this.#ids.size
  }

  /** The most ids kept. */
  get limit (): number {
    return this.#limit
  }

  /** True if `id` was delivered (and is still among the most recent `limit`). */
  has (id: string): boolean {
    return this.#ids.has(id)
  }

  /** Records a delivered id; forgets the oldest one beyond the limit. An id already held is left where it is. */
  add (id: string): void {
    if (this.#ids.has(id)) return
    this.#ids.add(id)
    if (this.#ids.size > this.#limit) {
      const oldest = this.#ids.values().next().value
      if (oldest !== undefined) this.#ids.delete(oldest)
    }
  }

  /** Forgets every id (after a reset: the app starts over, and may be given the same events again). */
  clear (): void {
    this.#ids.clear()
  }
}

/** What to do with an event of the feed, as decided by {@link IdResume.offer}. */
export type IdDecision<T> =
  /** Not delivered before: deliver it (and record its id with {@link IdResume.delivered}). */
  | { readonly kind: 'deliver' }
  /**
   * Its id was delivered already: drop it. `older` events held back while seeking (see `hold`) came before it in the
   * new region, so the app is past them: they are dropped too.
   */
  | { readonly kind: 'known'; readonly older: number }
  /** After a region switch, before the new region's stream has met a delivered id: kept back for now. */
  | { readonly kind: 'hold' }
  /**
   * The new region's stream met no delivered id within the hold limit: the viewer's place cannot be found there.
   * The ids were forgotten; tell the app its feed starts over (a reset), then deliver `held` in order (this event
   * last), recording their ids.
   */
  | { readonly kind: 'release'; readonly held: readonly T[] }

/**
 * The id filter of one feed across region switches. Outside a switch it drops events whose id was delivered (a
 * region's own resend, or the same event from two regions). After {@link IdResume.switched}, it looks in the new
 * region's stream (its history replayed, then live) for an event it delivered, the anchor: the events before it are
 * older than what the app has and are dropped; from the anchor on, events not delivered are delivered. If no anchor
 * comes within `holdLimit` events (the new region is more than its replayed history ahead of the viewer, or further
 * behind than the ids kept), it gives up: `release`.
 *
 * Events without an id (see {@link eventId}) cannot be matched: they are held while seeking and delivered otherwise.
 */
export class IdResume<T> {
  readonly #ids: DeliveredIds
  readonly #holdLimit: number
  #seeking = false
  #held: T[] = []

  /**
   * @param deliveredIds the ids kept per feed (>= 1).
   * @param holdLimit events held at most while seeking the anchor (>= 1): the size of the history replayed in the
   *   new region.
   * @throws RangeError for a bad bound.
   */
  constructor (deliveredIds: number = DEFAULT_DELIVERED_IDS, holdLimit: number = DEFAULT_DELIVERED_IDS) {
    if (!Number.isSafeInteger(holdLimit) || holdLimit < 1) throw new RangeError(`the hold limit must be an integer >= 1, got ${String(holdLimit)}`)
    this.#ids = new DeliveredIds(deliveredIds)
    this.#holdLimit = holdLimit
  }

  /** True while looking for the anchor after a region switch. */
  get seeking (): boolean {
    return this.#seeking
  }

  /** True once some event id was delivered (and not forgotten by a reset). */
  get hasDelivered (): boolean {
    return this.#ids.size > 0
  }

  /** Events held back while seeking. */
  get held (): number {
    return this.#held.length
  }

  /**
   * The viewer moved to another region: seek the anchor in what comes next (when some id was delivered; with none
   * there is nothing to match, and everything is delivered). Events held from an earlier switch are dropped: the
   * next region replays its own.
   */
  switched (): void {
    this.#held = []
    this.#seeking = this.#ids.size > 0
  }

  /** Records the id of an event handed to the app. */
  delivered (id: string | undefined): void {
    if (id !== undefined) this.#ids.add(id)
  }

  /** Forgets every delivered id and stops seeking (the feed starts over: a reset notice, a new epoch). */
  reset (): void {
    this.#ids.clear()
    this.#held = []
    this.#seeking = false
  }

  /**
   * Decides what to do with the next event of the feed, in the stream's order.
   * @param id the event's id ({@link eventId}), or undefined.
   * @param item the event, kept when held.
   */
  offer (id: string | undefined, item: T): IdDecision<T> {
    const known = id !== undefined && this.#ids.has(id)
    if (!this.#seeking) return known ? { kind: 'known', older: 0 } : { kind: 'deliver' }
    if (known) {
      // The anchor: what was held came before an event the app has, so the app is past it.
      const older = this.#held.length
      this.#seeking = false
      this.#held = []
      return { kind: 'known', older }
    }
    this.#held.push(item)
    if (this.#held.length < this.#holdLimit) return { kind: 'hold' }
    const held = this.#held
    this.reset()
    return { kind: 'release', held }
  }
}
