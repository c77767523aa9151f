// Tests the CPU profile summary and flame graph of bench/lib/profile.ts on a small hand-made profile.
import { describe, it, expect } from 'vitest'
import { summarize, flameGraph, origin, type CpuProfile } from '../../bench/lib/profile.js'

const frame = (functionName: string, url: string): { functionName: string, url: string, lineNumber: number } => ({ functionName, url, lineNumber: 9 })
// root -> deliver (tribune, 10 µs self) -> write (node, 30 µs self); root -> parse (mqtt-packet, 60 µs self); idle 100 µs
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)', ''), children: [2, 4, 5] },
    { id: 2, callFrame: frame('deliver', 'file:///x/dist/broker/src/delivery.js'), children: [3] },
    { id: 3, callFrame: frame('write', 'node:net'), children: [] },
    { id: 4, callFrame: frame('parse', 'file:///x/node_modules/mqtt-packet/parser.js'), children: [] },
    { id: 5, callFrame: frame('(idle)', ''), children: [] }
  ],
  samples: [2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 5],
  timeDeltas: [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 100]
}

describe('CPU profile summary', () => {
  it('gives self time by function and by origin as shares of all sampled time', () => {
    const s = summarize(profile)
    expect(s.totalMs).toBeCloseTo(0.2)
    expect(s.functions[0]).toEqual({ name: '(idle)', share: 0.5 })
    expect(s.functions.find((r) => r.name.startsWith('parse'))?.share).toBeCloseTo(0.3)
    expect(s.origins.find((r) => r.name === 'tribune')?.share).toBeCloseTo(0.05)
    expect(s.origins.find((r) => r.name === 'node')?.share).toBeCloseTo(0.15)
    expect(origin(frame('x', 'file:///y/node_modules/@scope/pkg/a.js'))).toBe('@scope/pkg')
  })

  it('draws each frame as wide as its inclusive time, idle left out', () => {
    const svg = flameGraph(profile, 'a <test> & more', 1000)
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg).toContain('a &lt;test&gt; &amp; more')
    const width = (name: string): number => Number(new RegExp(`<title>${name}[^<]*</title><rect [^>]*width="([\\d.]+)"`).exec(svg)?.[1])
    expect(width('parse')).toBeCloseTo(600) // 60 of 100 µs busy
    expect(width('deliver')).toBeCloseTo(400) // 10 self + 30 in write
    expect(width('write')).toBeCloseTo(300)
    expect(svg).not.toContain('(idle)')
  })
})
