import { describe, expect, it } from 'vitest'
import { closedBeforeAnswer, parseRetryAfter, ServerUnavailableError, unavailableConnackCode, upgradeRefusalHook, type UpgradeResponse } from '../../client/src/refusal.js'

class ReasonError extends Error {
  constructor (message: string, readonly code: number) { super(message) }
}

describe('parseRetryAfter (RFC 9110 section 10.2.3)', () => {
  it('reads delay-seconds and HTTP-dates, in ms', () => {
    expect(parseRetryAfter('2')).toBe(2000)
    expect(parseRetryAfter(' 0 ')).toBe(0)
    expect(parseRetryAfter(['120', '5'])).toBe(120_000)
    const now = Date.parse('Sun, 18 Dec 2022 15:00:00 GMT')
    expect(parseRetryAfter('Sun, 18 Dec 2022 15:00:30 GMT', now)).toBe(30_000)
    expect(parseRetryAfter('Sun, 18 Dec 2022 14:00:00 GMT', now)).toBe(0) // in the past
  })

  it('gives undefined for an absent or unreadable value', () => {
    for (const value of [undefined, '', '-1', '1.5', 'soon', '12.5', []]) expect(parseRetryAfter(value)).toBeUndefined()
  })
})

describe('unavailableConnackCode', () => {
  it('recognises CONNACK 3 (MQTT 3.1.1) and 0x88, 0x89, 0x9F (MQTT 5) as MQTT.js reports them', () => {
    expect(unavailableConnackCode(new ReasonError('Connection refused: Server unavailable', 3))).toBe(3)
    expect(unavailableConnackCode(new ReasonError('Connection refused: Server unavailable', 3), 3)).toBe(3)
    expect(unavailableConnackCode(new ReasonError('Connection refused: Server busy', 0x89), 5)).toBe(0x89)
    expect(unavailableConnackCode(new ReasonError('Connection refused: Connection rate exceeded', 0x9f), 5)).toBe(0x9f)
  })

  it('leaves other errors alone', () => {
    expect(unavailableConnackCode(new ReasonError('Connection refused: Not authorized', 5))).toBeUndefined()
    expect(unavailableConnackCode(new ReasonError('Connection refused: Server unavailable', 3), 5)).toBeUndefined()
    expect(unavailableConnackCode(new ReasonError('Protocol error', 3))).toBeUndefined()
    expect(unavailableConnackCode(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBeUndefined()
    expect(unavailableConnackCode('Connection refused: Server unavailable')).toBeUndefined()
  })
})

describe('closedBeforeAnswer', () => {
  it('takes a close with no error, or a reset, for shedding; unreachable nodes and CONNACK answers not', () => {
    const err = (code: string | number): Error => Object.assign(new Error('x'), { code })
    expect(closedBeforeAnswer(undefined)).toBe(true)
    expect(closedBeforeAnswer(err('ECONNRESET'))).toBe(true)
    expect(closedBeforeAnswer(err('EPIPE'))).toBe(true)
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 5, 3]) expect(closedBeforeAnswer(err(code))).toBe(false)
    expect(closedBeforeAnswer(new Error('connack timeout'))).toBe(false)
  })
})

describe('ServerUnavailableError', () => {
  it('says how the broker refused, without the password', () => {
    const http = new ServerUnavailableError('wss://u:pw@h/mqtt', { status: 503, retryAfterMs: 2000 })
    expect(http.message).toBe('server unavailable: wss://u:***@h/mqtt refused the connection (HTTP 503 to the WebSocket upgrade, Retry-After 2 s)')
    expect(http).toMatchObject({ name: 'ServerUnavailableError', url: 'wss://u:pw@h/mqtt', status: 503, retryAfterMs: 2000, code: undefined })
    const connack = new ServerUnavailableError('mqtt://h:1883', { code: 3 })
    expect(connack.message).toBe('server unavailable: mqtt://h:1883 refused the connection (CONNACK 3)')
    expect(connack).toMatchObject({ code: 3, status: undefined, retryAfterMs: undefined })
  })
})

describe('upgradeRefusalHook', () => {
  /** A stand-in for the http.ClientRequest `ws` passes to finishRequest. */
  function request (): { on: (e: 'response', l: (r: UpgradeResponse) => void) => void, end: () => void, respond: (r: UpgradeResponse) => void, ended: number } {
    const listeners: Array<(r: UpgradeResponse) => void> = []
    const req = {
      ended: 0,
      on: (_e: 'response', l: (r: UpgradeResponse) => void) => { listeners.push(l) },
      end: () => { req.ended++ },
      respond: (r: UpgradeResponse) => { for (const l of listeners) l(r) }
    }
    return req
  }

  it('reports 503 and 429 with their Retry-After, nothing else, and ends the request', () => {
    const seen: Array<[number, number | undefined]> = []
    const hook = upgradeRefusalHook((status, retryAfterMs) => seen.push([status, retryAfterMs]))
    for (const [statusCode, headers] of [[503, { 'retry-after': '2' }], [429, {}], [404, {}], [500, { 'retry-after': '1' }]] as const) {
      const req = request()
      hook(req, {})
      expect(req.ended).toBe(1)
      req.respond({ statusCode, headers })
    }
    expect(seen).toEqual([[503, 2000], [429, undefined]])
  })

  it('lets an app\'s own finishRequest finish the request', () => {
    const calls: string[] = []
    const hook = upgradeRefusalHook(() => {}, (req) => { calls.push('app'); req.end() })
    const req = request()
    hook(req, {})
    expect(calls).toEqual(['app'])
    expect(req.ended).toBe(1)
  })
})
