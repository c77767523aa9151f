// Reconnect delays: exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff And
// Jitter", 2015): delay = random(0, min(cap, base * 2^attempt)). Pure, no timers.

/** Backoff parameters, in milliseconds. */
export interface BackoffOptions {
  /** Base delay in ms (> 0). Default 500. */
  readonly baseMs?: number
  /** Upper bound of the delay window in ms (>= baseMs). Default 30000. */
  readonly capMs?: number
}

/** Default reconnect backoff: base 500 ms, cap 30 s. */
export const DEFAULT_BACKOFF: Required<BackoffOptions> = { baseMs: 500, capMs: 30_000 }

/**
 * Full-jitter backoff delay for a reconnect attempt.
 * @param attempt 0 for the first retry after a successful connection was lost (or the first connect failed),
 *   1 for the next, ...; reset to 0 on a successful connect. Non-integer or negative values are clamped to 0.
 * @param options base and cap in ms (defaults {@link DEFAULT_BACKOFF}).
 * @param random a function returning a number in [0, 1), default Math.random (inject for tests).
 * @returns the delay in ms, in [0, min(cap, base * 2^attempt)).
 * @throws RangeError if baseMs <= 0 or capMs < baseMs.
 */
export function backoffDelay (attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const baseMs = options.baseMs ?? DEFAULT_BACKOFF.baseMs
  const capMs = options.capMs ?? DEFAULT_BACKOFF.capMs
  if (!(baseMs > 0) || !Number.isFinite(baseMs)) throw new RangeError(`baseMs must be > 0, got ${baseMs}`)
  if (!(capMs >= baseMs) || !Number.isFinite(capMs)) throw new RangeError(`capMs must be >= baseMs, got ${capMs}`)
  const n = Number.isFinite(attempt) && attempt > 0 ? Math.floor(attempt) : 0
  // 2^n overflows to Infinity for large n; min() keeps the window at the cap.
  const window = Math.min(capMs, baseMs * Math.pow(2, Math.min(n, 1024)))
  return Math.floor(random() * window)
}
