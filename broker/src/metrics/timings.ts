/**
 * A timing kept twice from the same observations: as a prom-client histogram (for `GET /metrics`) and as a summary
 * read synchronously for the `$SYS` statistics and `stats()` (count, mean, quantiles estimated from the same buckets,
 * max). Observed per event timed (a sampled message, a Redis round trip), never per message.
 */
import type { Histogram } from 'prom-client'

/** Seconds to the microsecond: what the statistics show. */
export const micro = (seconds: number): number => Math.round(seconds * 1e6) / 1e6

/** What the statistics show of a timing since start, in seconds to the microsecond (0 when nothing was observed). */
export interface TimingSummary {
  count: number
  meanSeconds: number
  /** Upper bounds of the buckets holding the 50th and 99th percentile (the largest observation beyond the last). */
  p50Seconds: number
  p99Seconds: number
  maxSeconds: number
}

export class Timings {
  readonly #histogram: Histogram | null
  readonly #bounds: readonly number[]
  /** Observations per bucket; the last one is beyond the largest bound. */
  readonly #counts: number[]
  #count = 0
  #sum = 0
  #max = 0

  /**
   * @param bounds bucket upper bounds in seconds, rising (the histogram's)
   * @param histogram the prom-client histogram fed too, or null
   */
  constructor (bounds: readonly number[], histogram: Histogram | null) {
    this.#bounds = bounds
    this.#counts = new Array<number>(bounds.length + 1).fill(0)
    this.#histogram = histogram
  }

  /** Records one duration, in seconds. */
  observe (seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return
    this.#histogram?.observe(seconds)
    let i = 0
    while (i < this.#bounds.length && seconds > this.#bounds[i]) i++
    this.#counts[i]++
    this.#count++
    this.#sum += seconds
    if (seconds > this.#max) this.#max = seconds
  }

  summary (): TimingSummary {
    return {
      count: this.#count,
      meanSeconds: micro(this.#count === 0 ? 0 : this.#sum / this.#count),
      p50Seconds: micro(this.#quantile(0.5)),
      p99Seconds: micro(this.#quantile(0.99)),
      maxSeconds: micro(this.#max)
    }
  }

  #quantile (q: number): number {
    if (this.#count === 0) return 0
    const rank = q * this.#count
    let seen = 0
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]
      if (seen >= rank) return i < this.#bounds.length ? Math.min(this.#bounds[i], this.#max) : this.#max
    }
    return this.#max
  }
}
