/**
 * The World Cup reader, the match clock and the merged timeline, on the real openfootball files and on
 * small hand-written inputs. No broker needed.
 */
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { MatchEvent } from '../../publisher/src/replay/model.js'
import { parseKickoff } from '../../publisher/src/replay/kickoff.js'
import { matchId, slugify } from '../../publisher/src/replay/slug.js'
import { buildTimeline, replayDurationMs, wallDelayMs } from '../../publisher/src/replay/timeline.js'
import {
  parseWorldCup, parseWorldCupText, readWorldCupFile, WorldCupFormatError, type ReplayMatch, type WorldCup
} from '../../publisher/src/replay/worldcup.js'

const FILE_2022 = fileURLToPath(new URL('../../publisher/data/worldcup-2022.json', import.meta.url))
const FILE_2026 = fileURLToPath(new URL('./fixtures/worldcup-2026.json', import.meta.url))

/** A minimal valid match, to be tweaked by each test. */
function match (over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    round: 'Matchday 5',
    date: '2022-11-24',
    time: '19:00',
    team1: 'Brazil',
    team2: 'Serbia',
    score: { ft: [2, 0], ht: [0, 0] },
    goals1: [{ name: 'Richarlison', minute: 62 }, { name: 'Richarlison', minute: 73 }],
    goals2: [],
    ...over
  }
}

const oneMatch = (over: Record<string, unknown> = {}): WorldCup => parseWorldCup({ name: 't', matches: [match(over)] })

/** The error message parseWorldCup gives, or '' when it accepts the input. */
function rejection (input: unknown): string {
  try {
    parseWorldCup(input)
    return ''
  } catch (err) {
    expect(err).toBeInstanceOf(WorldCupFormatError)
    return (err as Error).message
  }
}

const types = (m: ReplayMatch): string[] => m.events.map((e) => e.event.type)

describe.each([
  ['2022', FILE_2022, 64],
  ['2026', FILE_2026, 104]
])('real file worldcup-%s.json', (_year, file, count) => {
  it(`has ${count} matches, each a consistent event list`, async () => {
    const wc = await readWorldCupFile(file)
    expect(wc.matches).toHaveLength(count)
    const ids = new Set<string>()
    for (const m of wc.matches) {
      const label = `${m.index} ${m.id}`
      expect(ids.has(m.id), label).toBe(false)
      ids.add(m.id)
      expect(m.id, label).toMatch(/^\d{4}-\d{2}-\d{2}-[a-z0-9]+(-[a-z0-9]+)*$/)
      const events = m.events.map((e) => e.event)
      const final = m.score.et ?? m.score.ft

      expect(events[0], label).toEqual({ type: 'kickoff', id: 'kickoff', minute: 0, score: [0, 0] })
      const end = events[events.length - 1]
      expect(end.type, label).toBe('end')
      expect(end.score, label).toEqual(final)
      if (m.score.p !== undefined) expect(end.type === 'end' && end.penalties, label).toEqual(m.score.p)
      else expect(end, label).not.toHaveProperty('penalties')
      expect(m.final).toEqual(final)

      // Clock never goes backwards; ids unique; every event has the contract fields.
      const eventIds = new Set<string>()
      for (let i = 0; i < m.events.length; i++) {
        if (i > 0) expect(m.events[i].clock, label).toBeGreaterThanOrEqual(m.events[i - 1].clock)
        const e = m.events[i].event
        expect(eventIds.has(e.id), `${label} ${e.id}`).toBe(false)
        eventIds.add(e.id)
        expect(typeof e.minute).toBe('number')
        expect(e.score).toHaveLength(2)
      }
      expect(m.duration).toBe(m.events[m.events.length - 1].clock)

      // Running score: each goal adds one to its side, other events keep the score.
      let score = [0, 0]
      let goals = 0
      for (const e of events) {
        if (e.type === 'goal') {
          goals++
          expect(e.id).toBe(`goal-${goals}`)
          score = e.team === 1 ? [score[0] + 1, score[1]] : [score[0], score[1] + 1]
          expect(e.scorer.length).toBeGreaterThan(0)
        }
        expect(e.score, `${label} ${e.id}`).toEqual(score)
      }
      expect(goals).toBe(final[0] + final[1])

      // Phase events in order, present exactly when played.
      const phases = types(m).filter((t) => t !== 'goal')
      const expected = ['kickoff', 'halftime', 'fulltime']
      if (m.score.et !== undefined) expected.push('extratime', 'extratime_end')
      if (m.score.p !== undefined) expected.push('shootout')
      expected.push('end')
      expect(phases, label).toEqual(expected)
      const fulltime = events.find((e) => e.type === 'fulltime')
      expect(fulltime?.score, label).toEqual(m.score.ft)
      if (m.score.p !== undefined) {
        const shootout = events.find((e) => e.type === 'shootout')
        expect(shootout?.type === 'shootout' && shootout.penalties).toEqual(m.score.p)
      }
    }
  })
})

