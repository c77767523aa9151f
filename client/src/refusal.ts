// Telling a broker's refusal ("too busy, come back later") from other connection failures, as the broker's admission
// control answers it:
//   - MQTT over TCP or TLS: CONNACK return code 3, server unavailable (MQTT 3.1.1 section 3.2.2.3), then close;
//     MQTT 5 reason codes 0x88 server unavailable, 0x89 server busy and 0x9F connection rate exceeded likewise;
//   - WebSocket: the HTTP upgrade answered `503 Service Unavailable` (or `429 Too Many Requests`) with
//     `Retry-After: <seconds>`. Node's `ws` (which MQTT.js uses in Node) lets us see that answer through its
//     `finishRequest` option; a browser reports only a failed WebSocket (close code 1006), a plain failure;
//   - a connection closed or reset by the server before any answer (a node shedding load closes new connections at
//     accept; a TLS listener refuses before the handshake) counts as a refusal without a Retry-After (connection.ts);
//     a node that cannot be reached at all (ECONNREFUSED, ENOTFOUND, ...) is a plain failure.
// Standard APIs only (the WebSocket hook is typed structurally, without Node's types at run time).

import { withoutPassword } from './targets.js'

/** CONNACK codes meaning "server unavailable / busy": MQTT 3.1.1 (3) and MQTT 5 (0x88, 0x89, 0x9F). */
const UNAVAILABLE_CODES: Readonly<Record<number, readonly number[]>> = { 3: [3], 4: [3], 5: [0x88, 0x89, 0x9f] }

/**
 * Whether a connection attempt that ended before CONNACK looks shed by the server (made, then closed or reset before
 * any answer: a node closing new connections at accept, a TLS listener refusing before the handshake) rather than
 * failed to reach it.
 * @param err the first error of the attempt (MQTT.js emits transport errors with a string `code`, CONNACK refusals
 *   with a numeric one), or undefined when it closed without one.
 * @returns true for no error, ECONNRESET or EPIPE; false for any other (ECONNREFUSED, ENOTFOUND, a CONNACK, ...).
 */
export function closedBeforeAnswer (err: unknown): boolean {
  if (err === undefined) return true
  const code = (err as { code?: unknown } | null)?.code
  return code === 'ECONNRESET' || code === 'EPIPE'
}

/** HTTP statuses of a refused WebSocket upgrade that mean "come back later". */
const REFUSED_STATUSES = new Set([503, 429])

/**
 * The broker refused the connection because it is overloaded: CONNACK 3 (MQTT 5: 0x88, 0x89, 0x9F), or HTTP 503 /
 * 429 to the WebSocket upgrade. Emitted as the viewer's `error` (the publisher's `onError`); the client retries
 * after at least `retryAfterMs` (else its `refusedMinMs`) plus jitter.
 */
export class ServerUnavailableError extends Error {
  /** The broker URL that refused, as given (the message shows it without its password). */
  readonly url: string
  /** CONNACK return code (3 in MQTT 3.1.1) when refused in MQTT, else undefined. */
  readonly code: number | undefined
  /** HTTP status (503 or 429) when the WebSocket upgrade was refused, else undefined. */
  readonly status: number | undefined
  /** The server's Retry-After in ms, when it sent one that could be read, else undefined. */
  readonly retryAfterMs: number | undefined

  /**
   * @param url the broker URL that refused.
   * @param details `code` (CONNACK) or `status` (HTTP), and `retryAfterMs` if known.
   */
  constructor (url: string, details: { readonly code?: number, readonly status?: number, readonly retryAfterMs?: number }) {
    const how = details.status !== undefined ? `HTTP ${details.status} to the WebSocket upgrade` : `CONNACK ${details.code ?? 3}`
    const after = details.retryAfterMs !== undefined ? `, Retry-After ${Math.round(details.retryAfterMs / 100) / 10} s` : ''
    super(`server unavailable: ${withoutPassword(url)} refused the connection (${how}${after})`)
    this.name = 'ServerUnavailableError'
    this.url = url
    this.code = details.code
    this.status = details.status
    this.retryAfterMs = details.retryAfterMs
  }
}

/**
 * If `err` is MQTT.js's error for a CONNACK that means "server unavailable / busy", its return code.
 * @param err an error MQTT.js emitted (`ErrorWithReasonCode`: message "Connection refused: ...", numeric `code`).
 * @param protocolVersion the MQTT protocol level used: 3, 4 (3.1.1, default) or 5.
 * @returns the return code, or undefined for any other error.
 */
export function unavailableConnackCode (err: unknown, protocolVersion = 4): number | undefined {
  if (!(err instanceof Error) || !err.message.startsWith('Connection refused')) return undefined
  const code = (err as { code?: unknown }).code
  return typeof code === 'number' && (UNAVAILABLE_CODES[protocolVersion] ?? []).includes(code) ? code : undefined
}

/**
 * Parses an HTTP Retry-After header (RFC 9110 section 10.2.3): delay-seconds or an HTTP-date.
 * @param value the header value (the first one if repeated), or undefined.
 * @param now the current time, ms since 1970 (for an HTTP-date).
 * @returns the delay in ms (>= 0), or undefined when absent or unreadable.
 */
export function parseRetryAfter (value: string | readonly string[] | undefined, now: number = Date.now()): number | undefined {
  const text = (typeof value === 'string' ? value : value?.[0])?.trim()
  if (text === undefined || text === '') return undefined
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000
  const date = Date.parse(text)
  return Number.isNaN(date) || !/[a-z]/i.test(text) ? undefined : Math.max(0, date - now)
}

/** The part of Node's `http.ClientRequest` the upgrade hook uses. */
export interface UpgradeRequest {
  on: (event: 'response', listener: (response: UpgradeResponse) => void) => unknown
  end: () => unknown
}

/** The part of Node's `http.IncomingMessage` the upgrade hook reads. */
export interface UpgradeResponse {
  readonly statusCode?: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
}

/** The `finishRequest` option of the `ws` package's client: `(request, websocket) => void`, must end the request. */
export type FinishRequest = (request: UpgradeRequest, websocket: unknown) => void

/**
 * A `finishRequest` function for `ws` client options (MQTT.js's `wsOptions` in Node) that reports a refused
 * WebSocket upgrade: when the server answers the upgrade with 503 or 429 instead of 101, `onRefused(status,
 * retryAfterMs)` is called (synchronously, before `ws` fails the connection), then `ws` fails it as usual
 * ("Unexpected server response: 503"). Other answers are not reported. The request is then finished by `finish` if
 * given (an app's own `finishRequest`), else ended.
 * @param onRefused called once per refused upgrade; Retry-After in ms, or undefined when absent or unreadable.
 * @param finish the app's own `finishRequest`, if any.
 */
export function upgradeRefusalHook (onRefused: (status: number, retryAfterMs: number | undefined) => void,
  finish?: FinishRequest): FinishRequest {
  return (request, websocket) => {
    request.on('response', (response) => {
      const status = response.statusCode ?? 0
      if (REFUSED_STATUSES.has(status)) onRefused(status, parseRetryAfter(response.headers['retry-after']))
    })
    if (finish !== undefined) finish(request, websocket)
    else request.end()
  }
}
