import { describe, expect, it } from 'vitest'
import { Position } from '../../client/src/position.js'

const env = (seq: number, epoch = 'e1'): { seq: number, epoch: string } => ({ seq, epoch })

describe('Position', () => {
  it('starts empty and delivers the first envelope whatever its seq', () => {
    const p = new Position()
    expect(p.current).toBeUndefined()
    expect(p.accept(env(42))).toEqual({ kind: 'deliver' })
    expect(p.current).toEqual({ seq: 42, epoch: 'e1' })
  })

  it('delivers seq + 1 and advances', () => {
    const p = new Position({ seq: 3, epoch: 'e1' })
    expect(p.accept(env(4))).toEqual({ kind: 'deliver' })
    expect(p.accept(env(5))).toEqual({ kind: 'deliver' })
    expect(p.seq).toBe(5)
  })

  it('calls seq <= current a duplicate and keeps the position', () => {
    const p = new Position({ seq: 5, epoch: 'e1' })
    expect(p.accept(env(5))).toEqual({ kind: 'duplicate', current: 5 })
    expect(p.accept(env(1))).toEqual({ kind: 'duplicate', current: 5 })
    expect(p.current).toEqual({ seq: 5, epoch: 'e1' })
  })

  it('calls seq > current + 1 a gap and keeps the position', () => {
    const p = new Position({ seq: 5, epoch: 'e1' })
    expect(p.accept(env(8))).toEqual({ kind: 'gap', expected: 6, got: 8 })
    expect(p.seq).toBe(5)
    expect(p.accept(env(6))).toEqual({ kind: 'deliver' })
  })

  it('resumes from seq 0 of an epoch: 1 is next, 2 is a gap', () => {
    expect(new Position({ seq: 0, epoch: 'e1' }).accept(env(1))).toEqual({ kind: 'deliver' })
    expect(new Position({ seq: 0, epoch: 'e1' }).accept(env(2))).toEqual({ kind: 'gap', expected: 1, got: 2 })
  })

  it('resets on an epoch change: the envelope becomes the first of the new epoch', () => {
    const p = new Position({ seq: 10, epoch: 'e1' })
    expect(p.accept(env(3, 'e2'))).toEqual({ kind: 'epoch-change', from: 'e1', to: 'e2' })
    expect(p.current).toEqual({ seq: 3, epoch: 'e2' })
    expect(p.accept(env(4, 'e2'))).toEqual({ kind: 'deliver' })
  })

  it('reset(epoch) forgets the seq and delivers the first envelope of that epoch whatever its seq', () => {
    const p = new Position({ seq: 10, epoch: 'e1' })
    p.reset('e2')
    expect(p.current).toBeUndefined()
    expect(p.epoch).toBe('e2')
    expect(p.accept(env(7, 'e2'))).toEqual({ kind: 'deliver' })
    expect(p.current).toEqual({ seq: 7, epoch: 'e2' })
  })

  it('after reset(epoch), an envelope of yet another epoch is an epoch change', () => {
    const p = new Position()
    p.reset('e2')
    expect(p.accept(env(1, 'e3'))).toEqual({ kind: 'epoch-change', from: 'e2', to: 'e3' })
  })

  it('reset() without epoch empties the position', () => {
    const p = new Position({ seq: 2, epoch: 'e1' })
    p.reset()
    expect(p.epoch).toBeUndefined()
    expect(p.accept(env(9, 'zz'))).toEqual({ kind: 'deliver' })
  })

  it('rejects malformed positions and envelopes', () => {
    expect(() => new Position({ seq: -1, epoch: 'e1' })).toThrow(RangeError)
    expect(() => new Position({ seq: 1.5, epoch: 'e1' })).toThrow(RangeError)
    expect(() => new Position({ seq: 1, epoch: '' })).toThrow(TypeError)
    const p = new Position()
    expect(() => p.accept(env(0))).toThrow(RangeError)
    expect(() => p.accept({ seq: 1, epoch: '' })).toThrow(TypeError)
    expect(() => { p.reset('') }).toThrow(TypeError)
    expect(p.current).toBeUndefined()
  })
})
