import { describe, expect, it } from 'vitest'
import { backoffDelay, DEFAULT_BACKOFF } from '../../client/src/backoff.js'

describe('backoffDelay (full jitter)', () => {
  it('is random(0, min(cap, base * 2^attempt)) with the defaults base 500 ms, cap 30 s', () => {
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 500, capMs: 30_000 })
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
