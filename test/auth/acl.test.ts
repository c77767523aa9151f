// Tests whether the topic rules decide as documented (pure logic, auth/acl.ts): deny wins over allow for publish and
// subscribe; a filter equal to or covered by a denied filter is refused while one that only overlaps it is granted
// (and its denied topics are dropped per message); prefix levels (`test-+`); `$` topics only by name; `$replay`.
import { describe, it, expect } from 'vitest'
import { covers, isValidRule, mayPublish, mayReceive, maySubscribe, ruleMatches, type TopicRules } from '../../broker/src/auth/acl.js'

const ALL_BUT_INTERNAL: TopicRules = { publish: ['#'], subscribe: ['#'], deny: { publish: ['internal/#'], subscribe: ['internal/#'] } }
const EVENTS_BUT_TEST: TopicRules = { publish: ['matches/+/events'], subscribe: ['matches/+/events'], deny: { publish: ['matches/test-+/events'], subscribe: ['matches/test-+/events'] } }

describe('topic rules', () => {
  it('lets a deny rule win over an allow rule, for PUBLISH', () => {
    expect(['public/x', 'internal', 'internals/x', 'internal/x', 'internal/a/b'].map((t) => mayPublish(ALL_BUT_INTERNAL, t)))
      .toEqual([true, false, true, false, false]) // `internal/#` also matches its parent level `internal` (MQTT 3.1.1 section 4.7.1.2)
    expect(['matches/m1/events', 'matches/test-1/events', 'matches/test-/events', 'matches/tes/events', 'matches/xtest-1/events'].map((t) => mayPublish(EVENTS_BUT_TEST, t)))
      .toEqual([true, false, false, true, true])
  })

  it('refuses a SUBSCRIBE filter equal to or covered by a denied filter, and grants one that only overlaps it', () => {
    const filters = ['#', '+/x', 'internal/#', 'internal/x', 'internal/+/y', 'internal', 'public/#', '+/+']
    expect(filters.map((f) => maySubscribe(ALL_BUT_INTERNAL, f))).toEqual([true, true, false, false, false, false, true, true])
    const feeds = ['matches/+/events', 'matches/m1/events', 'matches/test-1/events', 'matches/#']
    expect(feeds.map((f) => maySubscribe(EVENTS_BUT_TEST, f))).toEqual([true, true, false, false])
  })

  it('drops denied topics per message (what a granted overlapping wildcard would otherwise deliver)', () => {
    expect(['public/x', 'internal/x', 'internal'].map((t) => mayReceive(ALL_BUT_INTERNAL, t))).toEqual([true, false, false])
    expect(['matches/m1/events', 'matches/test-9/events'].map((t) => mayReceive(EVENTS_BUT_TEST, t))).toEqual([true, false])
  })

  it('applies a $replay filter to its feed, and refuses it when either is denied', () => {
    expect(maySubscribe(EVENTS_BUT_TEST, '$replay/all/matches/m1/events')).toBe(true)
    expect(maySubscribe(EVENTS_BUT_TEST, '$replay/last-5/matches/test-1/events')).toBe(false)
    const noReplays: TopicRules = { publish: [], subscribe: ['matches/+/events'], deny: { publish: [], subscribe: ['$replay/#'] } }
    expect(maySubscribe(noReplays, 'matches/m1/events')).toBe(true)
    expect(maySubscribe(noReplays, '$replay/all/matches/m1/events')).toBe(false)
  })

  it('reaches $ topics only by name, for allow and deny rules alike [MQTT-4.7.2-1]', () => {
    const paho: TopicRules = { publish: ['#', '$TopicA/#'], subscribe: ['#', '$TopicA/#'], deny: { publish: [], subscribe: ['test/nosubscribe'] } }
    expect(mayPublish(paho, '$TopicA/B')).toBe(true)
    expect(mayPublish(paho, '$TopicB/B')).toBe(false)
    expect(mayPublish({ publish: ['#'], subscribe: [] }, '$TopicA/B')).toBe(false)
    expect(['$TopicA/B', '$TopicA/#', '$TopicB/x', '+/B', 'test/nosubscribe', 'test/+'].map((f) => maySubscribe(paho, f)))
      .toEqual([true, true, false, true, false, true])
    expect(mayReceive(paho, 'test/nosubscribe')).toBe(false)
    // A deny of `#` does not reach `$TopicA/B` either.
    const denyAll: TopicRules = { publish: ['#', '$TopicA/#'], subscribe: [], deny: { publish: ['#'], subscribe: [] } }
    expect([mayPublish(denyAll, 'a/b'), mayPublish(denyAll, '$TopicA/B')]).toEqual([false, true])
  })

  it('matches and compares prefix levels (`test-+`), and accepts only well-formed rules', () => {
    expect(['matches/test-1/events', 'matches/test-/events', 'matches/test/events', 'matches/test-1/x'].map((t) => ruleMatches('matches/test-+/events', t)))
      .toEqual([true, true, false, false])
    expect(covers('matches/+/events', 'matches/test-+/events')).toBe(true)
    expect(covers('matches/test-+/events', 'matches/test-1-+/events')).toBe(true)
    expect(covers('matches/test-+/events', 'matches/+/events')).toBe(false)
    expect(covers('matches/test-+/events', 'matches/tes+/events')).toBe(false)
    expect(['a/b', '#', '+/x/#', 'test-+/x', '$TopicA/#', 'a/b+c', 'a/#/b', 'a#', 'a/++', ''].map(isValidRule))
      .toEqual([true, true, true, true, true, false, false, false, false, false])
  })
})
