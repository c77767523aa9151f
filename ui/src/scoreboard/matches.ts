// The scoreboard's model of the tournament, pure functions: the retained `matches/<id>/state` payloads (README, "The
// contract: topics and payloads") grouped by day, and each match's status line (scheduled time, phase and minute
// while live, final result) from its state and its latest feed event.

// The retained state's shape is the publisher's (the contract); type only, nothing of the publisher is bundled.
import type { MatchState } from '../../../publisher/src/replay/model.js'
export type { MatchState }

/** A match event: the `data` of a feed envelope (README "Match events"). */
export interface MatchEvent {
  type: 'kickoff' | 'goal' | 'halftime' | 'fulltime' | 'extratime' | 'extratime_end' | 'shootout' | 'end'
  id: string
  minute: number
  /** Stoppage minutes on top of `minute`. */
  offset?: number
  score: [number, number]
  /** Goals: the side it counted for (own goals too), the player, penalty and own goal marks. */
  team?: 1 | 2
  scorer?: string
  penalty?: boolean
  owngoal?: boolean
  /** Shoot-out and end: the shoot-out result. */
  penalties?: [number, number]
}

/** One day of the tournament: its matches in kickoff order and the rounds they belong to. */
export interface MatchDay {
  /** `YYYY-MM-DD`. */
  date: string
  /** Distinct rounds of the day, in kickoff order ("Matchday 1", "Final"). */
  rounds: string[]
  matches: MatchState[]
}

/**
 * Reads a state payload; null when it is not a match state (a cleared retained message is null, a foreign payload
 * anything else), so one bad message cannot break the page.
 */
export function parseMatchState (payload: unknown): MatchState | null {
  if (payload === null || typeof payload !== 'object') return null
  const s = payload as Partial<MatchState>
  const score = s.score
  if (typeof s.id !== 'string' || typeof s.team1 !== 'string' || typeof s.team2 !== 'string' || typeof s.date !== 'string') return null
  if (s.status !== 'scheduled' && s.status !== 'live' && s.status !== 'finished') return null
  if (!Array.isArray(score) || score.length !== 2 || !score.every((n) => typeof n === 'number')) return null
  return s as MatchState
}

/** Reads an envelope's `data` as a match event; null for anything else. */
export function parseMatchEvent (data: unknown): MatchEvent | null {
  if (data === null || typeof data !== 'object') return null
  const e = data as Partial<MatchEvent>
  if (typeof e.type !== 'string' || typeof e.minute !== 'number' || !Array.isArray(e.score)) return null
  return e as MatchEvent
}

/** Matches grouped by day, days in date order, matches of a day by kickoff then id. */
export function groupByDay (matches: Iterable<MatchState>): MatchDay[] {
  const days = new Map<string, MatchState[]>()
  for (const m of matches) {
    const list = days.get(m.date) ?? []
    list.push(m)
    days.set(m.date, list)
  }
  return [...days.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([date, list]) => {
    list.sort((a, b) => a.kickoff.localeCompare(b.kickoff) || a.id.localeCompare(b.id))
    const rounds = [...new Set(list.map((m) => m.round).filter((r): r is string => r !== undefined))]
    return { date, rounds, matches: list }
  })
}

/** "Sun 20 Nov" for `2022-11-20` (the calendar date as given, whatever the viewer's time zone). */
export function dayLabel (date: string): string {
  const d = new Date(`${date}T12:00:00Z`)
  if (Number.isNaN(d.getTime())) return date
  return d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' })
}

/** A match minute as football writes it: `23'`, `45+2'`, `90+4'`. */
export function minuteText (minute: number, offset?: number): string {
  return offset !== undefined && offset > 0 ? `${minute}+${offset}'` : `${minute}'`
}

/** The status line of a match: what to show and a class for its style (`scheduled`, `live`, `break`, `finished`). */
export interface StatusLine {
  text: string
  kind: 'scheduled' | 'live' | 'break' | 'finished'
}

/**
 * The status of a match from its state and, when known, its latest feed event (the state alone carries no minute):
 * scheduled -> the kickoff time; live -> the phase and the minute of the latest event (`1st half 0'`, `1st half 23'`,
 * `HT`, `2nd half 67'`, `FT`, `Extra time`, `ET 108'`, `AET`, `Penalties`); finished -> `FT`, `AET` or `Pens 4–2`.
 * @param timeZone for the kickoff time (default the viewer's own)
 */
export function statusLine (state: MatchState, last: MatchEvent | undefined, timeZone?: string): StatusLine {
  if (state.status === 'scheduled') {
    const t = new Date(state.kickoff)
    const text = Number.isNaN(t.getTime()) ? 'Scheduled' : t.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', ...(timeZone !== undefined ? { timeZone } : {}) })
    return { text, kind: 'scheduled' }
  }
  if (state.status === 'finished') {
    if (state.penalties !== undefined) return { text: `Pens ${state.penalties[0]}–${state.penalties[1]}`, kind: 'finished' }
    return { text: last !== undefined && last.minute > 90 ? 'AET' : 'FT', kind: 'finished' }
  }
  if (last === undefined) return { text: 'Live', kind: 'live' }
  const minute = minuteText(last.minute, last.offset)
  switch (last.type) {
    case 'halftime': return { text: 'HT', kind: 'break' }
    case 'fulltime': return { text: 'FT', kind: 'break' }
    case 'extratime': return { text: 'Extra time', kind: 'live' }
    case 'extratime_end': return { text: 'AET', kind: 'break' }
    case 'shootout': return { text: 'Penalties', kind: 'live' }
    case 'end': return { text: 'FT', kind: 'finished' }
    default: return { text: `${last.minute > 90 ? 'ET' : last.minute > 45 ? '2nd half' : '1st half'} ${minute}`, kind: 'live' }
  }
}

/** "2–1", with the shoot-out when there was one: "3–3 (4–2 pens)". */
export function scoreText (score: readonly number[], penalties?: readonly number[]): string {
  const main = `${score[0]}–${score[1]}`
  return penalties === undefined ? main : `${main} (${penalties[0]}–${penalties[1]} pens)`
}
