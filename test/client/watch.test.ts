// Tests whether `tribune watch` against a real broker prints one JSON line per message: a feed's history then live
// over WebSocket (--from all and last-<n>), and a retained state topic over TCP.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, it, expect } from 'vitest'
import { brokerForTest } from '../helpers/broker.js'
import { connect } from '../helpers/mqtt.js'

const BIN = join(import.meta.dirname, '../../bin/tribune.js')

async function watch (args: string[], whileRunning?: () => Promise<void>): Promise<{ code: number | null, lines: any[] }> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, 'watch', ...args])
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => { out += d })
    p.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`watch timed out\n${out}\n${err}`)) }, 15_000)
    p.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, lines: out.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)) })
    })
    if (whileRunning !== undefined) p.stderr.once('data', () => { void whileRunning() })
  })
}

describe('tribune watch', () => {
  it('prints a feed history then live, and a retained state', async () => {
    const node = await brokerForTest()
    const pub = await connect(node.tcpUrl)
    for (let i = 1; i <= 4; i++) await pub.publishAsync('matches/w/events', JSON.stringify({ id: `e${i}`, i }), { qos: 1 })
    await pub.publishAsync('matches/w/state', JSON.stringify({ status: 'live', score: [1, 0] }), { qos: 1, retain: true })

    const all = await watch(['matches/w/events', '--url', node.wsUrl, '--count', '5'], async () => {
      await new Promise((resolve) => setTimeout(resolve, 300))
      await pub.publishAsync('matches/w/events', JSON.stringify({ id: 'e5', i: 5 }), { qos: 1 })
    })
    expect(all.code).toBe(0)
    expect(all.lines.map((l) => [l.seq, l.data.i])).toEqual([[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]])

    const last = await watch(['matches/w/events', '--url', node.tcpUrl, '--from', 'last-2', '--count', '2'])
    expect(last.lines.map((l) => l.seq)).toEqual([4, 5])

    const state = await watch(['matches/w/state', '--url', node.tcpUrl, '--count', '1'])
    expect(state.lines).toEqual([{ topic: 'matches/w/state', payload: { status: 'live', score: [1, 0] }, retain: true }])
  })
})
