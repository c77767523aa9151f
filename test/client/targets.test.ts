import { describe, expect, it } from 'vitest'
import { shuffled, TargetRotation, urlList, withoutPassword } from '../../client/src/targets.js'
import { rng } from '../helpers/random.js'

describe('shuffled (Fisher-Yates with an injected random source)', () => {
  it('is a deterministic permutation for a given random source', () => {
    const items = ['a', 'b', 'c', 'd', 'e']
    expect(shuffled(items, () => 0)).toEqual(['b', 'c', 'd', 'e', 'a'])
    expect(shuffled(items, () => 0.999999)).toEqual(items)
    expect(shuffled(items, rng(1))).toEqual(shuffled(items, rng(1)))
    expect([...shuffled(items, rng(7))].sort()).toEqual(items)
    expect(items).toEqual(['a', 'b', 'c', 'd', 'e']) // not modified
    expect(shuffled([], Math.random)).toEqual([])
    expect(shuffled(['x'], () => 0.5)).toEqual(['x'])
  })

  it('makes every order about equally likely (3 URLs, 60,000 shuffles)', () => {
    const counts = new Map<string, number>()
    const random = rng(42)
    for (let i = 0; i < 60_000; i++) {
      const key = shuffled(['a', 'b', 'c'], random).join('')
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    expect(counts.size).toBe(6)
    for (const n of counts.values()) expect(Math.abs(n - 10_000)).toBeLessThan(500)
  })

  it('spreads the first choice of many clients over the nodes', () => {
    const random = rng(3)
    const first = new Map<string, number>()
    for (let i = 0; i < 3000; i++) {
      const url = new TargetRotation(['n0', 'n1', 'n2'], random).current
      first.set(url, (first.get(url) ?? 0) + 1)
    }
    for (const url of ['n0', 'n1', 'n2']) expect(Math.abs((first.get(url) ?? 0) - 1000)).toBeLessThan(100)
  })
})

describe('TargetRotation', () => {
  it('starts on the first URL of the shuffled order and goes round it on next()', () => {
    const t = new TargetRotation(['a', 'b', 'c'], () => 0) // order b, c, a
    expect(t.order).toEqual(['b', 'c', 'a'])
    expect(t.current).toBe('b')
    expect([t.next(), t.next(), t.next(), t.next()]).toEqual(['c', 'a', 'b', 'c'])
    expect(t.current).toBe('c')
  })

  it('takes a single URL, which it keeps', () => {
    const t = new TargetRotation('ws://h/mqtt')
    expect(t.order).toEqual(['ws://h/mqtt'])
    expect(t.next()).toBe('ws://h/mqtt')
  })

  it('refuses an empty list or empty entries', () => {
    expect(() => new TargetRotation([])).toThrow(RangeError)
    expect(() => urlList(['ws://h', ''])).toThrow(RangeError)
    expect(() => urlList([42 as unknown as string])).toThrow(RangeError)
    expect(urlList('mqtt://h')).toEqual(['mqtt://h'])
  })
})

describe('withoutPassword', () => {
  it('hides a password in a URL, and in a string that does not parse', () => {
    expect(withoutPassword('mqtt://u:SeCrEt@h:1883')).toBe('mqtt://u:***@h:1883')
    expect(withoutPassword('ws://h:8080/mqtt')).toBe('ws://h:8080/mqtt')
    expect(withoutPassword('mqtt://u:SeCrEt@h:99999999')).toBe('mqtt://u:***@h:99999999')
  })
})
