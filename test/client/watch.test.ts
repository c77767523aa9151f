// Tests whether `tribune watch` against a real broker prints one JSON line per message: a feed's history then live
// over WebSocket (--from all and last-<n>), and a retained state topic over TCP.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, it, expect } from 'vitest'
import { brokerForTest } from '../helpers/broker.js'
import { connect } from '../helpers/mqtt.js'
import { secureConfig, SAMPLE } from '../helpers/auth.js'
import { closedPort } from './refusers.js'

const BIN = join(import.meta.dirname, '../../bin/tribune.js')

async function watch (args: string[], whileRunning?: () => Promise<void>): Promise<{ code: number | null, lines: any[], err: string }> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, 'watch', ...args])
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => { out += d })
    p.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`watch timed out\n${out}\n${err}`)) }, 15_000)
    p.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, lines: out.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)), err })
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

  it('takes --url several times: a dead node and a live one, in a random order, and prints the feed exact', async () => {
    const node = await brokerForTest()
    const dead = `ws://127.0.0.1:${await closedPort()}/mqtt`
    const pub = await connect(node.tcpUrl)
    for (let i = 1; i <= 3; i++) await pub.publishAsync('matches/m/events', JSON.stringify({ id: `e${i}`, i }), { qos: 1 })
    for (const urls of [[dead, node.wsUrl], [node.wsUrl, dead]]) {
      const run = await watch(['matches/m/events', ...urls.flatMap((u) => ['--url', u]), '--count', '3'])
      expect(run.code).toBe(0)
      expect(run.lines.map((l) => [l.seq, l.data.i])).toEqual([[1, 1], [2, 2], [3, 3]])
      expect(run.err).toContain(`connected to ${node.wsUrl}`)
      // When it tried the dead one first: the hint names it, and the retry names where it goes.
      if (run.err.includes('no MQTT connection')) expect(run.err).toMatch(new RegExp(`no MQTT connection to ${dead}[^]*reconnecting to ${node.wsUrl} in \\d+ ms \\(attempt 1\\)`))
    }
  })

  it('takes --region several times: moves to the next region when its own dies, and prints each event once, by id', async () => {
    const a = await brokerForTest()
    const b = await brokerForTest()
    const pubA = await connect(a.tcpUrl)
    const pubB = await connect(b.tcpUrl)
    // Region B's feed began earlier: the same events have other seqs there.
    await pubB.publishAsync('matches/r/events', JSON.stringify({ id: 'warmup', i: 0 }), { qos: 1 })
    for (let i = 1; i <= 3; i++) {
      for (const pub of [pubA, pubB]) await pub.publishAsync('matches/r/events', JSON.stringify({ id: `e${i}`, i }), { qos: 1 })
    }
    const run = await watch(['matches/r/events', '--region', a.wsUrl, '--region', `${b.wsUrl},${b.tcpUrl}`, '--region-timeout', '300', '--count', '5'], async () => {
      await new Promise((resolve) => setTimeout(resolve, 300))
      await a.close()
      for (let i = 4; i <= 5; i++) await pubB.publishAsync('matches/r/events', JSON.stringify({ id: `e${i}`, i }), { qos: 1 })
    })
    expect(run.code).toBe(0)
    expect(run.lines.map((l) => [l.seq, l.data.i])).toEqual([[1, 1], [2, 2], [3, 3], [5, 4], [6, 5]])
    expect(run.err).toMatch(/no connection in region 0 for \d+ ms: moving to region 1 \(/)
  })

  it('exits 1 with the reason when the broker refuses the login or a subscription, and never prints a password', async () => {
    const node = await brokerForTest(secureConfig())
    const port = (prefix: string): number => node.ports[Object.keys(node.ports).find((n) => n.startsWith(prefix)) ?? '']
    const mqttUrl = `mqtt://127.0.0.1:${port('mqtt:')}`
    const noLogin = await watch(['matches/x/state', '--url', mqttUrl]) // this listener takes no anonymous clients
    expect(noLogin.code).toBe(1)
    expect(noLogin.err).toMatch(/refused the login \(CONNACK [45]: .*\); give credentials in the URL/)
    const viewerWs = `ws://127.0.0.1:${port('ws:')}/mqtt` // anonymous viewers may read matches/..., nothing else
    const refused = await watch(['secret/#', '--url', viewerWs])
    expect(refused.code).toBe(1)
    expect(refused.err).toContain('subscribe secret/# refused by the broker (SUBACK 0x80)')
    const { username, password } = SAMPLE.operator
    const loggedIn = await watch(['matches/x/state', '--url', `mqtt://${username}:${password}@127.0.0.1:${port('mqtt:')}`, '--count', '1'], async () => {
      const pub = await connect(mqttUrl, { username: SAMPLE.publisher.username, password: SAMPLE.publisher.password })
      await pub.publishAsync('matches/x/state', '{"score":[0,0]}', { qos: 1, retain: true })
    })
    expect(loggedIn.code).toBe(0)
    expect(loggedIn.err).toContain(`connected to mqtt://${username}:***@127.0.0.1`)
    expect(loggedIn.err).not.toContain(password)
  })
})
