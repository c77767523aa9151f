/**
 * Topic rules: which topics an identity may publish to and which topic filters it may subscribe to.
 * A rule list is a list of topic filters (MQTT 3.1.1 section 4.7). Publishing to a topic name is allowed when a
 * publish filter matches it; subscribing to a filter is allowed when one subscribe filter covers every topic the
 * requested filter can match (so `matches/+/events` allows `matches/x/events` and itself, but not `matches/#`).
 * Wildcards at the first level never reach `$` topics [MQTT-4.7.2-1]: `$SYS/#` and `$admin/#` must be granted by name.
 * A `$replay/<start>/<feed>` filter is allowed when subscribing to `<feed>` is.
 */
import { topicMatches } from '../feeds/topic-filter.js'
import { REPLAY_PREFIX } from '../feeds/replay-filter.js'

/** The three kinds of client. */
export const ROLES = ['viewer', 'publisher', 'operator'] as const
export type Role = typeof ROLES[number]

/** Topic filters an identity may publish to and subscribe to. */
export interface TopicRules {
  publish: readonly string[]
  subscribe: readonly string[]
}

/**
 * The default rules of each role, given the broker's public filters (what viewers may read, e.g.
 * `matches/+/events`, `matches/+/state`): viewers read the public filters and publish nothing; publishers publish
 * under the public filters and read them; operators reach everything, `$SYS/#` and `$admin/#` included.
 */
export function defaultRules (publicFilters: readonly string[]): Record<Role, TopicRules> {
  return {
    viewer: { publish: [], subscribe: publicFilters },
    publisher: { publish: publicFilters, subscribe: publicFilters },
    operator: { publish: ['#', '$admin/#'], subscribe: ['#', '$SYS/#', '$admin/#'] }
  }
}

/** True when `rules` allow publishing to topic name `topic`. */
export function mayPublish (rules: TopicRules, topic: string): boolean {
  return rules.publish.some((f) => topicMatches(f, topic))
}

/** True when `rules` allow subscribing to topic filter `filter` (a `$replay` filter: to its feed). */
export function maySubscribe (rules: TopicRules, filter: string): boolean {
  const wanted = replayFeed(filter) ?? filter
  return rules.subscribe.some((allowed) => covers(allowed, wanted))
}

/** True when `rules` allow receiving a message published to topic name `topic` (for queued messages). */
export function mayReceive (rules: TopicRules, topic: string): boolean {
  return rules.subscribe.some((f) => topicMatches(f, topic))
}

/** The feed of a `$replay/<start>/<feed>` filter, or null for any other filter. */
function replayFeed (filter: string): string | null {
  if (!filter.startsWith(REPLAY_PREFIX)) return null
  const rest = filter.slice(REPLAY_PREFIX.length)
  const slash = rest.indexOf('/')
  return slash < 0 ? '' : rest.slice(slash + 1)
}

/**
 * True when every topic name that `filter` matches is also matched by `allowed` (filter subsumption).
 * Level by level: `#` in `allowed` covers the rest; `+` covers one level that is not `#`; a name covers only itself.
 */
export function covers (allowed: string, filter: string): boolean {
  if (filter === '') return false
  if (filter.startsWith('$') && !allowed.startsWith('$')) return false // [MQTT-4.7.2-1]
  const a = allowed.split('/')
  const f = filter.split('/')
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '#') return true
    if (i >= f.length) return false
    if (f[i] === '#') return false
    if (a[i] === '+') continue
    if (f[i] === '+' || a[i] !== f[i]) return false
  }
  return a.length === f.length
}
