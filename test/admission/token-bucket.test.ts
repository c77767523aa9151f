import { test, expect } from 'vitest'
import { TokenBucket } from '../../broker/src/admission/token-bucket.js'

test('a token bucket takes its burst at once, then the rate, and never holds more than the burst', () => {
  const bucket = new TokenBucket(10, 5, 0)
  const taken = (now: number, n: number): number => Array.from({ length: n }, () => bucket.take(now)).filter(Boolean).length
  expect(taken(0, 8)).toBe(5)
  expect(bucket.waitMs(0)).toBe(100)
  expect(taken(100, 3)).toBe(1) // 0.1 s at 10/s: one token
  expect(taken(350, 3)).toBe(2) // 0.25 s more: 2.5 tokens, 2 whole
  expect(bucket.full(10_000)).toBe(true)
  expect(taken(10_000, 10)).toBe(5) // a long pause refills to the burst only
  expect(bucket.take(10_000)).toBe(false)
})
