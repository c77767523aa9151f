/**
 * The match-clock model: turns a match's goals (minute + stoppage offset) and its score sheet into the
 * ordered event list of the contract (the README's contract section, "Events"), each with a match-clock time in minutes
 * of real time since kickoff, used to schedule the replay.
 *
 * Model (all in minutes since kickoff):
 *   first half         0 .. 45 + s1                      (kickoff at 0, halftime at 45 + s1)
 *   half-time break    15
 *   second half        h2 .. h2 + 45 + s2, h2 = 60 + s1  (fulltime at its end)
 *   break              5, only when extra time follows   (extratime event at its end)
 *   extra time, 1st    15 + s3
 *   extra-time break   1 (no event)
 *   extra time, 2nd    15 + s4                            (extratime_end at its end)
 *   shoot-out          decided 15 minutes after the last period ended (about 5 of break, 10 of kicks)
 *   end                at the same time as the last of fulltime / extratime_end / shootout
 * A goal at minute m (+ offset o) of a period starting at clock c and match minute b is at clock c + (m - b) + o.
 * The stoppage s of a period is the largest stoppage any of its goals shows, but at least the default
 * (2 for the first half, 4 for the second, 1 for each extra-time half): the data only records stoppage
 * when a goal was scored in it, so the replay assumes typical values otherwise.
 * Goals without an offset are assigned by minute: 1-45 first half, 46-90 second half, and when extra time was
 * played 91-105 / 106-120 its halves; without extra time a minute above 90 (e.g. 93) is second-half stoppage,
 * with it a minute above 120 is stoppage of the last extra-time half.
 */
import type { GoalEvent, MatchEvent, Score, TimedEvent } from './model.js'

/** One period of play, in match minutes. */
export interface Period {
  name: string
  /** Match minute at which the period starts (0, 45, 90, 105). */
  from: number
  /** Match minute at which it nominally ends (45, 90, 105, 120); stoppage is written `to+offset`. */
  to: number
  /** Stoppage assumed when no goal shows a longer one, minutes. */
  defaultStoppage: number
  /** Break after the period when play continues, minutes. */
  breakAfter: number
}

/** The four periods; the last two are played only when the score sheet has `et`. */
export const PERIODS: readonly Period[] = [
  { name: 'first half', from: 0, to: 45, defaultStoppage: 2, breakAfter: 15 },
  { name: 'second half', from: 45, to: 90, defaultStoppage: 4, breakAfter: 5 },
  { name: 'first half of extra time', from: 90, to: 105, defaultStoppage: 1, breakAfter: 1 },
  { name: 'second half of extra time', from: 105, to: 120, defaultStoppage: 1, breakAfter: 0 }
]

/** Minutes from the end of play (fulltime or extratime_end) until the shoot-out result. */
export const SHOOTOUT_MINUTES = 15

/** A goal as read from the data file, before scheduling. */
export interface GoalInput {
  /** Side the goal counted for (own goals are listed under that side in the data). */
  team: 1 | 2
  scorer: string
  /** Match minute, integer >= 1. */
  minute: number
  /** Stoppage minutes (only after minute 45, 90, 105 or 120), absent or 0 when none. */
  offset?: number
  penalty?: boolean
  owngoal?: boolean
  /** Where the goal sits in the file, e.g. "goals1[2]", used in error messages. */
  field: string
}

/** Error raised for a goal that does not fit the model; `field` names the goal ("goals2[0].offset"). */
export class ClockError extends Error {
  constructor (readonly field: string, message: string) {
    super(message)
    this.name = 'ClockError'
  }
}

/**
 * Which period a goal belongs to (index into {@link PERIODS}).
 * @param extraTime whether extra time was played (the score sheet has `et`)
 * @throws ClockError when an offset follows a minute that is not the end of a period that was played
 */
export function periodOf (goal: Pick<GoalInput, 'minute' | 'offset' | 'field'>, extraTime: boolean): number {
  const last = extraTime ? 3 : 1
  const { minute } = goal
  if (goal.offset !== undefined && goal.offset > 0) {
    const p = PERIODS.findIndex((period) => period.to === minute)
    if (p < 0 || p > last) {
      const ends = PERIODS.slice(0, last + 1).map((period) => period.to).join(', ')
      throw new ClockError(`${goal.field}.offset`,
        `stoppage time only follows minute ${ends}${extraTime ? '' : ' (no extra time was played)'}, got ${minute}+${goal.offset}`)
    }
    return p
  }
  for (let p = 0; p < last; p++) if (minute <= PERIODS[p].to) return p
  return last
}

