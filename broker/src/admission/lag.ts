/**
 * Event-loop lag, as overload protection reads it: a timer due every {@link SAMPLE_MS} notes how late it fires. The
 * node counts as overloaded from a late sample over the threshold until the samples have stayed under it for
 * {@link RECOVER_MS} (hysteresis: a node that just came out of a long turn is not handed a herd at once).
 * A check between samples also counts the time since the last one, so a turn that is still blocking the loop (or one
 * whose sample has not run yet, because the accept comes first in that turn) is seen at once.
 */
import { performance } from 'node:perf_hooks'

/** How often the lag is sampled, ms. */
export const SAMPLE_MS = 50
/** How long the lag must stay under the threshold before the node takes new connections again, ms. */
export const RECOVER_MS = 1000

export class LagMonitor {
  readonly #thresholdMs: number
  readonly #timer: NodeJS.Timeout
  #lastTick = performance.now()
  #lastOver = -Infinity
  /** The lag of the last sample, ms (the time the sampling timer fired late). */
  lastLagMs = 0
  /** The largest lag sampled since the last {@link LagMonitor.takeMax}, ms. */
  #maxLagMs = 0

  /** @param thresholdMs lag over which the node counts as overloaded, ms (> 0) */
  constructor (thresholdMs: number) {
    this.#thresholdMs = thresholdMs
    this.#timer = setInterval(() => this.#sample(), SAMPLE_MS)
    this.#timer.unref()
  }

  /** True while the node is overloaded (see the module comment). */
  overloaded (): boolean {
    const now = performance.now()
    if (now - this.#lastTick - SAMPLE_MS > this.#thresholdMs) this.#lastOver = now // a turn longer than the threshold, not sampled yet
    return now - this.#lastOver < RECOVER_MS
  }

  /** The largest lag sampled since the last call, ms; resets it. */
  takeMax (): number {
    const max = this.#maxLagMs
    this.#maxLagMs = 0
    return max
  }

  close (): void {
    clearInterval(this.#timer)
  }

  #sample (): void {
    const now = performance.now()
    const lag = Math.max(0, now - this.#lastTick - SAMPLE_MS)
    this.#lastTick = now
    this.lastLagMs = lag
    if (lag > this.#maxLagMs) this.#maxLagMs = lag
    if (lag > this.#thresholdMs) this.#lastOver = now
  }
}
