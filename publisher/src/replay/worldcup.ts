/**
 * Reads an openfootball `worldcup.json` file (https://github.com/openfootball/worldcup.json, CC0) and validates
 * it into matches with their ordered, timed event lists (events per the README's contract section; time model in clock.ts;
 * kickoff rules in kickoff.ts).
 *
 * Accepted input, per match: `date` "YYYY-MM-DD", `time` ("19:00" = UTC, "13:00 UTC-6"; optional), `team1`,
 * `team2`, `score` {`ft`, optional `ht`, `et`, `p`}, optional `goals1`/`goals2` (missing = no goals) of
 * {`name`, `minute`, optional `offset`, `penalty`, `owngoal`}, optional `round`, `group`, `ground`; other
 * fields are ignored. Quirks handled: `minute` as number or string, including "90+4"; stoppage as `offset`;
 * goal lists in any order; own goals listed under the team they counted for.
 *
 * Refused (WorldCupFormatError naming the match by its 0-based index in `matches`, with date and teams when
 * known, and the field at fault): wrong types or missing fields, a bad minute, stoppage after a minute that
 * ends no played period, `et` after an unlevel `ft`, `p` after an unlevel final score, goal lists that do not
 * add up to the final score (`et` when present, else `ft`) or, when extra time was played, to `ft` after 90
 * minutes, and two matches with the same id.
 */
import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { ClockError, scheduleMatch, type GoalInput } from './clock.js'
import { parseKickoff } from './kickoff.js'
import type { Score, TimedEvent } from './model.js'
import { matchId } from './slug.js'

/** A validated match, ready to replay. */
export interface ReplayMatch {
  /** 0-based position in the file's `matches` array. */
  index: number
  /** Contract id `<date>-<team1>-<team2>` (see slug.ts). */
  id: string
  team1: string
  team2: string
  /** Local date as written in the file. */
  date: string
  /** Local time as written in the file ("" when absent). */
  time: string
  /** Kickoff instant, ms since 1970 UTC. */
  kickoff: number
  /** Offset of the file's local time from UTC, minutes. */
  utcOffsetMinutes: number
  round?: string
  group?: string
  ground?: string
  /** The score sheet as written in the file. */
  score: { ht?: Score, ft: Score, et?: Score, p?: Score }
  /** Final score: `et` when extra time was played, else `ft`. */
  final: Score
  /** Shoot-out result, when one was played. */
  penalties?: Score
  /** Events in playing order with their match-clock time (minutes since kickoff), `end` last. */
  events: TimedEvent[]
  /** Match-clock time of the `end` event, minutes since kickoff. */
  duration: number
}

/** A validated tournament file. */
export interface WorldCup {
  name?: string
  matches: ReplayMatch[]
}

/** A file that cannot be replayed; `message` names the match (when one is at fault) and the field. */
export class WorldCupFormatError extends Error {
  constructor (message: string, readonly matchIndex?: number, readonly field?: string) {
    super(message)
    this.name = 'WorldCupFormatError'
  }
}

const MINUTE_HINT = 'expected a number or "90+4"-style string'
const MAX_MINUTE = 150

/** A minute as written in the file: 67, "67", "90+4"; parsed to minute + offset. */
const minuteSchema = z.unknown().transform((value, ctx) => {
  let minute: number | undefined
  let offset: number | undefined
  if (typeof value === 'number') {
    minute = value
  } else if (typeof value === 'string') {
    const m = /^\s*(\d{1,3})\s*(?:\+\s*(\d{1,2}))?\s*$/.exec(value)
    if (m !== null) {
      minute = Number(m[1])
      if (m[2] !== undefined) offset = Number(m[2])
    }
  }
  if (minute === undefined || !Number.isInteger(minute) || minute < 1 || minute > MAX_MINUTE) {
    ctx.addIssue({ code: 'custom', message: MINUTE_HINT })
    return z.NEVER
  }
  return { minute, offset }
})

const count = z.number({ error: 'expected a whole number >= 0' })
  .int({ error: 'expected a whole number >= 0' })
  .min(0, { error: 'expected a whole number >= 0' })
const scoreSchema = z.tuple([count, count], { error: 'expected a score [team1, team2]' })
const text = (what: string): z.ZodString => z.string({ error: `expected ${what}` }).trim().min(1, { error: `expected ${what}` })
const flag = z.boolean({ error: 'expected true or false' }).optional()

