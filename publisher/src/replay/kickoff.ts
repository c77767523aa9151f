/**
 * Kickoff instants from the openfootball `date` + `time` fields.
 * `time` is local time "HH:MM", optionally followed by a UTC offset: "13:00 UTC-6", "21:00 UTC+5:30", "18:00 UTC".
 * A time without a suffix (as in worldcup-2022.json: "19:00") is taken as UTC: the file does not say which
 * zone it is in, so the replay picks one fixed rule rather than guessing from the venue. A missing time is
 * taken as 12:00 UTC.
 */

/** A parsed kickoff. */
export interface Kickoff {
  /** Kickoff instant, milliseconds since 1970-01-01T00:00:00Z. */
  ms: number
  /** Offset of the local time from UTC, minutes (e.g. -360 for "UTC-6", 0 when no suffix). */
  utcOffsetMinutes: number
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/
const TIME = /^\s*(\d{1,2}):(\d{2})(?:\s*(?:UTC|GMT)(?:\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?)?)?\s*$/i

/** Time assumed when a match has no `time` field. */
export const DEFAULT_KICKOFF_TIME = '12:00'

/**
 * Checks a calendar date "YYYY-MM-DD".
 * @returns [year, month 1-12, day] or undefined when the text is not a real date
 */
export function parseDate (date: string): [number, number, number] | undefined {
  const m = DATE.exec(date)
  if (m === null) return undefined
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const check = new Date(Date.UTC(y, mo - 1, d))
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return undefined
  return [y, mo, d]
}

/**
 * Parses a local time with optional UTC offset ("19:00", "13:00 UTC-6", "21:00 UTC+5:30").
 * @returns hours, minutes and the offset in minutes, or undefined when malformed or out of range
 */
export function parseTime (time: string): { hours: number, minutes: number, utcOffsetMinutes: number } | undefined {
  const m = TIME.exec(time)
  if (m === null) return undefined
  const hours = Number(m[1])
  const minutes = Number(m[2])
  if (hours > 23 || minutes > 59) return undefined
  let utcOffsetMinutes = 0
  if (m[4] !== undefined) {
    const oh = Number(m[4])
    const om = m[5] === undefined ? 0 : Number(m[5])
    if (oh > 14 || om > 59) return undefined
    utcOffsetMinutes = (m[3] === '-' ? -1 : 1) * (oh * 60 + om)
  }
  return { hours, minutes, utcOffsetMinutes }
}

/**
 * The real kickoff instant of a match: local `date` + `time` shifted by the time's UTC offset.
 * E.g. ("2026-06-11", "13:00 UTC-6") -> 2026-06-11T19:00:00Z; ("2022-11-20", "19:00") -> 2022-11-20T19:00:00Z.
 * @param time local time; undefined means {@link DEFAULT_KICKOFF_TIME} UTC
 * @returns the kickoff, or a string naming the field at fault ("date" or "time")
 */
export function parseKickoff (date: string, time: string | undefined): Kickoff | 'date' | 'time' {
  const d = parseDate(date)
  if (d === undefined) return 'date'
  const t = parseTime(time ?? DEFAULT_KICKOFF_TIME)
  if (t === undefined) return 'time'
  const local = Date.UTC(d[0], d[1] - 1, d[2], t.hours, t.minutes)
  return { ms: local - t.utcOffsetMinutes * 60_000, utcOffsetMinutes: t.utcOffsetMinutes }
}
