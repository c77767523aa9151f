// The position of one viewer in one feed, and the decision for each incoming envelope.
// Contract (the README's contract section, "Feeds"): seq is 1, 2, 3, ... per feed; epoch changes only if the feed
// history was lost, in which case seq numbering restarts. Pure logic, no I/O, runs in Node and browsers.

import type { FeedPosition } from './envelope.js'

/** What to do with an incoming envelope, as decided by {@link Position.accept}. */
export type PositionDecision =
  /** Next in order (or the first one seen): hand it to the app. The position now is the envelope's. */
  | { readonly kind: 'deliver' }
  /** seq <= current seq in the same epoch: already delivered, drop it. Position unchanged. */
  | { readonly kind: 'duplicate'; readonly current: number }
  /** seq > current + 1 in the same epoch: messages are missing, do not deliver. Position unchanged. */
  | { readonly kind: 'gap'; readonly expected: number; readonly got: number }
  /**
   * The envelope has another epoch than the position (without a reset notice before it): the position was reset
   * to the new epoch and the envelope taken as the first one of it, i.e. deliver it after signalling a reset.
   */
  | { readonly kind: 'epoch-change'; readonly from: string; readonly to: string }

function checkEpoch (epoch: unknown): asserts epoch is string {
  if (typeof epoch !== 'string' || epoch.length === 0) throw new TypeError('epoch must be a non-empty string')
}

function checkSeq (seq: unknown, min: number): asserts seq is number {
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < min) {
    throw new RangeError(`seq must be an integer >= ${min}, got ${String(seq)}`)
  }
}

/**
 * The sole owner of a feed position `{seq, epoch}`.
 *
 * Three states: empty (nothing known: the first envelope is delivered whatever its seq, e.g. after
 * `$replay/all` on a trimmed history), epoch only (after a reset notice: the first envelope of that epoch is
 * delivered whatever its seq, "everything available from the oldest held seq"), and full (`{seq, epoch}`:
 * only seq + 1 is delivered).
 */
export class Position {
  #epoch: string | undefined
  #seq: number | undefined

  /**
   * @param start optional resume point `{seq >= 0, epoch}`; seq 0 means "nothing of this epoch seen yet".
   * @throws TypeError / RangeError if `start` is malformed.
   */
  constructor (start?: FeedPosition) {
    if (start !== undefined) {
      checkSeq(start.seq, 0)
      checkEpoch(start.epoch)
      this.#seq = start.seq
      this.#epoch = start.epoch
    }
  }

  /** Last delivered seq, or undefined if none since creation / the last reset. */
  get seq (): number | undefined {
    return this.#seq
  }

  /** Current epoch, or undefined if none known yet. */
  get epoch (): string | undefined {
    return this.#epoch
  }

  /** `{seq, epoch}` when both are known (the point to resume after), else undefined. */
  get current (): FeedPosition | undefined {
    return this.#seq !== undefined && this.#epoch !== undefined ? { seq: this.#seq, epoch: this.#epoch } : undefined
  }

  /**
   * Decides what to do with an incoming envelope and, for `deliver` and `epoch-change`, advances the position
   * to it. `duplicate` and `gap` leave the position unchanged.
   * @param envelope `{seq: integer >= 1, epoch: non-empty string}` (other fields are ignored).
   * @throws TypeError / RangeError if seq or epoch is malformed (parse with parseFeedPayload first).
   */
  accept (envelope: { readonly seq: number, readonly epoch: string }): PositionDecision {
    checkSeq(envelope.seq, 1)
    checkEpoch(envelope.epoch)
    const { seq, epoch } = envelope
    if (this.#epoch !== undefined && epoch !== this.#epoch) {
      const from = this.#epoch
      this.#epoch = epoch
      this.#seq = seq
      return { kind: 'epoch-change', from, to: epoch }
    }
    if (this.#seq === undefined) {
      this.#epoch = epoch
      this.#seq = seq
      return { kind: 'deliver' }
    }
    if (seq <= this.#seq) return { kind: 'duplicate', current: this.#seq }
    if (seq > this.#seq + 1) return { kind: 'gap', expected: this.#seq + 1, got: seq }
    this.#seq = seq
    return { kind: 'deliver' }
  }

  /**
   * Forgets the seq (after a reset notice, or to start over). With `epoch`, the position expects that epoch
   * and delivers its first envelope whatever its seq; without, the position becomes empty.
   * @throws TypeError if `epoch` is given but not a non-empty string.
   */
  reset (epoch?: string): void {
    if (epoch !== undefined) checkEpoch(epoch)
    this.#epoch = epoch
    this.#seq = undefined
  }
}