const goalSchema = z.object({
  name: text('the scorer\'s name'),
  minute: minuteSchema,
  offset: z.number({ error: 'expected a whole number of stoppage minutes' })
    .int({ error: 'expected a whole number of stoppage minutes' })
    .min(0, { error: 'expected a whole number of stoppage minutes' })
    .max(30, { error: 'expected at most 30 stoppage minutes' }).optional(),
  penalty: flag,
  owngoal: flag
}, { error: 'expected a goal object {name, minute, ...}' })

const goalsSchema = z.array(goalSchema, { error: 'expected a list of goals' }).optional()
const optionalText = z.string({ error: 'expected a string' }).optional()

const matchSchema = z.object({
  round: optionalText,
  date: text('a date YYYY-MM-DD'),
  time: optionalText,
  team1: text('a team name'),
  team2: text('a team name'),
  score: z.object({
    ht: scoreSchema.optional(),
    ft: scoreSchema,
    et: scoreSchema.optional(),
    p: scoreSchema.optional()
  }, { error: 'expected a score object {ft, ht?, et?, p?}' }),
  goals1: goalsSchema,
  goals2: goalsSchema,
  group: optionalText,
  ground: optionalText
}, { error: 'expected a match object' })

const fileSchema = z.object({
  name: z.string({ error: 'expected a string' }).optional(),
  matches: z.array(z.unknown(), { error: 'expected a list of matches' })
}, { error: 'expected an object {name, matches: [...]}' })

