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

/** An envelope that would be larger than the broker accepts; the publish is refused, not acknowledged. */
export class EnvelopeTooLargeError extends Error {
  constructor (bytes: number, max: number) {
    super(`feed message refused: its envelope would be ${bytes} bytes, more than the ${max} allowed (maximum packet size)`)
    this.name = 'EnvelopeTooLargeError'
  }
}

/**
 * Encodes an envelope around a publisher's payload.
 * A payload that is JSON is embedded as the publisher wrote it (so numbers keep every digit); anything else becomes
 * a JSON string (UTF-8 decoded; bytes that are not UTF-8 become U+FFFD).
 * @param maxBytes the largest envelope accepted
 * @returns the encoded bytes and the `id` of the data when it is an object with a string `id` (used to spot resends)
 * @throws EnvelopeTooLargeError when the envelope is larger than `maxBytes`
 */
export function encodeEnvelope (seq: number, epoch: string, ts: number, payload: Buffer, maxBytes = Infinity): { bytes: Buffer, id: string | undefined } {
  const text = payload.toString('utf8')
  let data: unknown
  let raw: string
  try {
    data = JSON.parse(text)
    raw = text.trim()
  } catch {
    data = text
    raw = JSON.stringify(text)
  }
  const id = data !== null && typeof data === 'object' && !Array.isArray(data) && typeof (data as { id?: unknown }).id === 'string'
    ? (data as { id: string }).id
    : undefined
  const bytes = Buffer.from(`{"seq":${seq},"epoch":${JSON.stringify(epoch)},"ts":${ts},"data":${raw}}`, 'utf8')
  if (bytes.length > maxBytes) throw new EnvelopeTooLargeError(bytes.length, maxBytes)
  return { bytes, id }
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
