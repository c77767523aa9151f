/**
 * The publish-to-delivery latency, sampled: from a PUBLISH accepted (authorizePublish said yes; for a feed message,
 * once stored) to the last byte of its last delivery handed to a socket (the end of the connection guard's flush,
 * listeners/guard.ts, in which its last copy went out). Timing every message would cost work per message and per
 * delivery; instead at most {@link MAX_IN_FLIGHT} messages are timed at once, one started at most every
 * {@link MIN_GAP_MS}. What a delivery pays is one property check of its encoding (delivery.ts).
 *
 * A timed message is recognised by its payload when delivery.ts encodes it (once per topic, not per subscriber): the
 * same Buffer, or in a cluster the same bytes back from Redis. A message that nobody receives is forgotten after
 * {@link UNDELIVERED_MS} without a figure. The state is the process's, as the guard's flush is; each timed message
 * reports to the node that accepted it.
 */

/** One message being timed. */
export interface LatencySample {
  readonly payload: Buffer
  /** performance.now() when accepted, ms. */
  readonly startedAt: number
  /** End of the last flush that carried a copy of it, ms; 0 before the first. */
  lastFlushAt: number
  /** A copy was written since the last flush. */
  written: boolean
  readonly observe: (seconds: number) => void
}

/** Messages timed at once, at most. */
export const MAX_IN_FLIGHT = 16
/** Least time between the starts of two timings, ms. */
export const MIN_GAP_MS = 10
/** A timed message not delivered within this long is forgotten (nobody subscribes to it), ms. */
export const UNDELIVERED_MS = 2000

let inFlight: LatencySample[] = []
let lastStart = -Infinity
/** A timed message was written since the last flush. */
let writtenSinceFlush = false

/**
 * Starts timing a message accepted now, unless enough are timed already; `observe` gets its latency in seconds.
 * Called for every accepted PUBLISH: costs a clock read and two comparisons when it does not start one.
 */
export function publishAccepted (payload: Buffer | string | undefined, observe: (seconds: number) => void): void {
  if (!Buffer.isBuffer(payload)) return
  const now = performance.now()
  if (now - lastStart < MIN_GAP_MS) return
  if (inFlight.length >= MAX_IN_FLIGHT) {
    inFlight = inFlight.filter((s) => s.lastFlushAt > 0 || now - s.startedAt < UNDELIVERED_MS)
    if (inFlight.length >= MAX_IN_FLIGHT) return
  }
  lastStart = now
  inFlight.push({ payload, startedAt: now, lastFlushAt: 0, written: false, observe })
}

/**
 * The timed message whose payload `payload` is, or null: asked once per encoding (delivery.ts), not per delivery.
 */
export function sampleFor (payload: Buffer | string): LatencySample | null {
  if (inFlight.length === 0 || typeof payload === 'string') return null
  for (const s of inFlight) {
    if (s.payload === payload || (s.payload.length === payload.length && s.payload.equals(payload))) {
      // Not delivered within UNDELIVERED_MS: nobody subscribed when it was published. This copy goes to a later
      // subscriber (a retained message, a replay), which is not the publish's latency: forgotten without a figure.
      if (s.lastFlushAt === 0 && performance.now() - s.startedAt > UNDELIVERED_MS) {
        inFlight = inFlight.filter((x) => x !== s)
        return null
      }
      return s
    }
  }
  return null
}

/** A copy of a timed message was written to a connection (delivery.ts). */
export function sampleWritten (sample: LatencySample): void {
  sample.written = true
  writtenSinceFlush = true
}

/**
 * Called at the end of each flush of the connections (listeners/guard.ts): a timed message written before this flush
 * has now been handed to the sockets; one that was handed over before and got no new copy since is done, and its
 * latency is reported.
 */
export function flushed (): void {
  if (inFlight.length === 0) return
  const now = performance.now()
  const wrote = writtenSinceFlush
  writtenSinceFlush = false
  let done = false
  for (const s of inFlight) {
    if (wrote && s.written) {
      s.written = false
      s.lastFlushAt = now
    } else if (s.lastFlushAt > 0) {
      s.observe((s.lastFlushAt - s.startedAt) / 1000)
      s.lastFlushAt = -1
      done = true
    }
  }
  if (done) inFlight = inFlight.filter((s) => s.lastFlushAt >= 0)
}
