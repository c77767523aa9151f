/**
 * The queue of one region of a Publisher with several regions: every message given to the Publisher waits here, in
 * order, until this region's broker acknowledged it (PUBACK). One message is handed to the region's link at a time, and
 * only while the link is up, so a region that is down or slow holds its own messages and nobody else's, and a region
 * that comes back gets what it missed in the order it was published (each feed's seqs there follow the publish order).
 * A queue holds at most `maxQueued` messages: beyond, the oldest waiting one is dropped (never the one being sent),
 * and `onDrop` says so once until the queue is empty again.
 */
import { PublisherClosedError, type BrokerLink } from './link.js'

/** Default of the most messages waiting for one region (see {@link RegionQueue}). */
export const DEFAULT_MAX_QUEUED = 100_000

interface Queued {
  readonly topic: string
  readonly body: string
  readonly retain: boolean
  /** Called once: on this region's PUBACK, or with the error that ends the message here (close, dropped). */
  readonly done: (err?: Error) => void
}

/** Thrown to a message's `done` when a full queue drops it: this region will not get it. */
export class RegionQueueFullError extends Error {
  /** The region's index. */
  readonly region: number

  constructor (region: number, maxQueued: number) {
    super(`region ${region} has ${maxQueued} messages waiting for it (maxQueued): its oldest waiting message was dropped, and that region will not get it`)
    this.name = 'RegionQueueFullError'
    this.region = region
  }
}

/** One region's queue over its link (see the module comment). */
export class RegionQueue {
  readonly #items: Queued[] = []
  #sending = false
  #closed = false
  #overflowing = false
  #retry: ReturnType<typeof setTimeout> | undefined
  readonly #removeUp: () => void

  /**
   * @param region the region's index, for errors.
   * @param link the region's connection.
   * @param maxQueued most messages waiting (>= 1).
   * @param retryMs pause before sending a message again after its send failed with the link still up, ms.
   * @param onDrop told the first time a full queue drops a message (again after the queue was empty).
   */
  constructor (readonly region: number, readonly link: BrokerLink, private readonly maxQueued: number, private readonly retryMs: number,
    private readonly onDrop: (err: RegionQueueFullError) => void) {
    if (!Number.isSafeInteger(maxQueued) || maxQueued < 1) throw new RangeError(`maxQueued must be an integer >= 1, got ${String(maxQueued)}`)
    this.#removeUp = link.onUp(() => { this.#pump() })
  }

  /** Messages not yet acknowledged by this region (the one being sent included). */
  get size (): number {
    return this.#items.length
  }

  /** Adds a message at the end; `done` is called once, when this region acknowledged it or gave it up. */
  push (topic: string, body: string, retain: boolean, done: (err?: Error) => void): void {
    if (this.#closed) {
      done(new PublisherClosedError('publisher is closed'))
      return
    }
    if (this.#items.length >= this.maxQueued) {
      // Never the head: it may be on the wire already.
      const index = this.#sending ? 1 : 0
      const [dropped] = this.#items.splice(index, 1)
      const err = new RegionQueueFullError(this.region, this.maxQueued)
      dropped?.done(err)
      if (!this.#overflowing) {
        this.#overflowing = true
        this.onDrop(err)
      }
    }
    this.#items.push({ topic, body, retain, done })
    this.#pump()
  }

  /** Gives up every waiting message (PublisherClosedError); the link itself is closed by its owner. */
  close (): void {
    this.#closed = true
    this.#removeUp()
    if (this.#retry !== undefined) clearTimeout(this.#retry)
    for (const item of this.#items.splice(0)) item.done(new PublisherClosedError())
  }

  /** Sends the head when the link is up and nothing is being sent; on its PUBACK, the next. */
  #pump (): void {
    if (this.#closed || this.#sending || this.#items.length === 0 || !this.link.isUp) return
    const head = this.#items[0]
    this.#sending = true
    this.link.send(head.topic, head.body, head.retain).then(() => {
      this.#sending = false
      if (this.#items[0] === head) this.#items.shift()
      if (this.#items.length === 0) this.#overflowing = false
      head.done()
      this.#pump()
    }, (err: unknown) => {
      this.#sending = false
      if (this.#closed || err instanceof PublisherClosedError) return
      // Not acknowledged and not closing (MQTT.js gave up the packet): send it again, on this link, in its place.
      this.#retry = setTimeout(() => {
        this.#retry = undefined
        this.#pump()
      }, this.retryMs)
    })
  }
}
