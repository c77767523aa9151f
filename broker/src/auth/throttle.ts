/**
 * Slows failed logins per source address: after the n-th failure within 10 minutes, the refusal is sent after
 * min(max, 100 ms * 2^(n-1)). Successful logins are not delayed. The table is bounded (oldest addresses dropped).
 */
const WINDOW_MS = 10 * 60_000
const MAX_ADDRESSES = 100_000

export class LoginThrottle {
  readonly #failures = new Map<string, { count: number, last: number }>()

  /** Records a failure from `address` and returns how long to wait before answering it, in ms. */
  failed (address: string, maxDelayMs: number, now = Date.now()): number {
    const entry = this.#failures.get(address)
    const count = entry !== undefined && now - entry.last < WINDOW_MS ? entry.count + 1 : 1
    this.#failures.delete(address)
    this.#failures.set(address, { count, last: now })
    if (this.#failures.size > MAX_ADDRESSES) this.#failures.delete(this.#failures.keys().next().value as string)
    return Math.min(maxDelayMs, 100 * 2 ** Math.min(count - 1, 20))
  }

  /** Forgets an address after a successful login. */
  succeeded (address: string): void {
    this.#failures.delete(address)
  }
}
