// Resuming a feed in another region by event id, as pure logic: the bounded set of delivered ids, the anchor search
// in the new region's stream (IdResume), the region rotation, and FeedSubscription across a region switch over a
// fake transport (each region numbering its seqs and epoch its own way, the event ids the same).
import { describe, expect, it } from 'vitest'
import type { FeedEnvelope, ResetNotice } from '../../client/src/envelope.js'
import { FeedSubscription, type FeedTransport, type QoS } from '../../client/src/feed-subscription.js'
import { DeliveredIds, IdResume, eventId, type IdDecision } from '../../client/src/resume-by-id.js'
import { RegionRotation, regionList } from '../../client/src/targets.js'

describe('eventId', () => {
  it('is data.id when it is a non-empty string, else undefined', () => {
    expect(eventId({ id: 'goal-1', type: 'goal' })).toBe('goal-1')
    expect(eventId({ id: '' })).toBeUndefined()
    expect(eventId({ id: 7 })).toBeUndefined()
    expect(eventId({ type: 'goal' })).toBeUndefined()
    expect(eventId(['goal-1'])).toBeUndefined()
    expect(eventId('goal-1')).toBeUndefined()
    expect(eventId(null)).toBeUndefined()
  })
})

describe('DeliveredIds', () => {
  it('keeps the most recent ids up to its bound, forgetting the oldest first', () => {
    const ids = new DeliveredIds(3)
    for (const id of ['a', 'b', 'c']) ids.add(id)
    expect(['a', 'b', 'c'].map((id) => ids.has(id))).toEqual([true, true, true])
    ids.add('b') // already held: stays where it is, nothing forgotten
    expect(ids.size).toBe(3)
    ids.add('d')
    expect(ids.has('a')).toBe(false)
    expect(['b', 'c', 'd'].map((id) => ids.has(id))).toEqual([true, true, true])
    ids.add('e')
    expect(ids.has('b')).toBe(false)
    expect(ids.size).toBe(3)
    ids.clear()
    expect(ids.size).toBe(0)
    expect(ids.has('e')).toBe(false)
  })

  it('holds 100,000 ids delivered in a row to its bound of 1,000', () => {
    const ids = new DeliveredIds()
    for (let i = 0; i < 100_000; i++) ids.add(`e${i}`)
    expect(ids.size).toBe(1000)
    expect(ids.has('e98999')).toBe(false)
    expect(ids.has('e99000')).toBe(true)
  })

  it('refuses a bound that is not an integer >= 1', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new DeliveredIds(bad)).toThrow(/integer >= 1/)
  })
})

/** Feeds `ids` (in the new region's order) through `resume`, recording what the app is given. */
function run (resume: IdResume<string>, ids: Array<string | undefined>, app: string[]): Array<IdDecision<string>['kind']> {
  return ids.map((id, k) => {
    const item = id ?? `(no id ${k})`
    const decision = resume.offer(id, item)
    if (decision.kind === 'deliver') {
      app.push(item)
      resume.delivered(id)
    } else if (decision.kind === 'release') {
      app.push('RESET')
      for (const held of decision.held) {
        app.push(held)
        resume.delivered(held.startsWith('(') ? undefined : held)
      }
    }
    return decision.kind
  })
}

const range = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, k) => `e${from + k}`)

