// Tests the pages' pure parts: the scoreboard's grouping by day, each match's status line and how each event reads
// (every event type the replay makes, from the shipped World Cup), and the operations page's per-second rates from
// successive statistics documents (counters since start; a restart; freshness).
import { describe, it, expect } from 'vitest'
import { dayLabel, groupByDay, minuteText, parseMatchState, scoreText, statusLine, type MatchEvent, type MatchState } from '../../ui/src/scoreboard/matches.js'
import { eventLine } from '../../ui/src/scoreboard/events.js'
import { NodeSeries, parseStats, pointOf, type StatsDoc } from '../../ui/src/ops/series.js'
import { matchesByKickoff } from './world-cup.js'
import { brokerUrls } from '../../ui/src/shared/access.js'

const state = (over: Partial<MatchState>): MatchState => ({ id: 'x', team1: 'A', team2: 'B', date: '2022-12-18', kickoff: '2022-12-18T15:00:00.000Z', status: 'live', score: [0, 0], ...over })
const event = (over: Partial<MatchEvent>): MatchEvent => ({ type: 'goal', id: 'goal-1', minute: 10, score: [1, 0], ...over })

describe('the scoreboard model', () => {
  it('groups matches by day in date order, by kickoff within a day, with the rounds of the day', () => {
    const days = groupByDay([
      state({ id: 'b', date: '2022-11-21', kickoff: '2022-11-21T19:00:00Z', round: 'Matchday 2' }),
      state({ id: 'a', date: '2022-11-21', kickoff: '2022-11-21T13:00:00Z', round: 'Matchday 2' }),
      state({ id: 'c', date: '2022-11-20', kickoff: '2022-11-20T16:00:00Z', round: 'Matchday 1' }),
      state({ id: 'd', date: '2022-11-21', kickoff: '2022-11-21T22:00:00Z' })
    ])
    expect(days.map((d) => [d.date, d.rounds, d.matches.map((m) => m.id)])).toEqual([
      ['2022-11-20', ['Matchday 1'], ['c']],
      ['2022-11-21', ['Matchday 2'], ['a', 'b', 'd']]
    ])
    expect(dayLabel('2022-11-20')).toBe('Sun 20 Nov')
    expect(dayLabel('not a date')).toBe('not a date')
  })

  it('reads a state, refusing what is not one', () => {
    expect(parseMatchState(state({}))).toEqual(state({}))
    for (const bad of [null, 'text', {}, { ...state({}), status: 'over' }, { ...state({}), score: [1] }]) expect(parseMatchState(bad)).toBeNull()
  })

  it('gives each match a status line: kickoff time, phase and minute of the latest event, result', () => {
    expect(statusLine(state({ status: 'scheduled' }), undefined, 'UTC')).toEqual({ text: '15:00', kind: 'scheduled' })
    expect(statusLine(state({}), undefined)).toEqual({ text: 'Live', kind: 'live' })
    expect(statusLine(state({}), event({ type: 'kickoff', minute: 0 }))).toEqual({ text: "1st half 0'", kind: 'live' })
    expect(statusLine(state({}), event({ minute: 45, offset: 2 }))).toEqual({ text: "1st half 45+2'", kind: 'live' })
    expect(statusLine(state({}), event({ type: 'halftime', minute: 45 }))).toEqual({ text: 'HT', kind: 'break' })
    expect(statusLine(state({}), event({ minute: 90, offset: 9 }))).toEqual({ text: "2nd half 90+9'", kind: 'live' })
    expect(statusLine(state({}), event({ type: 'fulltime', minute: 90 }))).toEqual({ text: 'FT', kind: 'break' })
    expect(statusLine(state({}), event({ type: 'extratime', minute: 90 }))).toEqual({ text: 'Extra time', kind: 'live' })
    expect(statusLine(state({}), event({ minute: 108 }))).toEqual({ text: "ET 108'", kind: 'live' })
    expect(statusLine(state({}), event({ type: 'extratime_end', minute: 120 }))).toEqual({ text: 'AET', kind: 'break' })
    expect(statusLine(state({}), event({ type: 'shootout', minute: 120 }))).toEqual({ text: 'Penalties', kind: 'live' })
    expect(statusLine(state({ status: 'finished', score: [3, 3], penalties: [4, 2] }), undefined)).toEqual({ text: 'Pens 4–2', kind: 'finished' })
    expect(statusLine(state({ status: 'finished' }), undefined)).toEqual({ text: 'FT', kind: 'finished' })
    expect(statusLine(state({ status: 'finished' }), event({ type: 'end', minute: 120 }))).toEqual({ text: 'AET', kind: 'finished' })
    expect(minuteText(90, 4)).toBe("90+4'")
    expect(scoreText([3, 3], [4, 2])).toBe('3–3 (4–2 pens)')
  })

  it('reads every event of the final: scorers with their side, penalties marked, extra time and the shoot-out', async () => {
    const final = (await matchesByKickoff()).at(-1)
    const lines = final?.events.map((t) => eventLine(t.event as MatchEvent, ['Argentina', 'France'])) ?? []
    expect(lines.map((l) => `${l.minute}|${l.text}|${l.marks.join(',')}|${l.score}`)).toEqual([
      "0'|Kick-off||0–0",
      "23'|Lionel Messi — Argentina|pen.|1–0",
      "36'|Ángel Di María — Argentina||2–0",
      expect.stringMatching(/^45\+\d+'\|Half-time\|\|2–0$/),
      "80'|Kylian Mbappé — France|pen.|2–1",
      "81'|Kylian Mbappé — France||2–2",
      expect.stringMatching(/^90\+\d+'\|Full-time\|\|2–2$/),
      "90'|Extra time||2–2",
      "108'|Lionel Messi — Argentina||3–2",
      "118'|Kylian Mbappé — France|pen.|3–3",
      expect.stringMatching(/^120(\+\d+)?'\|End of extra time\|\|3–3$/),
      '|Penalty shoot-out: 4–2||3–3 (4–2 pens)',
      '|Final whistle, after extra time||3–3 (4–2 pens)'
    ])
    expect(eventLine(event({ owngoal: true, team: 2, scorer: 'X' }), ['A', 'B'])).toMatchObject({ text: 'X — B', marks: ['o.g.'] })
  })
})

/** A statistics document at `ts` with these counters (the rest fixed). */
function doc (ts: number, c: { connects?: number, received?: number, sent?: number, refused?: number, timed?: [number, number] } = {}): StatsDoc {
  return {
    id: 'n1',
    ts,
    uptimeSeconds: 10,
    clients: { connected: 3, transport: { ws: 2, mqtt: 1 }, role: { viewer: 2, publisher: 1 }, connects: c.connects ?? 0 },
    connections: { refused: { rate: c.refused ?? 0 }, shed: 0 },
    connect: { refused: { 'bad-credentials': 1 } },
    messages: { received: c.received ?? 0, sent: c.sent ?? 0 },
    store: { kind: 'redis', reachable: true },
    eventLoop: { delayP99Seconds: 0.012, delayMaxSeconds: 0.03 },
    memory: { heapUsedBytes: 50 * 1048576, rssBytes: 120 * 1048576 },
    latency: { publishToDelivery: { count: c.timed?.[0] ?? 0, meanSeconds: c.timed?.[1] ?? 0, p99Seconds: 0.005 } }
  }
}

describe('the operations page\'s figures', () => {
  it('takes per-second rates between two documents, the latency of the messages timed in between, nothing across a restart', () => {
    const first = pointOf(doc(1000), undefined)
    expect(first).toMatchObject({ clients: 3, viewers: 2, publishers: 1, operators: 0, joinsPerSec: null, outPerSec: null, latencyMs: null, lagP99Ms: 12, heapMB: 50, rssMB: 120, redis: true })
    const second = pointOf(doc(3000, { connects: 10, received: 4, sent: 400, refused: 6, timed: [4, 0.002] }), doc(1000, { timed: [0, 0] }))
    expect(second).toMatchObject({ joinsPerSec: 5, inPerSec: 2, outPerSec: 200, refusalsPerSec: 3 })
    expect(second.latencyMs).toBeCloseTo(2)
    // 2 messages timed at 1 ms on top of 2 at 3 ms: the interval's mean is 1 ms.
    expect(pointOf(doc(2000, { timed: [4, 0.002] }), doc(1000, { timed: [2, 0.003] })).latencyMs).toBeCloseTo(1)
    // The node restarted under the same id: its counters went down.
    expect(pointOf(doc(2000, { sent: 5 }), doc(1000, { sent: 500 })).outPerSec).toBeNull()
  })

  it('keeps a node\'s points for the window, ignores a document not newer than the last, and says when it went silent', () => {
    const series = new NodeSeries('n1', 10_000)
    expect(series.add(doc(1000), 1000)).not.toBeNull()
    expect(series.add(doc(1000), 1100)).toBeNull()
    for (let t = 2000; t <= 20_000; t += 1000) series.add(doc(t, { sent: t }), t)
    expect(series.points.map((p) => p.ts)).toEqual(Array.from({ length: 11 }, (_v, i) => 10_000 + i * 1000))
    expect(series.latest?.outPerSec).toBe(1000)
    expect(series.intervalMs).toBe(1000)
    expect(series.fresh(20_000 + 15_000)).toBe(true)
    expect(series.fresh(20_000 + 15_001)).toBe(false)
    expect(parseStats({ id: 'x' })).toBeNull()
    expect(parseStats(doc(1))).not.toBeNull()
  })
})

describe('where the pages connect', () => {
  const at = (href: string): Location => new URL(href) as unknown as Location
  const doc = { querySelector: () => ({ content: '/live' }) } as unknown as Document

  it('connects to the host that served the page, at the WebSocket path it was told, without ?broker=', () => {
    expect(brokerUrls(at('http://scores.example:8080/'), doc)).toEqual(['ws://scores.example:8080/live'])
    expect(brokerUrls(at('https://scores.example/ops'), doc)).toEqual(['wss://scores.example/live'])
    expect(brokerUrls(at('http://scores.example/?broker=,,,'), doc)).toEqual(['ws://scores.example/live'])
  })

  it('takes ?broker= URLs on the page\'s own host (other ports: the nodes of a cluster) and refuses any other host, which would get the credentials', () => {
    expect(brokerUrls(at('http://127.0.0.1:8080/?broker=ws://127.0.0.1:8080/mqtt,ws://127.0.0.1:8081/mqtt'), doc))
      .toEqual(['ws://127.0.0.1:8080/mqtt', 'ws://127.0.0.1:8081/mqtt'])
    expect(() => brokerUrls(at('http://127.0.0.1:8080/ops?broker=ws://127.0.0.2:19500/mqtt'), doc))
      .toThrow("?broker=: ws://127.0.0.2:19500/mqtt is not on this page's host (127.0.0.1)")
    expect(() => brokerUrls(at('http://scores.example/?broker=wss://scores.example.evil.test/mqtt'), doc)).toThrow('is not on this page\'s host')
    expect(() => brokerUrls(at('http://scores.example/?broker=ws://x%22%3E%3Cb'), doc)).toThrow('is not a ws:// or wss:// URL')
    expect(() => brokerUrls(at('http://scores.example/?broker=javascript:alert(1)'), doc)).toThrow('is not a ws:// or wss:// URL')
  })
})
