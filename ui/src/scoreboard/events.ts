// How one match event reads in the selected match's feed: its minute, an icon, the words, and the score after it.
// Pure, so it is tested on its own (test/ui/scoreboard-model.test.ts).
import { minuteText, scoreText, type MatchEvent } from './matches.js'

/** One line of the feed. */
export interface EventLine {
  /** `23'`, `90+4'`; empty for events without a clock (the shoot-out, the end). */
  minute: string
  /** A plain symbol (fonts of TV browsers often lack emoji). */
  icon: string
  /** The words: "Lionel Messi (pen.) — Argentina", "Half-time". */
  text: string
  /** Marks shown as badges: `pen.`, `o.g.`. */
  marks: string[]
  /** Score after the event, e.g. "2–1" or "3–3 (4–2 pens)". */
  score: string
}

/**
 * The feed line of an event.
 * @param teams the match's team names, for the side a goal counted for
 */
export function eventLine (event: MatchEvent, teams: readonly [string, string]): EventLine {
  const minute = minuteText(event.minute, event.offset)
  const score = scoreText(event.score, event.penalties)
  switch (event.type) {
    case 'kickoff': return { minute, icon: '▶', text: 'Kick-off', marks: [], score }
    case 'goal': {
      const marks = [...(event.penalty === true ? ['pen.'] : []), ...(event.owngoal === true ? ['o.g.'] : [])]
      const side = event.team === 1 || event.team === 2 ? teams[event.team - 1] : ''
      return { minute, icon: '●', text: `${event.scorer ?? 'Goal'}${side === '' ? '' : ` — ${side}`}`, marks, score }
    }
    case 'halftime': return { minute, icon: '‖', text: 'Half-time', marks: [], score }
    case 'fulltime': return { minute, icon: '■', text: 'Full-time', marks: [], score }
    case 'extratime': return { minute, icon: '▶', text: 'Extra time', marks: [], score }
    case 'extratime_end': return { minute, icon: '■', text: 'End of extra time', marks: [], score }
    case 'shootout': return { minute: '', icon: '◎', text: `Penalty shoot-out: ${event.penalties?.[0] ?? '?'}–${event.penalties?.[1] ?? '?'}`, marks: [], score }
    case 'end': return { minute: '', icon: '■', text: event.minute > 90 ? 'Final whistle, after extra time' : 'Final whistle', marks: [], score }
    default: return { minute, icon: '•', text: String((event as { type: unknown }).type), marks: [], score }
  }
}
