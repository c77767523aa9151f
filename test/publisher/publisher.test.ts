/**
 * The Publisher library and `tribune replay` against a real in-process broker on free ports: plain aedes 1.2 here,
 * so that one of its listeners can be taken down while the broker keeps the session. The same library against the
 * Tribune broker, restarted under it: restart.test.ts; the whole replay against Tribune: test/e2e.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { replayMain, type ReplayIo } from '../../publisher/src/cli.js'
import { Publisher, PublisherClosedError } from '../../publisher/src/index.js'
import { tempDir } from '../helpers/broker.js'
import { closedPort } from '../client/refusers.js'
import { connectPublisher, settledWithin, startBroker, subscriber, waitFor } from './aedes.js'

describe('Publisher', () => {
  it('delivers events with QoS 1 and state retained', async () => {
    const { listeners: [l] } = await startBroker()
    const sub = await subscriber(l.url)
    const pub = await connectPublisher(l.url)
    expect(pub.clientId).toMatch(/^tribune-pub-[0-9a-f]{12}$/)
    expect(pub.connected).toBe(true)

    await pub.publishEvent('matches/m1/events', { type: 'kickoff', id: 'kickoff', minute: 0, score: [0, 0] })
    await pub.setState('matches/m1/state', { id: 'm1', status: 'live', score: [0, 0] })
    await waitFor(() => sub.got.length === 2, 'two messages')
    expect(sub.got[0]).toEqual({ topic: 'matches/m1/events', json: { type: 'kickoff', id: 'kickoff', minute: 0, score: [0, 0] }, qos: 1, retain: false })
    expect(sub.got[1]).toMatchObject({ topic: 'matches/m1/state', json: { status: 'live' }, qos: 1 })

    // A late subscriber gets the state as a retained message, not the event.
    const late = await subscriber(l.url)
    await waitFor(() => late.got.length === 1, 'retained state')
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(late.got).toEqual([{ topic: 'matches/m1/state', json: { id: 'm1', status: 'live', score: [0, 0] }, qos: 1, retain: true }])
  })

  it('refuses bad topics and payloads, and publishing after close', async () => {
    const { listeners: [l] } = await startBroker()
    const pub = await connectPublisher(l.url, { clientId: 'fixed-id' })
    expect(pub.clientId).toBe('fixed-id')
    await expect(pub.publishEvent('matches/+/events', { id: 'x' })).rejects.toThrow(TypeError)
    await expect(pub.publishEvent('', { id: 'x' })).rejects.toThrow(TypeError)
    await expect(pub.setState('a/b', [1, 2])).rejects.toThrow(TypeError)
    await pub.close()
    await pub.close()
    await expect(pub.publishEvent('matches/x/events', { id: 'x' })).rejects.toThrow(PublisherClosedError)
  })

  it('fails to connect when no broker listens', async () => {
    const { listeners: [l] } = await startBroker()
    await l.down()
    await expect(Publisher.connect(l.url)).rejects.toThrow(/ECONNREFUSED/)
  })

  it('survives the broker going away: unacknowledged publishes settle after reconnect, or reject on close()', async () => {
    const { listeners: [pubSide, subSide] } = await startBroker(2)
    const sub = await subscriber(subSide.url)
    const changes: boolean[] = []
    const pub = await connectPublisher(pubSide.url, { onConnectionChange: (up) => changes.push(up) })
    await pub.publishEvent('matches/m/events', { id: 'e1' })

    await pubSide.down()
    await waitFor(() => !pub.connected, 'publisher offline')
    const e2 = pub.publishEvent('matches/m/events', { id: 'e2' })
    const s2 = pub.setState('matches/m/state', { id: 'm', status: 'live' })
    expect(await settledWithin(e2, 300)).toBe(false)
    expect(pub.inFlight).toBe(2)

    await pubSide.up()
    await e2
    await s2
    expect(pub.inFlight).toBe(0)
    await waitFor(() => sub.got.length >= 3, 'three messages')
    expect(sub.got.map((m) => m.json.id)).toEqual(['e1', 'e2', 'm'])
    expect(changes).toEqual([false, true])
    await pub.close() // a deliberate close is not a lost connection (tribune replay said "connection lost" at its end)
    expect(changes).toEqual([false, true])

    await pubSide.down()
    await waitFor(() => !pub.connected, 'publisher offline again')
    const e3 = pub.publishEvent('matches/m/events', { id: 'e3' })
    const closing = pub.close()
    await expect(e3).rejects.toThrow(PublisherClosedError)
    expect(await settledWithin(closing, 200)).toBe(true)
  })
})

/** A hand-written file: a 1-0 group match and a final decided on penalties after 1-1 in extra time. */
const TINY = {
  name: 'Tiny Cup',
  matches: [
    {
      round: 'Final', date: '2030-07-21', time: '18:00 UTC+1', team1: 'Côte d\'Ivoire', team2: 'Brazil',
      score: { ft: [1, 1], et: [1, 1], p: [4, 3] },
      goals1: [{ name: 'A', minute: '90+2' }], goals2: [{ name: 'B', minute: 12, penalty: true }]
    },
    {
      round: 'Matchday 1', date: '2030-07-20', time: '19:00', team1: 'Spain', team2: 'Japan',
      score: { ft: [1, 0] }, goals1: [{ name: 'C', minute: 30 }]
    }
  ]
}

