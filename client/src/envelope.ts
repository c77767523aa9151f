// Feed message shapes and their parsing, following the README's contract section ("Feeds"):
//   envelope      {"seq": n, "epoch": "<string>", "ts": <ms since 1970>, "data": <JSON or string>}
//   reset notice  {"reset": true, "epoch": "<current epoch>", "reason": "epoch-changed" | "trimmed"}
// Pure functions, standard APIs only (TextDecoder), so it runs in Node and in the browser.

/** A position in a feed: the last seq handled within an epoch. */
export interface FeedPosition {
  /** Sequence number (integer >= 0; 0 means "before the first message"). */
  readonly seq: number
  /** Epoch of the feed history the seq belongs to (changes only if the history was lost). */
  readonly epoch: string
}

/** A stamped feed message as the broker sends it. */
export interface FeedEnvelope {
  /** 1, 2, 3, ... per feed and epoch. */
  readonly seq: number
  readonly epoch: string
  /** Broker stamp time, milliseconds since 1970-01-01 UTC. */
  readonly ts: number
  /** The publisher's JSON, or the raw payload text if it was not JSON. */
  readonly data: unknown
}

/** The notice the broker sends before history restarts (resume epoch unknown, range trimmed, live epoch change). */
export interface ResetNotice {
  readonly reset: true
  /** The current epoch of the feed, or null if the feed has no history yet (broker behaviour). */
  readonly epoch: string | null
  /** "epoch-changed" | "trimmed" per the contract; other strings are passed through as-is. */
  readonly reason: string
}

/** Result of {@link parseFeedPayload}. */
export type ParsedFeedPayload =
  | { readonly kind: 'envelope'; readonly envelope: FeedEnvelope }
  | { readonly kind: 'reset'; readonly notice: ResetNotice }
  | { readonly kind: 'invalid'; readonly error: string }

const decoder = new TextDecoder('utf-8')

/**
 * Decodes an MQTT payload as UTF-8 text (MQTT.js gives a Buffer, which is a Uint8Array, in Node and browsers).
 * Invalid UTF-8 sequences become U+FFFD; never throws.
 */
export function payloadText (payload: Uint8Array | string): string {
  return typeof payload === 'string' ? payload : decoder.decode(payload)
}

/**
 * Decodes a payload as JSON if it parses, else returns the text itself. An empty payload gives `null`
 * (for retained topics an empty payload means "retained message cleared", MQTT 3.1.1 section 3.3.1.3).
 */
export function decodePayload (payload: Uint8Array | string): unknown {
  const text = payloadText(payload)
  if (text.length === 0) return null
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * Parses a message received on a feed subscription ($replay filter or plain feed topic).
 * @param payload raw MQTT payload bytes or text.
 * @returns `envelope` for `{seq: integer >= 1, epoch: non-empty string, ts: finite number, data}` (data defaults to
 *   null when absent), `reset` for `{reset: true, epoch: non-empty string | null, reason?: string}` (epoch null
 *   when the feed has no history yet; reason defaults to "epoch-changed"), otherwise `invalid` with a short
 *   description. Never throws.
 */
export function parseFeedPayload (payload: Uint8Array | string): ParsedFeedPayload {
  let value: unknown
  try {
    value = JSON.parse(payloadText(payload)) as unknown
  } catch {
    return { kind: 'invalid', error: 'feed payload is not JSON' }
  }
  if (!isRecord(value)) return { kind: 'invalid', error: 'feed payload is not a JSON object' }
  if (value.reset === true) {
    const epoch = value.epoch ?? null
    if (epoch !== null && (typeof epoch !== 'string' || epoch.length === 0)) {
      return { kind: 'invalid', error: 'reset notice epoch is neither a non-empty string nor null' }
    }
    const reason = typeof value.reason === 'string' ? value.reason : 'epoch-changed'
    return { kind: 'reset', notice: { reset: true, epoch, reason } }
  }
  const { seq, epoch, ts } = value
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
    return { kind: 'invalid', error: 'envelope seq is not an integer >= 1' }
  }
  if (typeof epoch !== 'string' || epoch.length === 0) {
    return { kind: 'invalid', error: 'envelope epoch is not a non-empty string' }
  }
  if (typeof ts !== 'number' || !Number.isFinite(ts)) {
    return { kind: 'invalid', error: 'envelope ts is not a number' }
  }
  return { kind: 'envelope', envelope: { seq, epoch, ts, data: 'data' in value ? value.data : null } }
}
