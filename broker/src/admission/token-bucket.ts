/**
 * A token bucket (the classic rate limiter: `rate` tokens a second flow into a bucket that holds at most `burst`;
 * each admission takes one). Pure: time is passed in, so it can be tested without waiting.
 */
export class TokenBucket {
  readonly #rate: number
  readonly #burst: number
  #tokens: number
  #last: number

  /**
   * @param rate tokens added per second (> 0)
   * @param burst most tokens held at once (>= 1); the bucket starts full
   * @param now the current time in ms (e.g. `performance.now()`)
   */
  constructor (rate: number, burst: number, now: number) {
    this.#rate = rate
    this.#burst = burst
    this.#tokens = burst
    this.#last = now
  }

  /** Takes one token if there is one. @returns true when taken */
  take (now: number): boolean {
    this.#refill(now)
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }

  /** True when the bucket is full at `now` (nothing taken for a while): a per-address bucket can then be dropped. */
  full (now: number): boolean {
    this.#refill(now)
    return this.#tokens >= this.#burst
  }

  /** ms until the next token at `now` (0 when one is there). */
  waitMs (now: number): number {
    this.#refill(now)
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.#rate) * 1000)
  }

  #refill (now: number): void {
    if (now > this.#last) {
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate)
      this.#last = now
    }
  }
}
