/**
 * Topic names of a match (the README's contract section): the event feed and the retained state.
 */

/** Topic of a match's event feed: `matches/<id>/events` (a feed under the broker's default filter `matches/+/events`). */
export function eventsTopic (matchId: string): string {
  return `matches/${matchId}/events`
}

/** Topic of a match's retained state: `matches/<id>/state`. */
export function stateTopic (matchId: string): string {
  return `matches/${matchId}/state`
}