describe('IdResume: the anchor in the new region', () => {
  it('the new region behind: what the app has is dropped, then only the new events', () => {
    const resume = new IdResume<string>(100, 100)
    const app: string[] = []
    run(resume, range(1, 10), app) // region A
    resume.switched()
    expect(resume.seeking).toBe(true)
    // Region B had e1..e8 when the viewer arrived; e9, e10 then e11, e12 come live.
    run(resume, range(1, 12), app)
    expect(app).toEqual(range(1, 12))
  })

  it('the new region ahead: the events the viewer missed, in order, then live', () => {
    const resume = new IdResume<string>(100, 100)
    const app: string[] = []
    run(resume, range(1, 10), app)
    resume.switched()
    run(resume, range(1, 15), app)
    expect(app).toEqual(range(1, 15))
  })

  it('a viewer that joined late (last-3): the new region\'s older history is held, then dropped at the anchor', () => {
    const resume = new IdResume<string>(100, 100)
    const app: string[] = []
    run(resume, range(8, 10), app) // joined with last-3
    resume.switched()
    const kinds = run(resume, range(1, 12), app)
    expect(app).toEqual(range(8, 12))
    expect(kinds.slice(0, 8)).toEqual([...Array(7).fill('hold'), 'known'])
  })

  it('finds its place with a bound smaller than the feed: ids older than the bound are not needed', () => {
    const resume = new IdResume<string>(5, 50)
    const app: string[] = []
    run(resume, range(1, 40), app)
    resume.switched()
    run(resume, range(11, 45), app) // last-35 of a region 5 events ahead
    expect(app).toEqual(range(1, 45))
  })

  it('gives up when the new region holds none of the ids: a reset, then what it held, in order', () => {
    const resume = new IdResume<string>(100, 5)
    const app: string[] = []
    run(resume, range(1, 10), app)
    resume.switched()
    // The new region is ahead by more than it replays: e11..e20 are lost (older than its kept history).
    const kinds = run(resume, range(21, 27), app)
    expect(kinds).toEqual(['hold', 'hold', 'hold', 'hold', 'release', 'deliver', 'deliver'])
    expect(app).toEqual([...range(1, 10), 'RESET', ...range(21, 27)])
    expect(resume.seeking).toBe(false)
  })

  it('drops the same event from the same region again (a resend given a new seq)', () => {
    const resume = new IdResume<string>(100, 100)
    const app: string[] = []
    expect(run(resume, ['e1', 'e2', 'e1', 'e3'], app)).toEqual(['deliver', 'deliver', 'known', 'deliver'])
    expect(app).toEqual(['e1', 'e2', 'e3'])
  })

  it('with nothing delivered a switch seeks nothing: everything is delivered', () => {
    const resume = new IdResume<string>(100, 100)
    resume.switched()
    expect(resume.seeking).toBe(false)
    const app: string[] = []
    run(resume, range(1, 3), app)
    expect(app).toEqual(range(1, 3))
  })

  it('events without an id are held while seeking and delivered after the anchor; they cannot be matched', () => {
    const resume = new IdResume<string>(100, 100)
    const app: string[] = []
    run(resume, ['e1', undefined, 'e2'], app)
    resume.switched()
    expect(run(resume, ['e1', undefined, 'e2', undefined, 'e3'], app)).toEqual(['known', 'deliver', 'known', 'deliver', 'deliver'])
    expect(app).toEqual(['e1', '(no id 1)', 'e2', '(no id 1)', '(no id 3)', 'e3'])
  })

  it('a reset forgets the ids: the same events are delivered again from the start', () => {
    const resume = new IdResume<string>(100, 100)
    const app: string[] = []
    run(resume, range(1, 3), app)
    resume.reset()
    run(resume, range(1, 3), app)
    expect(app).toEqual([...range(1, 3), ...range(1, 3)])
  })

  it('a second switch while seeking drops what the first one held', () => {
    const resume = new IdResume<string>(100, 100)
    const app: string[] = []
    run(resume, range(5, 6), app)
    resume.switched()
    run(resume, range(1, 3), app) // region B, behind: held
    expect(resume.held).toBe(3)
    resume.switched()
    expect(resume.held).toBe(0)
    run(resume, range(1, 8), app) // region C
    expect(app).toEqual(range(5, 8))
  })
})

describe('regions of URLs', () => {
  it('regionList: one region for plain URLs, one list per region otherwise; errors name the region', () => {
    expect(regionList('mqtt://a')).toEqual([['mqtt://a']])
    expect(regionList(['mqtt://a', 'mqtt://b'])).toEqual([['mqtt://a', 'mqtt://b']])
    expect(regionList({ regions: [['mqtt://a1', 'mqtt://a2'], 'mqtt://b1'] })).toEqual([['mqtt://a1', 'mqtt://a2'], ['mqtt://b1']])
    expect(() => regionList({ regions: [] })).toThrow(/no region given/)
    expect(() => regionList({ regions: [['mqtt://a'], []] })).toThrow(/region 1: no broker URL given/)
    expect(() => regionList({ regions: [['mqtt://a'], ['mqtt://b', 'mqtt://u:pw@a']] })).not.toThrow()
    expect(() => regionList({ regions: [['mqtt://u:pw@a'], ['mqtt://u:pw@a']] })).toThrow('mqtt://u:***@a is listed in region 0 and region 1')
  })

  it('RegionRotation: URLs rotate within the region; regions round and round, each resuming where it was', () => {
    const keep = (): number => 0.999
    const r = new RegionRotation({ regions: [['a1', 'a2'], ['b1', 'b2'], ['c1']] }, keep)
    expect([r.count, r.region, r.current]).toEqual([3, 0, 'a1'])
    expect(r.next()).toBe('a2')
    expect(r.nextRegion()).toBe(1)
    expect([r.current, ...r.order]).toEqual(['b1', 'b1', 'b2'])
    expect(r.next()).toBe('b2')
    expect(r.nextRegion()).toBe(2)
    expect(r.next()).toBe('c1')
    expect(r.nextRegion()).toBe(0)
    expect(r.current).toBe('a2')
    expect(r.regions).toEqual([['a1', 'a2'], ['b1', 'b2'], ['c1']])
  })
})

/** A transport that is "connected" to one region at a time; acks at once; delivers synchronously. */
class RegionTransport implements FeedTransport {
  connected = true
  calls: string[] = []
  readonly #message = new Set<(topic: string, payload: Uint8Array | string) => void>()
  readonly #connection = new Set<(up: boolean) => void>()