describe('real file quirks', () => {
  it('puts goals in true time order, with stoppage goals before the whistle', async () => {
    const wc22 = await readWorldCupFile(FILE_2022)
    const wc26 = await readWorldCupFile(FILE_2026)
    const byId = (wc: WorldCup, id: string): ReplayMatch => {
      const m = wc.matches.find((x) => x.id === id)
      if (m === undefined) throw new Error(`no match ${id}`)
      return m
    }
    const summary = (m: ReplayMatch): string[] => m.events.map(({ event: e }) =>
      e.type === 'goal' ? `${e.minute}${e.offset !== undefined ? `+${e.offset}` : ''}:${e.score.join('-')}` : e.type)

    // The final: goals1 is listed [23, 108, 36].
    expect(summary(byId(wc22, '2022-12-18-argentina-france'))).toEqual([
      'kickoff', '23:1-0', '36:2-0', 'halftime', '80:2-1', '81:2-2', 'fulltime',
      'extratime', '108:3-2', '118:3-3', 'extratime_end', 'shootout', 'end'
    ])
    // 90+11 (number + offset) goes before extra time; 105+1 before 117.
    expect(summary(byId(wc22, '2022-12-09-netherlands-argentina')).slice(4, 7)).toEqual(['83:1-2', '90+11:2-2', 'fulltime'])
    expect(summary(byId(wc22, '2022-12-09-croatia-brazil'))).toContain('105+1:0-1')
    // "45+2" (string) goes before halftime; "93" with extra time played is an extra-time goal.
    expect(summary(byId(wc26, '2026-07-11-norway-england'))).toEqual([
      'kickoff', '36:1-0', '45+2:1-1', 'halftime', 'fulltime', 'extratime', '93:1-2', 'extratime_end', 'end'
    ])
    // goals1 listed ['6', '38', '45+5', '88', '47', '68', '78'], Curaçao scored at 21.
    const germany = byId(wc26, '2026-06-14-germany-curacao')
    expect(summary(germany).filter((s) => /^\d/.test(s)).map((s) => s.split(':')[0])).toEqual(['6', '21', '38', '45+5', '47', '68', '78', '88'])
    expect(types(germany).indexOf('halftime')).toBe(5)
  })

  it('keeps own goals on the side they counted for', async () => {
    const wc = await readWorldCupFile(FILE_2026)
    const m = wc.matches.find((x) => x.team1 === 'Australia' && x.team2 === 'Egypt')
    const og = m?.events.map((e) => e.event).find((e): e is Extract<MatchEvent, { type: 'goal' }> => e.type === 'goal' && e.owngoal === true)
    expect(og).toMatchObject({ team: 1, scorer: 'Mohamed Hany', minute: 55, owngoal: true, score: [1, 1] })
  })

  it('reads kickoff times: no suffix as UTC, "UTC-6" shifted', async () => {
    const wc22 = await readWorldCupFile(FILE_2022)
    const wc26 = await readWorldCupFile(FILE_2026)
    expect(new Date(wc22.matches[0].kickoff).toISOString()).toBe('2022-11-20T19:00:00.000Z')
    expect(wc26.matches[0].time).toBe('13:00 UTC-6')
    expect(new Date(wc26.matches[0].kickoff).toISOString()).toBe('2026-06-11T19:00:00.000Z')
    expect(wc26.matches[0].utcOffsetMinutes).toBe(-360)
    // 20:00 UTC-6 on the 11th is 02:00 UTC on the 12th; the id keeps the local date.
    expect(new Date(wc26.matches[1].kickoff).toISOString()).toBe('2026-06-12T02:00:00.000Z')
    expect(wc26.matches[1].id).toBe('2026-06-11-south-korea-czech-republic')
  })
})

