/**
 * Merges all matches of a tournament into one replay schedule.
 *
 * Each event happens in simulated real time at `kickoff + clock` (the match's real kickoff instant plus its
 * match-clock minutes, see clock.ts), so matches overlap as they did in real life. Idle gaps, where no match
 * is live (between the end of the last running match and the next kickoff, e.g. overnight), are skipped: the
 * replay jumps straight to the next kickoff. The replay starts at the first kickoff.
 *
 * "Play time" is simulated time with the idle gaps removed, in match-minutes from the start of the replay.
 * At `--speed F` the replay plays F match-minutes per second of wall time, so an event is due at
 * `playMinutes / F` seconds after the start (F = 1/60 is real time; F = 1 plays a 90-minute half-and-half in
 * about 2 minutes). F = 0 means no waiting at all: events go out as fast as acknowledgements allow, in order.
 */
import type { MatchEvent } from './model.js'
import type { ReplayMatch } from './worldcup.js'

/** One event of the merged schedule. */
export interface TimelineEntry {
  match: ReplayMatch
  event: MatchEvent
  /** Match-clock time, minutes since the match's kickoff. */
  clock: number
  /** Simulated real instant of the event, ms since 1970 UTC (kickoff + clock). */
  at: number
  /** Minutes since the start of the replay with idle gaps removed; non-decreasing along the timeline. */
  playMinutes: number
}

/** An idle gap the replay skips, simulated instants in ms since 1970 UTC. */
export interface SkippedGap {
  from: number
  to: number
}

/** The merged schedule. */
export interface Timeline {
  /** All events of all matches, ordered by `playMinutes` (ties: earlier kickoff, then file order, then match order). */
  entries: TimelineEntry[]
  /** First kickoff, ms since 1970 UTC (NaN when there are no matches). */
  start: number
  /** Play time of the last event, minutes. */
  playMinutes: number
  /** Idle gaps skipped, in time order. */
  gaps: SkippedGap[]
}

const MINUTE_MS = 60_000

/**
 * Builds the merged schedule (see the module comment for the time model).
 * @param matches validated matches (any order); each needs `kickoff`, `events` and `duration`
 */
export function buildTimeline (matches: readonly ReplayMatch[]): Timeline {
  const byKickoff = [...matches].sort((a, b) => a.kickoff - b.kickoff || a.index - b.index)
  const entries: TimelineEntry[] = []
  const gaps: SkippedGap[] = []
  const start = byKickoff.length > 0 ? byKickoff[0].kickoff : NaN
  let skipped = 0
  let liveUntil = start
  byKickoff.forEach((match) => {
    if (match.kickoff > liveUntil) {
      gaps.push({ from: liveUntil, to: match.kickoff })
      skipped += match.kickoff - liveUntil
    }
    liveUntil = Math.max(liveUntil, match.kickoff + match.duration * MINUTE_MS)
    const playStart = (match.kickoff - start - skipped) / MINUTE_MS
    for (const { clock, event } of match.events) {
      entries.push({ match, event, clock, at: match.kickoff + clock * MINUTE_MS, playMinutes: playStart + clock })
    }
  })
  // Stable sort: entries were pushed in kickoff order and, per match, in event order.
  entries.sort((a, b) => a.playMinutes - b.playMinutes)
  const playMinutes = entries.length > 0 ? entries[entries.length - 1].playMinutes : 0
  return { entries, start, playMinutes, gaps }
}

/**
 * Wall-clock delay from the start of the replay until an event is due.
 * @param playMinutes the entry's {@link TimelineEntry.playMinutes}
 * @param speed match-minutes per wall second, >= 0; 0 means "no waiting" and returns 0
 * @returns milliseconds
 * @throws RangeError for a negative or non-finite speed
 */
export function wallDelayMs (playMinutes: number, speed: number): number {
  if (!Number.isFinite(speed) || speed < 0) throw new RangeError(`speed must be a finite number >= 0, got ${speed}`)
  if (speed === 0) return 0
  return (playMinutes / speed) * 1000
}

/**
 * Total wall time a replay takes at a given speed, ignoring publish latency.
 * @param speed match-minutes per wall second, >= 0
 * @returns milliseconds (0 at speed 0)
 */
export function replayDurationMs (timeline: Timeline, speed: number): number {
  return wallDelayMs(timeline.playMinutes, speed)
}
