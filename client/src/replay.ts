// $replay subscription filters and topic helpers, following the README's contract section ("Subscribing") and
// MQTT 3.1.1 section 4.7 (topic names and filters). Pure functions, no I/O.

import type { FeedPosition } from './envelope.js'

/** Where a feed subscription starts when given by name: all held history, or the last n messages. */
export type NamedFeedStart = 'all' | `last-${number}`

/** Where a feed subscription starts: all history, the last n messages, or after a known position. */
export type FeedStart = NamedFeedStart | FeedPosition

const LAST_RE = /^last-(0|[1-9][0-9]*)$/
const AFTER_RE = /^after-(0|[1-9][0-9]*)@(.+)$/

/**
 * Parses a textual start: `all`, `last-<n>` (n >= 0; 0 = live only) or `after-<seq>@<epoch>` (seq >= 0), as used in the
 * $replay filters of the contract and by `tribune watch --from`.
 * @throws RangeError with a message naming the accepted forms if `text` is none of them.
 */
export function parseFeedStart (text: string): FeedStart {
  if (text === 'all') return 'all'
  const last = LAST_RE.exec(text)
  if (last !== null && Number.isSafeInteger(Number(last[1]))) return `last-${Number(last[1])}`
  const after = AFTER_RE.exec(text)
  if (after !== null && Number.isSafeInteger(Number(after[1])) && isValidEpoch(after[2])) {
    return { seq: Number(after[1]), epoch: after[2] }
  }
  throw new RangeError(`invalid start "${text}": expected all, last-<n> (n >= 0) or after-<seq>@<epoch>`)
}

/** True if `epoch` can be embedded in a topic filter level (non-empty, no '/', '+', '#', NUL). */
export function isValidEpoch (epoch: string): boolean {
  return epoch.length > 0 && !/[/+#\u0000]/.test(epoch)
}

/**
 * Checks that `feed` is a concrete topic name usable as a feed: non-empty, no wildcard ('+', '#'), no NUL,
 * no leading '$' (MQTT 3.1.1 sections 4.7.1 and 4.7.2).
 * @throws RangeError naming the problem.
 */
export function assertFeedTopic (feed: string): void {
  if (feed.length === 0) throw new RangeError('feed topic is empty')
  if (/[+#\u0000]/.test(feed)) throw new RangeError(`feed topic "${feed}" must not contain wildcards or NUL`)
  if (feed.startsWith('$')) throw new RangeError(`feed topic "${feed}" must not start with '$'`)
}

/**
 * Builds the $replay filter for `feed` (contract "Subscribing"):
 * `$replay/all/<feed>`, `$replay/last-<n>/<feed>` or `$replay/after-<seq>@<epoch>/<feed>`.
 * @throws RangeError if the feed, n, seq or epoch is not valid in a filter.
 */
export function replayFilter (feed: string, from: FeedStart): string {
  assertFeedTopic(feed)
  if (typeof from === 'string') {
    const parsed = parseFeedStart(from)
    if (typeof parsed !== 'string') return replayFilter(feed, parsed)
    return `$replay/${parsed}/${feed}`
  }
  if (!Number.isSafeInteger(from.seq) || from.seq < 0) throw new RangeError(`invalid resume seq ${String(from.seq)}`)
  if (typeof from.epoch !== 'string' || !isValidEpoch(from.epoch)) {
    throw new RangeError(`invalid resume epoch "${String(from.epoch)}": must be non-empty without '/', '+', '#'`)
  }
  return `$replay/after-${from.seq}@${from.epoch}/${feed}`
}

/**
 * Checks an MQTT topic filter (MQTT 3.1.1 section 4.7.1): non-empty, no NUL, '#' only as the whole last level,
 * '+' only as a whole level.
 * @returns true if valid.
 */
export function isValidTopicFilter (filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false
  const levels = filter.split('/')
  return levels.every((level, i) =>
    (!level.includes('#') || (level === '#' && i === levels.length - 1)) && (!level.includes('+') || level === '+'))
}

/** True if `topic` looks like a feed by the default convention: it ends with `/events` (contract "Feeds"). */
export function isFeedLikeTopic (topic: string): boolean {
  return topic.endsWith('/events') && !/[+#]/.test(topic)
}

/**
 * MQTT topic filter matching (MQTT 3.1.1 section 4.7): '+' matches one level, a trailing '#' matches the
 * parent and any number of levels; filters starting with a wildcard do not match topics starting with '$'
 * (section 4.7.2).
 * @param filter a valid topic filter. @param topic a topic name (no wildcards).
 */
export function topicMatches (filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i === f.length - 1
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}