  async subscribe (filter: string, qos: QoS): Promise<void> { this.calls.push(`sub ${filter} q${qos}`) }
  async unsubscribe (filter: string): Promise<void> { this.calls.push(`unsub ${filter}`) }
  onMessage (listener: (topic: string, payload: Uint8Array | string) => void): () => void {
    this.#message.add(listener)
    return () => { this.#message.delete(listener) }
  }

  onConnectionChange (listener: (up: boolean) => void): () => void {
    this.#connection.add(listener)
    return () => { this.#connection.delete(listener) }
  }

  send (topic: string, envelope: FeedEnvelope): void {
    for (const l of [...this.#message]) l(topic, JSON.stringify(envelope))
  }

  setConnected (up: boolean): void {
    this.connected = up
    for (const l of [...this.#connection]) l(up)
  }
}

const FEED = 'matches/regions/events'
const flush = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 0)) }
/** Event `eN` as region `epoch` stamps it at its own seq. */
const stamped = (epoch: string, seq: number, n: number): FeedEnvelope => ({ seq, epoch, ts: 0, data: { id: `e${n}`, n } })

describe('FeedSubscription across a region switch', () => {
  it('resumes by id in the other region: last-n there, each event once and in order, no reset, then its own seqs', async () => {
    const t = new RegionTransport()
    const got: number[] = []
    const resets: ResetNotice[] = []
    const sub = new FeedSubscription(FEED, t, { from: 'all', resumeById: { replay: 'last-50', deliveredIds: 100 } }, (e) => got.push((e.data as { n: number }).n))
    sub.on('reset', (r) => resets.push(r))
    sub.start()
    await flush()
    expect(t.calls).toEqual([`sub $replay/all/${FEED} q1`])
    // Region A numbers e1..e6 as seq 1..6.
    for (let n = 1; n <= 6; n++) t.send(`$replay/all/${FEED}`, stamped('A', n, n))
    t.setConnected(false)
    sub.changeRegion()
    expect(sub.position).toBeUndefined()
    t.calls = []
    t.setConnected(true)
    await flush()
    const filter = `$replay/last-50/${FEED}`
    expect(t.calls).toEqual([`unsub $replay/all/${FEED}`, `sub ${filter} q1`])
    // Region B's feed started later (seq 1 is e3) and is ahead: e3..e9 as seq 1..7.
    for (let n = 3; n <= 9; n++) t.send(filter, stamped('B', n - 2, n))
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(resets).toEqual([])
    expect(sub.position).toEqual({ seq: 7, epoch: 'B' })
    expect(sub.stats).toMatchObject({ delivered: 9, knownIds: 4, older: 0, regionSwitches: 1, resets: 0 })
    // A node of region B lost: it resumes by seq there, as within any region.
    t.setConnected(false)
    t.calls = []
    t.setConnected(true)
    await flush()
    expect(t.calls).toEqual([`unsub ${filter}`, `sub $replay/after-7@B/${FEED} q1`])
  })

  it('with nothing delivered before the switch, subscribes there as it would have at the start', async () => {
    const t = new RegionTransport()
    const sub = new FeedSubscription(FEED, t, { from: 'last-5', resumeById: { replay: 'all', deliveredIds: 10 } })
    sub.start()
    await flush()
    t.setConnected(false)
    sub.changeRegion()
    t.calls = []
    t.setConnected(true)
    await flush()
    expect(t.calls.at(-1)).toBe(`sub $replay/last-5/${FEED} q1`)
  })

  it('without resumeById a switch starts the feed over: a reset (region-changed), then $replay/all', async () => {
    const t = new RegionTransport()
    const resets: ResetNotice[] = []
    const sub = new FeedSubscription(FEED, t, { from: 'all' })
    sub.on('reset', (r) => resets.push(r))
    sub.start()
    await flush()
    t.send(`$replay/all/${FEED}`, stamped('A', 1, 1))
    t.setConnected(false)
    sub.changeRegion()
    expect(resets).toEqual([{ reset: true, epoch: null, reason: 'region-changed' }])
    t.calls = []
    t.setConnected(true)
    await flush()
    expect(t.calls.at(-1)).toBe(`sub $replay/all/${FEED} q1`)
  })

  it('a reset notice in the new region forgets the ids: the feed is delivered from the start again', async () => {
    const t = new RegionTransport()
    const got: number[] = []
    const sub = new FeedSubscription(FEED, t, { from: 'all', resumeById: { replay: 'last-10', deliveredIds: 10 } }, (e) => got.push((e.data as { n: number }).n))
    sub.start()
    await flush()
    for (let n = 1; n <= 3; n++) t.send(`$replay/all/${FEED}`, stamped('A', n, n))
    t.setConnected(false)
    sub.changeRegion()
    t.setConnected(true)
    await flush()
    const filter = `$replay/last-10/${FEED}`
    for (let n = 1; n <= 3; n++) t.send(filter, stamped('B', n, n))
    t.send(filter, { reset: true, epoch: 'B2', reason: 'epoch-changed' } as unknown as FeedEnvelope)
    for (let n = 1; n <= 4; n++) t.send(filter, stamped('B2', n, n))
    expect(got).toEqual([1, 2, 3, 1, 2, 3, 4])
  })
})