/** The result of {@link scheduleMatch}. */
export interface MatchSchedule {
  /** Events in playing order with non-decreasing `clock`. */
  events: TimedEvent[]
  /** Score after regular time (goals of periods 0 and 1). */
  regular: Score
  /** Final score from the goals (after extra time when played). */
  final: Score
  /** Match-clock time of the `end` event, minutes. */
  duration: number
}

/**
 * Builds the ordered, timed event list of one match (see the module comment for the time model).
 * Goals are sorted into true time order (first-half stoppage before halftime, 90+x before extra time);
 * goals at the same instant keep team1 before team2 and then their order in the file.
 * Event ids: "kickoff", "goal-1".."goal-n" in time order, "halftime", "fulltime", "extratime",
 * "extratime_end", "shootout", "end".
 * @param goals all goals of both sides, in any order
 * @param extraTime whether extra time was played
 * @param penalties shoot-out result when one was played
 * @throws ClockError for a goal whose minute/offset fits no played period
 */
export function scheduleMatch (goals: readonly GoalInput[], extraTime: boolean, penalties?: Score): MatchSchedule {
  const periods = extraTime ? 4 : 2
  const placed = goals.map((goal, order) => {
    const period = periodOf(goal, extraTime)
    // Minutes past the period's nominal end (stoppage), from the offset or from a minute like 93.
    const over = Math.max(0, goal.minute + (goal.offset ?? 0) - PERIODS[period].to)
    const into = goal.minute + (goal.offset ?? 0) - PERIODS[period].from
    return { goal, order, period, over, into }
  })
  const stoppage = PERIODS.slice(0, periods).map((period, p) =>
    Math.max(period.defaultStoppage, ...placed.filter((g) => g.period === p).map((g) => g.over)))
  const starts: number[] = []
  let clock = 0
  for (let p = 0; p < periods; p++) {
    starts.push(clock)
    clock += PERIODS[p].to - PERIODS[p].from + stoppage[p] + (p < periods - 1 ? PERIODS[p].breakAfter : 0)
  }
  const endOf = (p: number): number => starts[p] + PERIODS[p].to - PERIODS[p].from + stoppage[p]
  const timed = placed
    .map((g) => ({ ...g, clock: starts[g.period] + g.into }))
    .sort((a, b) => a.clock - b.clock || a.goal.team - b.goal.team || a.order - b.order)

  const events: TimedEvent[] = []
  const score: Score = [0, 0]
  const at = (c: number, event: MatchEvent): void => { events.push({ clock: c, event }) }
  const withOffset = (minute: number, offset: number): { minute: number, offset?: number } =>
    offset > 0 ? { minute, offset } : { minute }
  let regular: Score = [0, 0]
  let goalNo = 0
  at(0, { type: 'kickoff', id: 'kickoff', minute: 0, score: [0, 0] })
  for (let p = 0; p < periods; p++) {
    for (const g of timed.filter((t) => t.period === p)) {
      score[g.goal.team - 1]++
      const event: GoalEvent = {
        type: 'goal',
        id: `goal-${++goalNo}`,
        team: g.goal.team,
        scorer: g.goal.scorer,
        ...withOffset(g.goal.minute, g.goal.offset ?? 0),
        score: [score[0], score[1]]
      }
      if (g.goal.penalty === true) event.penalty = true
      if (g.goal.owngoal === true) event.owngoal = true
      at(g.clock, event)
    }
    const end = endOf(p)
    const mark = withOffset(PERIODS[p].to, stoppage[p])
    if (p === 0) at(end, { type: 'halftime', id: 'halftime', ...mark, score: [score[0], score[1]] })
    if (p === 1) {
      regular = [score[0], score[1]]
      at(end, { type: 'fulltime', id: 'fulltime', ...mark, score: [score[0], score[1]] })
      if (extraTime) at(starts[2], { type: 'extratime', id: 'extratime', minute: 90, score: [score[0], score[1]] })
    }
    if (p === 3) at(end, { type: 'extratime_end', id: 'extratime_end', ...mark, score: [score[0], score[1]] })
  }
  const last = periods - 1
  let finish = endOf(last)
  const finalMark = withOffset(PERIODS[last].to, stoppage[last])
  if (penalties !== undefined) {
    finish += SHOOTOUT_MINUTES
    at(finish, { type: 'shootout', id: 'shootout', ...finalMark, score: [score[0], score[1]], penalties: [penalties[0], penalties[1]] })
  }
  const endEvent: MatchEvent = { type: 'end', id: 'end', ...finalMark, score: [score[0], score[1]] }
  if (penalties !== undefined) endEvent.penalties = [penalties[0], penalties[1]]
  at(finish, endEvent)
  return { events, regular, final: [score[0], score[1]], duration: finish }
}