describe('match ids', () => {
  it('follows the contract slug rule', async () => {
    const wc = await readWorldCupFile(FILE_2022)
    const wc26 = await readWorldCupFile(FILE_2026)
    expect(wc.matches.map((m) => m.id)).toContain('2022-12-18-argentina-france')
    expect(wc26.matches.map((m) => m.id)).toContain('2026-06-24-bosnia-herzegovina-qatar')
    expect(wc26.matches.map((m) => m.id)).toContain('2026-06-20-ecuador-curacao')
    expect(matchId('2026-06-14', "Côte d'Ivoire", 'Bosnia & Herzegovina')).toBe('2026-06-14-cote-d-ivoire-bosnia-herzegovina')
    expect(slugify('  São Tomé and Príncipe ')).toBe('sao-tome-and-principe')
    expect(slugify('Türkiye -- (A)')).toBe('turkiye-a')
    expect(oneMatch({ team1: 'Curaçao', team2: "Côte d'Ivoire", score: { ft: [0, 0] }, goals1: [] }).matches[0].id)
      .toBe('2022-11-24-curacao-cote-d-ivoire')
  })
})

describe('kickoff parsing', () => {
  it('handles offsets and rejects bad values', () => {
    expect(parseKickoff('2022-11-20', '19:00')).toEqual({ ms: Date.UTC(2022, 10, 20, 19), utcOffsetMinutes: 0 })
    expect(parseKickoff('2026-06-11', '13:00 UTC-6')).toEqual({ ms: Date.UTC(2026, 5, 11, 19), utcOffsetMinutes: -360 })
    expect(parseKickoff('2026-06-11', '21:00 UTC+5:30')).toEqual({ ms: Date.UTC(2026, 5, 11, 15, 30), utcOffsetMinutes: 330 })
    expect(parseKickoff('2026-06-11', '18:00 UTC')).toEqual({ ms: Date.UTC(2026, 5, 11, 18), utcOffsetMinutes: 0 })
    expect(parseKickoff('2026-06-11', undefined)).toEqual({ ms: Date.UTC(2026, 5, 11, 12), utcOffsetMinutes: 0 })
    expect(parseKickoff('2026-02-30', '12:00')).toBe('date')
    expect(parseKickoff('2026-06-11', '7pm')).toBe('time')
    expect(parseKickoff('2026-06-11', '24:00')).toBe('time')
  })
})

describe('accepted variants', () => {
  it('treats "90+4", 90 with offset 4 and 94 (no extra time) alike in time', () => {
    const at = (goal: Record<string, unknown>): number => {
      const m = oneMatch({ score: { ft: [1, 0] }, goals1: [goal] }).matches[0]
      return m.events.find((e) => e.event.type === 'goal')?.clock ?? -1
    }
    const a = at({ name: 'X', minute: '90+4' })
    expect(at({ name: 'X', minute: 90, offset: 4 })).toBe(a)
    expect(at({ name: 'X', minute: 94 })).toBe(a)
    expect(at({ name: 'X', minute: '90' })).toBe(a - 4)
    const m = oneMatch({ score: { ft: [1, 0] }, goals1: [{ name: 'X', minute: '90+4' }] }).matches[0]
    expect(m.events.find((e) => e.event.type === 'goal')?.event).toMatchObject({ minute: 90, offset: 4 })
  })

  it('accepts missing goal lists for 0-0, only ft, and p after ft without extra time', () => {
    const m = oneMatch({ score: { ft: [0, 0] }, goals1: undefined, goals2: undefined }).matches[0]
    expect(types(m)).toEqual(['kickoff', 'halftime', 'fulltime', 'end'])
    const p = oneMatch({ score: { ft: [0, 0], p: [5, 4] }, goals1: [] }).matches[0]
    expect(types(p)).toEqual(['kickoff', 'halftime', 'fulltime', 'shootout', 'end'])
    expect(p.penalties).toEqual([5, 4])
  })

  it('uses the documented clock model', () => {
    const m = oneMatch({
      score: { ft: [1, 1], et: [2, 1], p: undefined },
      goals1: [{ name: 'A', minute: '45+3' }, { name: 'C', minute: 120, offset: 2 }],
      goals2: [{ name: 'B', minute: 46 }]
    }).matches[0]
    const clock = Object.fromEntries(m.events.map((e) => [e.event.id, e.clock]))
    // First half 45 + 3 stoppage, 15 break, second half from 63, 45 + 4 (default) stoppage, 5 break,
    // extra time 15 + 1 (default), 1 break, 15 + 2.
    expect(clock).toEqual({
      kickoff: 0, 'goal-1': 48, halftime: 48, 'goal-2': 64, fulltime: 112, extratime: 117,
      'goal-3': 117 + 16 + 1 + 17, extratime_end: 151, end: 151
    })
    const ht = m.events.find((e) => e.event.type === 'halftime')?.event
    expect(ht).toMatchObject({ minute: 45, offset: 3, score: [1, 0] })
  })
})

