/**
 * Shapes shared by the replay modules and published on the wire, following the README's contract section
 * ("Match state" and "Events"). Events are the `data` the broker wraps in its feed envelope.
 */

/** A score or shoot-out result as `[team1, team2]`, non-negative integers. */
export type Score = [number, number]

/** Fields every event carries: a per-match unique deterministic `id`, the match `minute`, stoppage `offset`, running `score`. */
export interface EventBase {
  /** Unique within the match and deterministic ("kickoff", "goal-3", "end"): the broker de-duplicates resends by it. */
  id: string
  /** Match minute (0 at kickoff, 45 at half time, 90 at full time, 120 at the end of extra time). */
  minute: number
  /** Stoppage minutes played on top of `minute` ("90+4" is minute 90, offset 4); absent when none. */
  offset?: number
  /** Score `[team1, team2]` after this event. */
  score: Score
}

/** The match starts (minute 0, score [0, 0]). */
export interface KickoffEvent extends EventBase { type: 'kickoff' }
/** A goal; `team` is the side it counted for (own goals too), `scorer` the player as written in the data file. */
export interface GoalEvent extends EventBase {
  type: 'goal'
  team: 1 | 2
  scorer: string
  penalty?: true
  owngoal?: true
}
/** End of the first half (minute 45, offset = first-half stoppage). */
export interface HalftimeEvent extends EventBase { type: 'halftime' }
/** End of regular time (minute 90, offset = second-half stoppage). */
export interface FulltimeEvent extends EventBase { type: 'fulltime' }
/** Start of extra time (minute 90). */
export interface ExtratimeEvent extends EventBase { type: 'extratime' }
/** End of extra time (minute 120, offset = stoppage of its second half). */
export interface ExtratimeEndEvent extends EventBase { type: 'extratime_end' }
/** Result of the penalty shoot-out (sent once it is decided). */
export interface ShootoutEvent extends EventBase { type: 'shootout', penalties: Score }
/** Always the last event: final score (`et` if played, else `ft`) and the shoot-out result when there was one. */
export interface EndEvent extends EventBase { type: 'end', penalties?: Score }

/** Any event of a match feed (`matches/<id>/events`). */
export type MatchEvent =
  | KickoffEvent | GoalEvent | HalftimeEvent | FulltimeEvent | ExtratimeEvent
  | ExtratimeEndEvent | ShootoutEvent | EndEvent

/** The `type` values of {@link MatchEvent}, in the order they can occur. */
export const EVENT_TYPES = ['kickoff', 'goal', 'halftime', 'fulltime', 'extratime', 'extratime_end', 'shootout', 'end'] as const

/** An event with its match-clock time: minutes of real time since kickoff (see clock.ts for the model). */
export interface TimedEvent {
  /** Minutes since kickoff, including stoppage time and breaks; non-decreasing along a match. */
  clock: number
  event: MatchEvent
}

/** Status of a match in its retained state. */
export type MatchStatus = 'scheduled' | 'live' | 'finished'

/** The retained `matches/<id>/state` payload (contract fields plus descriptive extras). */
export interface MatchState {
  id: string
  team1: string
  team2: string
  /** Local date as given in the data file, `YYYY-MM-DD`. */
  date: string
  /** Real kickoff instant, ISO 8601 UTC (e.g. "2022-12-18T18:00:00.000Z"). */
  kickoff: string
  round?: string
  group?: string
  ground?: string
  status: MatchStatus
  /** Running score; when finished, `et` if played else `ft`. */
  score: Score
  /** Shoot-out result, only when one was played (set from the `shootout` event on). */
  penalties?: Score
}