/** Captures replayMain's output. */
function captureIo (isTTY = false): ReplayIo & { out: () => string, err: () => string } {
  let out = ''
  let err = ''
  return {
    stdout: { write: (t: string) => { out += t } },
    stderr: { write: (t: string) => { err += t }, isTTY },
    out: () => out,
    err: () => err
  }
}

function tempFile (name: string, content: string): string {
  const file = join(tempDir('tribune-pub-test-'), name)
  writeFileSync(file, content)
  return file
}

describe('tribune replay', () => {
  it('publishes scheduled states, then each match\'s events and states in order', async () => {
    const { listeners: [l] } = await startBroker()
    const sub = await subscriber(l.url)
    const file = tempFile('tiny.json', JSON.stringify(TINY))
    const io = captureIo()
    expect(await replayMain([file, '--url', l.url, '--speed', '0'], io)).toBe(0)
    const f = 'matches/2030-07-21-cote-d-ivoire-brazil/'
    const g = 'matches/2030-07-20-spain-japan/'
    await waitFor(() => sub.got.length === 23, 'all messages')
    const seen = sub.got.map((m) => `${m.topic.slice(m.topic.indexOf('/') + 1)} ${m.json.type ?? m.json.status} ${(m.json.score as number[]).join('-')}`)
    expect(seen).toEqual([
      '2030-07-21-cote-d-ivoire-brazil/state scheduled 0-0',
      '2030-07-20-spain-japan/state scheduled 0-0',
      // Spain v Japan kicks off the day before; the idle gap is skipped.
      '2030-07-20-spain-japan/events kickoff 0-0',
      '2030-07-20-spain-japan/state live 0-0',
      '2030-07-20-spain-japan/events goal 1-0',
      '2030-07-20-spain-japan/state live 1-0',
      '2030-07-20-spain-japan/events halftime 1-0',
      '2030-07-20-spain-japan/events fulltime 1-0',
      '2030-07-20-spain-japan/events end 1-0',
      '2030-07-20-spain-japan/state finished 1-0',
      '2030-07-21-cote-d-ivoire-brazil/events kickoff 0-0',
      '2030-07-21-cote-d-ivoire-brazil/state live 0-0',
      '2030-07-21-cote-d-ivoire-brazil/events goal 0-1',
      '2030-07-21-cote-d-ivoire-brazil/state live 0-1',
      '2030-07-21-cote-d-ivoire-brazil/events halftime 0-1',
      '2030-07-21-cote-d-ivoire-brazil/events goal 1-1',
      '2030-07-21-cote-d-ivoire-brazil/state live 1-1',
      '2030-07-21-cote-d-ivoire-brazil/events fulltime 1-1',
      '2030-07-21-cote-d-ivoire-brazil/events extratime 1-1',
      '2030-07-21-cote-d-ivoire-brazil/events extratime_end 1-1',
      '2030-07-21-cote-d-ivoire-brazil/events shootout 1-1',
      '2030-07-21-cote-d-ivoire-brazil/events end 1-1',
      '2030-07-21-cote-d-ivoire-brazil/state finished 1-1'
    ])
    expect(sub.got.every((m) => m.qos === 1)).toBe(true)
    const final = sub.got.filter((m) => m.topic === `${f}state`).pop()?.json
    expect(final).toEqual({
      id: '2030-07-21-cote-d-ivoire-brazil', team1: 'Côte d\'Ivoire', team2: 'Brazil', date: '2030-07-21',
      kickoff: '2030-07-21T17:00:00.000Z', round: 'Final', status: 'finished', score: [1, 1], penalties: [4, 3]
    })
    const goal = sub.got.find((m) => m.topic === `${f}events` && m.json.id === 'goal-2')?.json
    expect(goal).toEqual({ type: 'goal', id: 'goal-2', team: 1, scorer: 'A', minute: 90, offset: 2, score: [1, 1] })
    expect(sub.got.find((m) => m.topic === `${g}events` && m.json.type === 'end')?.json).toEqual({ type: 'end', id: 'end', minute: 90, offset: 4, score: [1, 0] })
    expect(io.out()).toMatch(/^replayed 2\/2 matches, 14 events, 9 states to mqtt:\/\/127\.0\.0\.1:\d+ in /)
    expect(io.err()).toContain('finished 1/2: 2030-07-20-spain-japan Spain 1-0 Japan')
    expect(io.err()).toContain('finished 2/2: 2030-07-21-cote-d-ivoire-brazil Côte d\'Ivoire 1-1 Brazil (4-3 pens)')
  })

  it('takes --url several times: a dead broker is skipped', async () => {
    const { listeners: [l] } = await startBroker()
    const dead = `mqtt://127.0.0.1:${await closedPort()}`
    const sub = await subscriber(l.url)
    const io = captureIo()
    expect(await replayMain([tempFile('tiny.json', JSON.stringify(TINY)), '--url', dead, '--url', l.url, '--speed', '0'], io)).toBe(0)
    await waitFor(() => sub.got.length === 23, 'all messages')
    expect(io.out()).toMatch(new RegExp(`^replayed 2/2 matches, 14 events, 9 states to ${dead}, ${l.url} in `))
  })

  it('takes --region several times: every message to each region; a region down is waited for at the end', async () => {
    const a = await startBroker(2)
    const b = await startBroker(2) // the second listener of each stays up for a subscriber
    await b.listeners[0].down()
    const subA = await subscriber(a.listeners[1].url)
    const subB = await subscriber(b.listeners[1].url)
    const io = captureIo()
    const run = replayMain([tempFile('tiny.json', JSON.stringify(TINY)), '--region', `${a.listeners[0].url},${a.listeners[1].url}`, '--region', b.listeners[0].url, '--speed', '0'], io)
    await waitFor(() => subA.got.length === 23, 'every message in region 0')
    await waitFor(() => io.err().includes(`waiting for region 1 (${b.listeners[0].url}) to acknowledge 23 messages`), 'the wait for region 1')
    expect(subB.got).toEqual([])
    await b.listeners[0].up()
    expect(await run).toBe(0)
    await waitFor(() => subB.got.length === 23, 'every message in region 1')
    expect(subB.got.map((m) => `${m.topic} ${JSON.stringify(m.json)}`)).toEqual(subA.got.map((m) => `${m.topic} ${JSON.stringify(m.json)}`))
    expect(io.out()).toMatch(new RegExp(`^replayed 2/2 matches, 14 events, 9 states to region 0 \\(${a.listeners[0].url}, ${a.listeners[1].url}\\) and region 1 \\(${b.listeners[0].url}\\) in `))
  })

  it('paces the replay by --speed and draws one updating line on a terminal', async () => {
    const { listeners: [l] } = await startBroker()
    const file = tempFile('tiny.json', JSON.stringify(TINY))
    const io = captureIo(true)
    const started = Date.now()
    // Play time: Spain v Japan 111 minutes, then Côte d'Ivoire v Brazil 164 (idle gap skipped): 275 minutes.
    expect(await replayMain([file, `--url=${l.url}`, '--speed', '600'], io)).toBe(0)
    const elapsed = Date.now() - started
    expect(elapsed).toBeGreaterThanOrEqual(275 / 600 * 1000 - 20)
    expect(elapsed).toBeLessThan(5000)
    expect(io.err()).toContain('\r\x1b[2Kmatches 2/2 done, 14/14 events published, sim 2030-07-21 19:44Z')
    expect(io.err()).not.toContain('finished 1/2')
  })

  it('rejects bad command lines with exit code 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--bogus', 'x.json'], /--bogus/],
      [['x.json', '--speed', 'abc'], /--speed: expected a number >= 0, got "abc"/],
      [['x.json', '--speed', '-1'], /--speed/],
      [['x.json', '--url', 'http://example.com'], /--url: unsupported protocol "http:"/],
      [['x.json', '--url', 'not a url'], /--url: not a URL/],
      [['x.json', '--url', 'mqtt://h', '--url', 'ws://u:SeCrEt@h:99999/mqtt'], /--url: not a URL: "ws:\/\/u:\*\*\*@h:99999\/mqtt"/],
      [['x.json', '--speed'], /--speed/],
      [['x.json', '--url', 'mqtt://a', '--region', 'mqtt://b'], /--url and --region do not go together/],
      [['x.json', '--region', 'mqtt://a', '--region', ','], /--region: region 1 has no URL/],
      [['x.json', '--region', 'mqtt://a,mqtt://b', '--region', 'mqtt://b'], /--region: "mqtt:\/\/b" is in two regions/],
      [['x.json', '--region', 'mqtt://a', '--region', 'http://b'], /--region: unsupported protocol "http:"/],
      [[], /missing <file>/],
      [['a.json', 'b.json'], /unexpected argument "b.json"/]
    ]
    for (const [argv, message] of cases) {
      const io = captureIo()
      expect(await replayMain(argv, io), argv.join(' ')).toBe(2)
      expect(io.err(), argv.join(' ')).toMatch(message)
    }
    const help = captureIo()
    expect(await replayMain(['--help'], help)).toBe(0)
    expect(help.out()).toContain('Usage: tribune replay <file>')
  })

  it('refuses malformed or missing files and an absent broker with exit code 1', async () => {
    const bad = structuredClone(TINY)
    ;(bad.matches[1].goals1[0] as { minute: unknown }).minute = 'abc'
    const io = captureIo()
    expect(await replayMain([tempFile('bad.json', JSON.stringify(bad)), '--url', 'mqtt://127.0.0.1:1'], io)).toBe(1)
    expect(io.err()).toContain('match 1 (2030-07-20 Spain v Japan): goals1[0].minute: expected a number or "90+4"-style string, got "abc"')

    const notJson = captureIo()
    expect(await replayMain([tempFile('x.json', '{"matches": ['), '--url', 'mqtt://127.0.0.1:1'], notJson)).toBe(1)
    expect(notJson.err()).toMatch(/x\.json: not valid JSON/)

    const missing = captureIo()
    expect(await replayMain(['/nonexistent/tribune.json'], missing)).toBe(1)
    expect(missing.err()).toMatch(/cannot read \/nonexistent\/tribune\.json: .*ENOENT/)

    const { listeners: [l] } = await startBroker()
    await l.down()
    const noBroker = captureIo()
    expect(await replayMain([tempFile('tiny.json', JSON.stringify(TINY)), '--url', l.url], noBroker)).toBe(1)
    expect(noBroker.err()).toContain(`cannot connect to ${l.url}`)
  })
})