describe('malformed input', () => {
  it('names the match and field for a bad minute', () => {
    const msg = rejection({ matches: [match({ goals1: [{ name: 'Richarlison', minute: 'abc' }, { name: 'R', minute: 73 }] })] })
    expect(msg).toBe('match 0 (2022-11-24 Brazil v Serbia): goals1[0].minute: expected a number or "90+4"-style string, got "abc"')
    expect(rejection({ matches: [match(), match({ date: '2022-11-25', goals2: [{ name: 'X', minute: -3 }] })] }))
      .toMatch(/^match 1 \(2022-11-25 Brazil v Serbia\): goals2\[0\]\.minute: .* got -3$/)
    expect(rejection({ matches: [match({ goals1: [{ name: 'R', minute: 30, offset: 2 }, { name: 'R', minute: 73 }] })] }))
      .toMatch(/^match 0 \(.*\): goals1\[0\]\.offset: stoppage time only follows minute 45, 90 .* got 30\+2$/)
    expect(rejection({ matches: [match({ goals1: [{ name: 'R', minute: '90+2', offset: 3 }, { name: 'R', minute: 73 }] })] }))
      .toContain('goals1[0].offset')
  })

  it('names the match and field for a missing team1', () => {
    const m = match()
    delete m.team1
    expect(rejection({ matches: [match(), m] })).toBe('match 1 (2022-11-24 ? v Serbia): team1: expected a team name, got nothing')
    expect(rejection({ matches: [match({ team2: 7 })] })).toBe('match 0 (2022-11-24 Brazil v ?): team2: expected a team name, got 7')
  })

  it('refuses goals that do not add up to the final score', () => {
    expect(rejection({ matches: [match({ score: { ft: [3, 0] } })] }))
      .toBe('match 0 (2022-11-24 Brazil v Serbia): goals1/goals2: the goals add up to 2-0 but score.ft is 3-0')
    expect(rejection({ matches: [match({ score: { ft: [1, 1], et: [2, 1] }, goals2: [{ name: 'X', minute: 10 }] })] }))
      .toBe('match 0 (2022-11-24 Brazil v Serbia): goals1/goals2: the goals up to full time add up to 2-1 but score.ft is 1-1')
    expect(rejection({ matches: [match({ score: { ft: [1, 1], et: [3, 1] }, goals2: [{ name: 'X', minute: 100 }] })] }))
      .toBe('match 0 (2022-11-24 Brazil v Serbia): goals1/goals2: the goals add up to 2-1 but score.et is 3-1')
  })

  it('refuses inconsistent score sheets, bad dates and times, duplicate matches', () => {
    expect(rejection({ matches: [match({ score: { ft: [2, 0], et: [2, 0] } })] })).toContain('score.et: extra time needs a level score')
    expect(rejection({ matches: [match({ score: { ft: [2, 0], p: [4, 3] } })] })).toContain('score.p: a shoot-out needs a level score')
    expect(rejection({ matches: [match({ score: { ft: [2, 'x'] } })] })).toBe('match 0 (2022-11-24 Brazil v Serbia): score.ft[1]: expected a whole number >= 0, got "x"')
    expect(rejection({ matches: [match({ score: undefined })] })).toContain('match 0 (2022-11-24 Brazil v Serbia): score: ')
    expect(rejection({ matches: [match({ date: '2022-13-01' })] })).toBe('match 0 (2022-13-01 Brazil v Serbia): date: expected a date YYYY-MM-DD, got "2022-13-01"')
    expect(rejection({ matches: [match({ time: '7pm' })] })).toContain('match 0 (2022-11-24 Brazil v Serbia): time: expected "HH:MM"')
    expect(rejection({ matches: [match(), match()] })).toContain('match 1 (2022-11-24 Brazil v Serbia): date/team1/team2: id "2022-11-24-brazil-serbia" is already used by match 0')
    expect(rejection({ matches: [match({ goals1: 'none' })] })).toContain('goals1: expected a list of goals, got "none"')
    expect(rejection({ matches: [42] })).toBe('match 0: (match): expected a match object, got 42')
  })

  it('refuses text that is not JSON and JSON that is not a tournament', () => {
    expect(() => parseWorldCupText('{"matches": [')).toThrow(/^not valid JSON: /)
    expect(() => parseWorldCupText('[]')).toThrow(WorldCupFormatError)
    expect(rejection({ name: 'x' })).toBe('matches: expected a list of matches, got nothing')
  })
})