/** "goals1[0].minute" from a zod path. */
function fieldPath (path: readonly PropertyKey[]): string {
  let out = ''
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`
    else out += out === '' ? String(key) : `.${String(key)}`
  }
  return out
}

/** The value at `path` inside `root`, undefined when absent. */
function valueAt (root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<PropertyKey, unknown>)[key]
  }
  return v
}

/** Short printable form of a raw value for error messages. */
function describe (value: unknown): string {
  if (value === undefined) return 'nothing'
  const json = JSON.stringify(value) ?? String(value)
  return json.length > 60 ? `${json.slice(0, 57)}...` : json
}

/** "match 12 (2022-11-24 Brazil v Serbia)", with "?" for a team that is not a string. */
function matchLabel (index: number, raw: unknown): string {
  const get = (key: string): string | undefined => {
    const v = valueAt(raw, [key])
    return typeof v === 'string' && v.trim() !== '' ? v : undefined
  }
  const date = get('date')
  const t1 = get('team1')
  const t2 = get('team2')
  const parts: string[] = []
  if (date !== undefined) parts.push(date)
  if (t1 !== undefined || t2 !== undefined) parts.push(`${t1 ?? '?'} v ${t2 ?? '?'}`)
  return parts.length > 0 ? `match ${index} (${parts.join(' ')})` : `match ${index}`
}

const fmt = (s: Score): string => `${s[0]}-${s[1]}`

/**
 * Validates one match and builds its events.
 * @throws WorldCupFormatError naming the match and the field
 */
function parseMatch (raw: unknown, index: number): ReplayMatch {
  const label = matchLabel(index, raw)
  const fail = (field: string, message: string): never => {
    throw new WorldCupFormatError(`${label}: ${field}: ${message}`, index, field)
  }
  const parsed = matchSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const field = issue.path.length > 0 ? fieldPath(issue.path) : '(match)'
    return fail(field, `${issue.message}, got ${describe(valueAt(raw, issue.path))}`)
  }
  const m = parsed.data
  const kickoff = parseKickoff(m.date, m.time)
  if (kickoff === 'date') fail('date', `expected a date YYYY-MM-DD, got ${describe(m.date)}`)
  if (kickoff === 'time') fail('time', `expected "HH:MM" optionally followed by " UTC+N" or " UTC-N", got ${describe(m.time)}`)
  const { ms, utcOffsetMinutes } = kickoff as Exclude<typeof kickoff, string>

  const { ft, et, p } = m.score
  if (et !== undefined && ft[0] !== ft[1]) fail('score.et', `extra time needs a level score after 90 minutes, but score.ft is ${fmt(ft)}`)
  const final: Score = et ?? ft
  if (p !== undefined && final[0] !== final[1]) {
    fail('score.p', `a shoot-out needs a level score, but score.${et !== undefined ? 'et' : 'ft'} is ${fmt(final)}`)
  }

  const goals: GoalInput[] = []
  for (const [team, key] of [[1, 'goals1'], [2, 'goals2']] as const) {
    const list = m[key] ?? []
    list.forEach((g, i) => {
      const field = `${key}[${i}]`
      if (g.minute.offset !== undefined && g.offset !== undefined && g.minute.offset !== g.offset) {
        fail(`${field}.offset`, `stoppage ${g.offset} disagrees with minute ${describe(valueAt(raw, [key, i, 'minute']))}`)
      }
      goals.push({
        team,
        scorer: g.name,
        minute: g.minute.minute,
        offset: g.minute.offset ?? g.offset,
        penalty: g.penalty,
        owngoal: g.owngoal,
        field
      })
    })
  }

  let schedule: ReturnType<typeof scheduleMatch>
  try {
    schedule = scheduleMatch(goals, et !== undefined, p)
  } catch (err) {
    if (err instanceof ClockError) return fail(err.field, err.message)
    throw err
  }
  if (schedule.final[0] !== final[0] || schedule.final[1] !== final[1]) {
    fail('goals1/goals2', `the goals add up to ${fmt(schedule.final)} but score.${et !== undefined ? 'et' : 'ft'} is ${fmt(final)}`)
  }
  if (et !== undefined && (schedule.regular[0] !== ft[0] || schedule.regular[1] !== ft[1])) {
    fail('goals1/goals2', `the goals up to full time add up to ${fmt(schedule.regular)} but score.ft is ${fmt(ft)}`)
  }

  const match: ReplayMatch = {
    index,
    id: matchId(m.date, m.team1, m.team2),
    team1: m.team1,
    team2: m.team2,
    date: m.date,
    time: m.time ?? '',
    kickoff: ms,
    utcOffsetMinutes,
    score: m.score,
    final: [final[0], final[1]],
    events: schedule.events,
    duration: schedule.duration
  }
  if (m.round !== undefined) match.round = m.round
  if (m.group !== undefined) match.group = m.group
  if (m.ground !== undefined) match.ground = m.ground
  if (p !== undefined) match.penalties = [p[0], p[1]]
  return match
}

/**
 * Validates parsed JSON of a World Cup file.
 * @param data the parsed JSON ({name, matches: [...]})
 * @returns the matches in file order, each with its ordered, timed events
 * @throws WorldCupFormatError naming the match (0-based index, date and teams when known) and the field at fault,
 *   e.g. `match 12 (2022-11-24 Brazil v Serbia): goals1[0].minute: expected a number or "90+4"-style string, got "abc"`
 */
export function parseWorldCup (data: unknown): WorldCup {
  const file = fileSchema.safeParse(data)
  if (!file.success) {
    const issue = file.error.issues[0]
    const field = issue.path.length > 0 ? fieldPath(issue.path) : '(file)'
    throw new WorldCupFormatError(`${field}: ${issue.message}, got ${describe(valueAt(data, issue.path))}`, undefined, field)
  }
  const seen = new Map<string, number>()
  const matches = file.data.matches.map((raw, index) => {
    const match = parseMatch(raw, index)
    const other = seen.get(match.id)
    if (other !== undefined) {
      throw new WorldCupFormatError(`${matchLabel(index, raw)}: date/team1/team2: id "${match.id}" is already used by match ${other}`, index, 'date/team1/team2')
    }
    seen.set(match.id, index)
    return match
  })
  const result: WorldCup = { matches }
  if (file.data.name !== undefined) result.name = file.data.name
  return result
}

/**
 * Parses and validates the text of a World Cup JSON file.
 * @throws WorldCupFormatError for text that is not JSON ("not valid JSON: ...") or a file that does not
 *   validate (see {@link parseWorldCup}); messages do not name the file, callers add it
 */
export function parseWorldCupText (text: string): WorldCup {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    throw new WorldCupFormatError(`not valid JSON: ${(err as Error).message}`)
  }
  return parseWorldCup(data)
}

/**
 * Reads, parses and validates a World Cup JSON file (UTF-8).
 * @throws the fs error (ENOENT, ...) when the file cannot be read; WorldCupFormatError when it is malformed
 *   (the message does not repeat the path)
 */
export async function readWorldCupFile (path: string): Promise<WorldCup> {
  const text = await readFile(path, 'utf8')
  return parseWorldCupText(text)
}
