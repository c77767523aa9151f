/**
 * Topic filter matching as MQTT 3.1.1 section 4.7 defines it: `+` matches one level, `#` the rest
 * (including the parent level), and wildcards at the first level never match topic names starting with `$`.
 */

/** True when topic name `topic` matches topic filter `filter` (MQTT 3.1.1 sections 4.7.1 and 4.7.2). */
export function topicMatches (filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false // [MQTT-4.7.2-1]
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}

/** True when `s` contains an MQTT wildcard character (`+` or `#`). */
export function hasWildcard (s: string): boolean {
  return s.includes('+') || s.includes('#')
}

/**
 * True when `filter` is a valid MQTT topic filter (MQTT 3.1.1 section 4.7.1): `+` and `#` only as whole levels,
 * `#` last, no U+0000. Filters starting with `$` are valid only when `allowDollar` (e.g. `$SYS/#` in topic rules).
 */
export function isValidFilter (filter: string, allowDollar = false): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false
  if (filter.startsWith('$') && !allowDollar) return false
  const levels = filter.split('/')
  return levels.every((level, i) => {
    if (level === '#') return i === levels.length - 1
    if (level === '+') return true
    return !level.includes('#') && !level.includes('+')
  })
}
