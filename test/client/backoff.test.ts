import { describe, expect, it } from 'vitest'
import { backoffDelay, backoffOptions, DEFAULT_BACKOFF, reconnectDelay } from '../../client/src/backoff.js'

describe('backoffDelay (full jitter)', () => {
  it('is random(0, min(cap, base * 2^attempt)) with the defaults base 500 ms, cap 30 s', () => {
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 500, capMs: 30_000, refusedMinMs: 1000, retryAfterMaxMs: 300_000 })
    const top = (): number => 0.999999
    expect(backoffDelay(0, {}, top)).toBe(499)
    expect(backoffDelay(1, {}, top)).toBe(999)
    expect(backoffDelay(3, {}, top)).toBe(3999)
    expect(backoffDelay(6, {}, top)).toBe(29_999) // 32000 capped at 30000
    expect(backoffDelay(5000, {}, top)).toBe(29_999) // no overflow
    expect(backoffDelay(4, {}, () => 0)).toBe(0)
    expect(backoffDelay(2, {}, () => 0.5)).toBe(1000)
  })

  it('uses the configured base and cap, clamps odd attempts', () => {
    expect(backoffDelay(2, { baseMs: 100, capMs: 250 }, () => 0.999999)).toBe(249)
    expect(backoffDelay(-3, { baseMs: 100 }, () => 0.5)).toBe(50)
    expect(backoffDelay(Number.NaN, { baseMs: 100 }, () => 0.5)).toBe(50)
  })

  it('stays within the window with Math.random', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const d = backoffDelay(attempt)
      expect(d).toBeGreaterThanOrEqual(0)
      expect(d).toBeLessThan(Math.min(30_000, 500 * 2 ** attempt))
    }
  })

  it('rejects a bad base or cap', () => {
    expect(() => backoffDelay(0, { baseMs: 0 })).toThrow(RangeError)
    expect(() => backoffDelay(0, { baseMs: 100, capMs: 50 })).toThrow(RangeError)
  })
})

describe('reconnectDelay (full jitter, plus a floor after a refusal)', () => {
  it('is the plain full-jitter delay after a failure that is not a refusal', () => {
    for (const r of [0, 0.3, 0.999999]) {
      for (const attempt of [0, 2, 9]) expect(reconnectDelay(attempt, { refused: false }, {}, () => r)).toBe(backoffDelay(attempt, {}, () => r))
    }
  })

  it('waits Retry-After plus the jitter after a refusal that sent one', () => {
    expect(reconnectDelay(0, { refused: true, retryAfterMs: 2000 }, {}, () => 0)).toBe(2000)
    expect(reconnectDelay(0, { refused: true, retryAfterMs: 2000 }, {}, () => 0.999999)).toBe(2499)
    expect(reconnectDelay(3, { refused: true, retryAfterMs: 2000 }, {}, () => 0.5)).toBe(4000)
    // Never under refusedMinMs: "now", or a date already past (a client clock behind the server's), waits 1 s too.
    expect(reconnectDelay(0, { refused: true, retryAfterMs: 0 }, {}, () => 0.5)).toBe(1250)
    expect(reconnectDelay(0, { refused: true, retryAfterMs: 300 }, {}, () => 0)).toBe(1000)
  })

  it('waits refusedMinMs plus the jitter after a refusal without a readable Retry-After', () => {
    expect(reconnectDelay(0, { refused: true }, {}, () => 0)).toBe(1000)
    expect(reconnectDelay(1, { refused: true }, { refusedMinMs: 300, baseMs: 100, capMs: 1000 }, () => 0.5)).toBe(400)
  })

  it('cuts an overlong Retry-After to retryAfterMaxMs', () => {
    expect(reconnectDelay(0, { refused: true, retryAfterMs: 86_400_000 }, {}, () => 0)).toBe(300_000)
    expect(reconnectDelay(0, { refused: true, retryAfterMs: 60_000 }, { retryAfterMaxMs: 10_000 }, () => 0)).toBe(10_000)
  })

  it('spreads refused clients over the jitter window after the floor, instead of returning in lockstep', () => {
    const delays = Array.from({ length: 1000 }, () => reconnectDelay(4, { refused: true, retryAfterMs: 2000 }))
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(2000)
    expect(Math.max(...delays)).toBeLessThan(2000 + 8000)
    expect(new Set(delays.map((d) => Math.floor((d - 2000) / 1000))).size).toBe(8) // every second of the window used
  })

  it('validates the options', () => {
    expect(backoffOptions({ baseMs: 100, refusedMinMs: undefined })).toEqual({ ...DEFAULT_BACKOFF, baseMs: 100 })
    expect(() => backoffOptions({ refusedMinMs: -1 })).toThrow(RangeError)
    expect(() => backoffOptions({ retryAfterMaxMs: Number.NaN })).toThrow(RangeError)
    expect(() => reconnectDelay(0, { refused: true }, { baseMs: 0 })).toThrow(RangeError)
  })
})
