/**
 * The feed envelope: what viewers receive for every feed message.
 *   {"seq": n, "epoch": "...", "ts": <ms since 1970>, "data": <publisher's JSON, or a string>}
 * Encoded once per message, at append time; every viewer and every node gets the same bytes.
 */
import { randomBytes } from 'node:crypto'

/** A decoded envelope. `data` is the publisher's JSON value, or the payload as a UTF-8 string when it was not JSON. */
export interface Envelope {
  seq: number
  epoch: string
  ts: number
  data: unknown
}

/** A reset notice, sent before history when a resume position cannot be honoured, and on a live epoch change. */
export interface ResetNotice {
  reset: true
  epoch: string | null
  reason: 'epoch-changed' | 'trimmed'
}

/**
 * Encodes an envelope around a publisher's payload.
 * A payload that parses as JSON is embedded as JSON (re-serialised, so the envelope is always valid JSON);
 * anything else becomes a JSON string (UTF-8 decoded).
 * @returns the encoded bytes and the `id` of the data when it is an object with a string `id` (used to spot resends).
 */
export function encodeEnvelope (seq: number, epoch: string, ts: number, payload: Buffer): { bytes: Buffer, id: string | undefined } {
  const data = parsePayload(payload)
  const id = data !== null && typeof data === 'object' && !Array.isArray(data) && typeof (data as { id?: unknown }).id === 'string'
    ? (data as { id: string }).id
    : undefined
  const bytes = Buffer.from(`{"seq":${seq},"epoch":${JSON.stringify(epoch)},"ts":${ts},"data":${JSON.stringify(data)}}`, 'utf8')
  return { bytes, id }
}

/** The publisher's payload as a JSON value, or as a string when it is not JSON. */
export function parsePayload (payload: Buffer): unknown {
  const text = payload.toString('utf8')
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

const HEAD = /^\{"seq":(\d+),"epoch":"([^"\\]*)"/

/**
 * Reads `seq` and `epoch` from the head of an encoded envelope without parsing the data.
 * @returns null when the bytes are not an envelope made by {@link encodeEnvelope}.
 */
export function peekPosition (bytes: Buffer): { seq: number, epoch: string } | null {
  const match = HEAD.exec(bytes.subarray(0, 96).toString('latin1'))
  if (match === null) return null
  return { seq: Number(match[1]), epoch: match[2] }
}

/** Encodes a reset notice. */
export function encodeReset (epoch: string | null, reason: ResetNotice['reason']): Buffer {
  const notice: ResetNotice = { reset: true, epoch, reason }
  return Buffer.from(JSON.stringify(notice), 'utf8')
}

/** A new epoch: 12 random hex digits. Epochs are compared for equality only. */
export function newEpoch (): string {
  return randomBytes(6).toString('hex')
}
