import { describe, expect, it } from 'vitest'
import { decodePayload, parseFeedPayload } from '../../client/src/envelope.js'
import {
  isFeedLikeTopic, isValidTopicFilter, parseFeedStart, replayFilter, topicMatches
} from '../../client/src/replay.js'

const FEED = 'matches/2022-12-18-argentina-france/events'

describe('$replay filters', () => {
  it('builds the three forms of the contract', () => {
    expect(replayFilter(FEED, 'all')).toBe(`$replay/all/${FEED}`)
    expect(replayFilter(FEED, 'last-10')).toBe(`$replay/last-10/${FEED}`)
    expect(replayFilter(FEED, { seq: 42, epoch: '9f3a' })).toBe(`$replay/after-42@9f3a/${FEED}`)
  })

  it('refuses what cannot be a filter', () => {
    expect(() => replayFilter('matches/+/events', 'all')).toThrow(RangeError)
    expect(() => replayFilter('$SYS/x', 'all')).toThrow(RangeError)
    expect(() => replayFilter(FEED, { seq: 1, epoch: 'a/b' })).toThrow(RangeError)
    expect(() => replayFilter(FEED, { seq: -1, epoch: 'e' })).toThrow(RangeError)
  })

  it('parses textual starts', () => {
    expect(parseFeedStart('all')).toBe('all')
    expect(parseFeedStart('last-5')).toBe('last-5')
    expect(parseFeedStart('last-0')).toBe('last-0')
    expect(parseFeedStart('after-7@abc')).toEqual({ seq: 7, epoch: 'abc' })
    for (const bad of ['', 'last', 'last-', 'last-01', 'last-x', 'after-1', 'after-x@e', 'first-3']) {
      expect(() => parseFeedStart(bad), bad).toThrow(RangeError)
    }
  })

  it('recognises feed-like topics', () => {
    expect(isFeedLikeTopic(FEED)).toBe(true)
    expect(isFeedLikeTopic('matches/x/state')).toBe(false)
    expect(isFeedLikeTopic('matches/+/events')).toBe(false)
  })
})

describe('topic filters (MQTT 3.1.1 section 4.7)', () => {
  it('matches + and # and keeps $ topics away from leading wildcards', () => {
    expect(topicMatches('matches/+/state', 'matches/a/state')).toBe(true)
    expect(topicMatches('matches/+/state', 'matches/a/b/state')).toBe(false)
    expect(topicMatches('matches/#', 'matches')).toBe(true)
    expect(topicMatches('matches/#', 'matches/a/b')).toBe(true)
    expect(topicMatches('#', '$replay/all/x')).toBe(false)
    expect(topicMatches('+/all/x', '$replay/all/x')).toBe(false)
    expect(topicMatches('$replay/all/x', '$replay/all/x')).toBe(true)
    expect(topicMatches('a/+', 'a')).toBe(false)
  })

  it('validates filters', () => {
    expect(isValidTopicFilter('matches/+/state')).toBe(true)
    expect(isValidTopicFilter('#')).toBe(true)
    expect(isValidTopicFilter('a/#/b')).toBe(false)
    expect(isValidTopicFilter('a/b+')).toBe(false)
    expect(isValidTopicFilter('')).toBe(false)
  })
})

describe('feed payloads', () => {
  it('parses envelopes, reset notices (epoch null allowed) and refuses the rest', () => {
    expect(parseFeedPayload('{"seq":1,"epoch":"e","ts":5,"data":{"id":"g1"}}'))
      .toEqual({ kind: 'envelope', envelope: { seq: 1, epoch: 'e', ts: 5, data: { id: 'g1' } } })
    expect(parseFeedPayload(new TextEncoder().encode('{"reset":true,"epoch":"e2","reason":"trimmed"}')))
      .toEqual({ kind: 'reset', notice: { reset: true, epoch: 'e2', reason: 'trimmed' } })
    expect(parseFeedPayload('{"reset":true,"epoch":null,"reason":"epoch-changed"}'))
      .toEqual({ kind: 'reset', notice: { reset: true, epoch: null, reason: 'epoch-changed' } })
    expect(parseFeedPayload('[1]').kind).toBe('invalid')
    expect(parseFeedPayload('{"seq":0,"epoch":"e","ts":1}').kind).toBe('invalid')
    expect(parseFeedPayload('{"seq":1,"epoch":"","ts":1}').kind).toBe('invalid')
    expect(parseFeedPayload('{"seq":1,"epoch":"e"}').kind).toBe('invalid')
  })

  it('decodes plain payloads as JSON, else text, empty as null', () => {
    expect(decodePayload('{"a":1}')).toEqual({ a: 1 })
    expect(decodePayload(new TextEncoder().encode('hello'))).toBe('hello')
    expect(decodePayload(new Uint8Array())).toBeNull()
  })
})
