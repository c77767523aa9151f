/**
 * Parses `$replay/...` topic filters, the one subscription that gives a viewer a feed's history then its live messages:
 *   $replay/all/<feed>                  all history held, then live
 *   $replay/last-<n>/<feed>             the last n messages (n >= 0), then live
 *   $replay/after-<seq>@<epoch>/<feed>  resume: messages after <seq> of <epoch>, then live
 * <feed> is a topic name (no wildcards) that matches one of the broker's feed filters.
 */
import { hasWildcard, topicMatches } from './topic-filter.js'

export const REPLAY_PREFIX = '$replay/'

/** Where a replay starts. */
export type ReplayFrom =
  | { kind: 'all' }
  | { kind: 'last', n: number }
  | { kind: 'after', seq: number, epoch: string }

/** A parsed replay request. */
export interface ReplayRequest {
  feed: string
  from: ReplayFrom
}

/** Refusal of a `$replay` filter; `message` says what is wrong with it. */
export class ReplayFilterError extends Error {
  constructor (filter: string, why: string) {
    super(`invalid replay filter ${JSON.stringify(filter)}: ${why}`)
    this.name = 'ReplayFilterError'
  }
}

const LAST = /^last-(\d{1,9})$/
const AFTER = /^after-(\d{1,15})@([A-Za-z0-9_-]{1,64})$/

/** True when the filter is a `$replay/...` filter (valid or not). */
export function isReplayFilter (filter: string): boolean {
  return filter.startsWith(REPLAY_PREFIX) || filter === '$replay'
}

/**
 * Parses a `$replay/...` filter.
 * @param feedFilters the broker's feed filters; the feed must match one of them
 * @throws ReplayFilterError naming what is wrong (unknown form, bad number, wildcard, not a feed)
 */
export function parseReplayFilter (filter: string, feedFilters: readonly string[]): ReplayRequest {
  if (!isReplayFilter(filter)) throw new ReplayFilterError(filter, `must start with ${REPLAY_PREFIX}`)
  const rest = filter.slice(REPLAY_PREFIX.length)
  const slash = rest.indexOf('/')
  if (slash <= 0) throw new ReplayFilterError(filter, 'expected $replay/<all|last-n|after-seq@epoch>/<feed>')
  const spec = rest.slice(0, slash)
  const feed = rest.slice(slash + 1)
  if (feed.length === 0) throw new ReplayFilterError(filter, 'the feed topic is empty')
  if (hasWildcard(feed)) throw new ReplayFilterError(filter, 'the feed must be a topic name, without + or #')
  if (feed.startsWith('$')) throw new ReplayFilterError(filter, 'the feed must not be a $ topic')
  if (feed.includes('\u0000')) throw new ReplayFilterError(filter, 'the feed must not contain U+0000 (MQTT 3.1.1 section 1.5.3)')
  if (!feedFilters.some((f) => topicMatches(f, feed))) {
    throw new ReplayFilterError(filter, `${feed} is not a feed (feeds: ${feedFilters.join(', ')})`)
  }
  let from: ReplayFrom
  let m: RegExpExecArray | null
  if (spec === 'all') {
    from = { kind: 'all' }
  } else if ((m = LAST.exec(spec)) !== null) {
    from = { kind: 'last', n: Number(m[1]) }
  } else if ((m = AFTER.exec(spec)) !== null) {
    from = { kind: 'after', seq: Number(m[1]), epoch: m[2] }
  } else {
    throw new ReplayFilterError(filter, `unknown start "${spec}" (use all, last-<n> or after-<seq>@<epoch>)`)
  }
  return { feed, from }
}