describe('timeline', () => {
  const day = (date: string, time: string, team1: string, team2: string, score: Record<string, unknown> = { ft: [0, 0] }): Record<string, unknown> =>
    ({ date, time, team1, team2, score })

  it('overlaps matches as in real life and skips idle gaps', () => {
    const wc = parseWorldCup({
      matches: [
        day('2022-11-21', '13:00', 'C', 'D'), // next day: after an idle gap
        day('2022-11-20', '16:00', 'A', 'B'),
        day('2022-11-20', '17:00', 'E', 'F') // kicks off while A v B is live
      ]
    })
    const t = buildTimeline(wc.matches)
    const dur = wc.matches[0].duration // 0-0 without extra time: 111 minutes
    expect(dur).toBe(111)
    expect(t.start).toBe(Date.UTC(2022, 10, 20, 16))
    const kickoffs = t.entries.filter((e) => e.event.type === 'kickoff').map((e) => [e.match.team1, e.playMinutes])
    expect(kickoffs).toEqual([['A', 0], ['E', 60], ['C', 60 + dur]])
    expect(t.gaps).toEqual([{ from: Date.UTC(2022, 10, 20, 17) + dur * 60_000, to: Date.UTC(2022, 10, 21, 13) }])
    // A's halftime (47) comes before E's kickoff (60); E's kickoff before A's fulltime (111).
    const order = t.entries.map((e) => `${e.match.team1}:${e.event.type}`)
    expect(order.indexOf('A:halftime')).toBeLessThan(order.indexOf('E:kickoff'))
    expect(order.indexOf('E:kickoff')).toBeLessThan(order.indexOf('A:fulltime'))
    for (let i = 1; i < t.entries.length; i++) {
      expect(t.entries[i].playMinutes).toBeGreaterThanOrEqual(t.entries[i - 1].playMinutes)
      expect(t.entries[i].at).toBeGreaterThanOrEqual(t.entries[i - 1].at)
    }
    expect(t.playMinutes).toBe(60 + dur + dur)
  })

  it('keeps per-match order and file order for simultaneous kickoffs', () => {
    const wc = parseWorldCup({ matches: [day('2022-11-29', '18:00', 'X', 'Y'), day('2022-11-29', '18:00', 'P', 'Q')] })
    const t = buildTimeline(wc.matches)
    expect(t.entries.slice(0, 4).map((e) => `${e.match.team1}:${e.event.type}`)).toEqual(['X:kickoff', 'P:kickoff', 'X:halftime', 'P:halftime'])
    expect(t.gaps).toEqual([])
  })

  it('converts play minutes to wall time by speed', () => {
    expect(wallDelayMs(90, 1)).toBe(90_000)
    expect(wallDelayMs(90, 60)).toBe(1500)
    expect(wallDelayMs(90, 1 / 60)).toBeCloseTo(90 * 60_000)
    expect(wallDelayMs(90, 0)).toBe(0)
    expect(() => wallDelayMs(1, -1)).toThrow(RangeError)
    expect(() => wallDelayMs(1, Number.NaN)).toThrow(RangeError)
  })

  it('merges a real tournament in time order, shorter than the calendar', async () => {
    const wc = await readWorldCupFile(FILE_2022)
    const t = buildTimeline(wc.matches)
    expect(t.entries).toHaveLength(wc.matches.reduce((n, m) => n + m.events.length, 0))
    for (let i = 1; i < t.entries.length; i++) {
      expect(t.entries[i].at).toBeGreaterThanOrEqual(t.entries[i - 1].at)
    }
    // Per match, the merged order is the match's own order.
    for (const m of wc.matches) {
      expect(t.entries.filter((e) => e.match === m).map((e) => e.event.id)).toEqual(m.events.map((e) => e.event.id))
    }
    const lastEnd = Math.max(...wc.matches.map((m) => m.kickoff + m.duration * 60_000))
    const calendarMinutes = (lastEnd - t.start) / 60_000
    expect(t.playMinutes).toBeLessThan(calendarMinutes / 5)
    expect(t.playMinutes).toBeLessThanOrEqual(wc.matches.reduce((n, m) => n + m.duration, 0))
    expect(t.gaps.length).toBeGreaterThan(10)
    expect(replayDurationMs(t, 10)).toBe(t.playMinutes * 100)
  })
})
