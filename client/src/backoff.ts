// Reconnect delays: exponential backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff And
// Jitter", 2015): delay = random(0, min(cap, base * 2^attempt)). After the broker refused the connection because it
// is overloaded (CONNACK 3, HTTP 503), a floor is added under the jitter: the server's Retry-After when it could be
// read, else `refusedMinMs`, so refused clients come back spread over time after it rather than all at once.
// Pure, no timers.

/** Backoff parameters, in milliseconds. */
export interface BackoffOptions {
  /** Base delay in ms (> 0). Default 500. */
  readonly baseMs?: number
  /** Upper bound of the jitter window in ms (>= baseMs). Default 30000. */
  readonly capMs?: number
  /**
   * Least wait after a refusal whose Retry-After could not be read (CONNACK 3; a browser's failed WebSocket cannot
   * be told apart from any failure, so there it does not apply), ms, >= 0. Default 1000.
   */
  readonly refusedMinMs?: number
  /** Largest Retry-After honoured, ms, >= 0: a longer one is cut to this. Default 300000 (5 minutes). */
  readonly retryAfterMaxMs?: number
}

/** Default reconnect backoff: base 500 ms, cap 30 s; after a refusal at least 1 s (or Retry-After, up to 5 min). */
export const DEFAULT_BACKOFF: Required<BackoffOptions> = { baseMs: 500, capMs: 30_000, refusedMinMs: 1000, retryAfterMaxMs: 300_000 }

/** How the last connection attempt ended, as far as the delay is concerned. */
export interface AttemptFailure {
  /** True if the broker refused the connection as overloaded (CONNACK 3, HTTP 503 or 429). */
  readonly refused: boolean
  /** The server's Retry-After in ms, when it sent one and the platform let us read it. */
  readonly retryAfterMs?: number
}

function check (name: string, value: number, min: number): void {
  if (!(value >= min) || !Number.isFinite(value)) throw new RangeError(`${name} must be a finite number >= ${min}, got ${value}`)
}

/**
 * Validates backoff options and fills in the defaults.
 * @throws RangeError if baseMs <= 0, capMs < baseMs, refusedMinMs < 0 or retryAfterMaxMs < 0.
 */
export function backoffOptions (options: BackoffOptions = {}): Required<BackoffOptions> {
  const out = { ...DEFAULT_BACKOFF, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) }
  if (!(out.baseMs > 0) || !Number.isFinite(out.baseMs)) throw new RangeError(`baseMs must be > 0, got ${out.baseMs}`)
  if (!(out.capMs >= out.baseMs) || !Number.isFinite(out.capMs)) throw new RangeError(`capMs must be >= baseMs, got ${out.capMs}`)
  check('refusedMinMs', out.refusedMinMs, 0)
  check('retryAfterMaxMs', out.retryAfterMaxMs, 0)
  return out
}

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
  const { baseMs, capMs } = backoffOptions(options)
  const n = Number.isFinite(attempt) && attempt > 0 ? Math.floor(attempt) : 0
  // 2^n overflows to Infinity for large n; min() keeps the window at the cap.
  const window = Math.min(capMs, baseMs * Math.pow(2, Math.min(n, 1024)))
  return Math.floor(random() * window)
}

/**
 * The delay before the next connection attempt: the full-jitter {@link backoffDelay}, plus, when the last attempt
 * was refused as overloaded, a floor: its Retry-After (cut to retryAfterMaxMs) if known, and at least refusedMinMs.
 * @param attempt as for {@link backoffDelay}.
 * @param failure how the last attempt ended.
 * @param options see {@link BackoffOptions}.
 * @param random a function returning a number in [0, 1), default Math.random.
 * @returns the delay in ms: in [0, window) after a plain failure, in [floor, floor + window) after a refusal.
 * @throws RangeError for invalid options (see {@link backoffOptions}).
 */
export function reconnectDelay (attempt: number, failure: AttemptFailure, options: BackoffOptions = {},
  random: () => number = Math.random): number {
  const { refusedMinMs, retryAfterMaxMs } = backoffOptions(options)
  const jitter = backoffDelay(attempt, options, random)
  if (!failure.refused) return jitter
  // Never less than refusedMinMs: a Retry-After of 0 or an HTTP-date in the past (a clock behind the server's) must not
  // send a refused herd straight back.
  const floor = failure.retryAfterMs !== undefined ? Math.max(refusedMinMs, Math.min(failure.retryAfterMs, retryAfterMaxMs)) : refusedMinMs
  return floor + jitter
}
