/**
 * Topic rules: which topics an identity may publish to and which topic filters it may subscribe to, with deny rules
 * that win over allow rules (as in Mosquitto's dynamic security and EMQX's ACL).
 *
 * A rule list is a list of topic filters (MQTT 3.1.1 section 4.7), where a level may also be a prefix followed by `+`
 * (`test-+`: any one level that starts with `test-`; a Tribune extension, rules only, never in a SUBSCRIBE).
 *  - PUBLISH to a topic name: allowed when an allow filter matches it and no deny filter does.
 *  - SUBSCRIBE to a topic filter: allowed when one allow filter covers every topic the requested filter can match
 *    (so `matches/+/events` allows `matches/x/events` and itself, but not `matches/#`), and no deny filter covers the
 *    requested filter. A filter that only overlaps a denied one (`#` against a deny of `internal/#`) is allowed; the
 *    denied topics are then dropped per message when delivered ({@link mayReceive}).
 *  - Wildcards at the first level never reach `$` topics [MQTT-4.7.2-1]: `$SYS/#`, `$admin/#` or `$TopicA/#` must be
 *    granted (or denied) by name.
 *  - A `$replay/<start>/<feed>` filter is allowed when subscribing to `<feed>` is, and denied when either it or its
 *    feed is denied.
 */
import { REPLAY_PREFIX } from '../feeds/replay-filter.js'

/** The three kinds of client. */
export const ROLES = ['viewer', 'publisher', 'operator'] as const
export type Role = typeof ROLES[number]

/** Topic filters an identity may publish to and subscribe to, and those it may not (deny wins over allow). */
export interface TopicRules {
  publish: readonly string[]
  subscribe: readonly string[]
  deny?: { readonly publish: readonly string[], readonly subscribe: readonly string[] }
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

/** True when `rules` allow publishing to topic name `topic`: an allow filter matches it, no deny filter does. */
export function mayPublish (rules: TopicRules, topic: string): boolean {
  return rules.publish.some((f) => ruleMatches(f, topic)) && !(rules.deny?.publish.some((f) => ruleMatches(f, topic)) ?? false)
}

/**
 * True when `rules` allow subscribing to topic filter `filter` (a `$replay` filter: to its feed): an allow filter
 * covers it, and no deny filter covers it (or, for `$replay`, its feed).
 */
export function maySubscribe (rules: TopicRules, filter: string): boolean {
  const wanted = replayFeed(filter) ?? filter
  return rules.subscribe.some((allowed) => covers(allowed, wanted)) && !isDeniedFilter(rules, filter)
}

/** True when a deny filter of `rules` covers topic filter `filter` (a `$replay` filter: it, or its feed). */
export function isDeniedFilter (rules: TopicRules, filter: string): boolean {
  const deny = rules.deny?.subscribe
  if (deny === undefined || deny.length === 0) return false
  const feed = replayFeed(filter)
  return deny.some((d) => covers(d, filter) || (feed !== null && covers(d, feed)))
}

/**
 * True when `rules` allow receiving a message published to topic name `topic`: an allow filter matches it and no
 * deny filter does. Checked per message for persistent sessions (their stored subscriptions) and for any session
 * whose rules deny some subscriptions (a granted wildcard may overlap a denied filter).
 */
export function mayReceive (rules: TopicRules, topic: string): boolean {
  return rules.subscribe.some((f) => ruleMatches(f, topic)) && !isDeniedTopic(rules, topic)
}

/** True when a deny filter of `rules` matches topic name `topic` (the per-message check of {@link mayReceive}). */
export function isDeniedTopic (rules: TopicRules, topic: string): boolean {
  const deny = rules.deny?.subscribe
  return deny !== undefined && deny.length > 0 && deny.some((f) => ruleMatches(f, topic))
}

/** True when `rules` deny some subscriptions (deliveries then need the per-message check). */
export function deniesSubscriptions (rules: TopicRules): boolean {
  return (rules.deny?.subscribe.length ?? 0) > 0
}

/** The feed of a `$replay/<start>/<feed>` filter, or null for any other filter. */
function replayFeed (filter: string): string | null {
  if (!filter.startsWith(REPLAY_PREFIX)) return null
  const rest = filter.slice(REPLAY_PREFIX.length)
  const slash = rest.indexOf('/')
  return slash < 0 ? '' : rest.slice(slash + 1)
}

/**
 * True when `rule` is a valid rule filter: an MQTT topic filter (MQTT 3.1.1 section 4.7.1: `+` and `#` as whole
 * levels, `#` last, no U+0000; `$` topics allowed), where a level may also be a prefix followed by `+` (`test-+`).
 */
export function isValidRule (rule: string): boolean {
  if (rule.length === 0 || rule.includes('\u0000')) return false
  const levels = rule.split('/')
  return levels.every((level, i) => {
    if (level === '#') return i === levels.length - 1
    const body = level.endsWith('+') ? level.slice(0, -1) : level
    return !body.includes('#') && !body.includes('+')
  })
}

/** True when topic name `topic` matches rule filter `rule` (MQTT 3.1.1 section 4.7, plus prefix levels `p+`). */
export function ruleMatches (rule: string, topic: string): boolean {
  if (topic.startsWith('$') && (rule.startsWith('+') || rule.startsWith('#'))) return false // [MQTT-4.7.2-1]
  if (!rule.includes('+') && !rule.includes('#')) return rule === topic
  const r = rule.split('/')
  const t = topic.split('/')
  for (let i = 0; i < r.length; i++) {
    if (r[i] === '#') return true
    if (i >= t.length) return false
    if (!levelCovers(r[i], t[i])) return false
  }
  return r.length === t.length
}

/**
 * True when every topic name that `filter` matches is also matched by `rule` (filter subsumption). `filter` is a
 * SUBSCRIBE topic filter or another rule. Level by level: `#` in `rule` covers the rest; `+` covers one level that is
 * not `#`; a prefix level `p+` covers names and prefix levels starting with `p`; a name covers only itself.
 */
export function covers (rule: string, filter: string): boolean {
  if (filter === '') return false
  if (filter.startsWith('$') && !rule.startsWith('$')) return false // [MQTT-4.7.2-1]
  const a = rule.split('/')
  const f = filter.split('/')
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '#') return true
    if (i >= f.length) return false
    if (f[i] === '#') return false
    if (!levelCovers(a[i], f[i])) return false
  }
  return a.length === f.length
}

/** True when rule level `a` covers level `f` (a name, `+`, or a prefix level `p+`; never `#`). */
function levelCovers (a: string, f: string): boolean {
  if (a === '+') return true
  if (!a.endsWith('+')) return a === f
  const prefix = a.slice(0, -1)
  if (f === '+') return false
  return f.startsWith(prefix) // a name, or a narrower prefix level (`test-x-+` under `test-+`)
}
