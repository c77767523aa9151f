/**
 * The Publisher with several regions, against independent in-process aedes brokers (one per region) whose listeners
 * can be taken down: every message reaches every region in publish order; a region that is down neither blocks the
 * publishes (they resolve on the other region's PUBACK) nor loses its messages (its queue sends them, in order, when
 * it is back); the first connect resolves on the first region up; a full queue drops its oldest message for that region
 * only; events without an id are refused; close() does not wait for a dead region.
 */
import { describe, expect, it } from 'vitest'
import { Publisher, PublisherClosedError, RegionQueueFullError, type ReconnectInfo } from '../../publisher/src/index.js'
import { closedPort, connackRefuser } from '../client/refusers.js'
import { connectPublisher, settledWithin, startBroker, subscriber, waitFor } from './aedes.js'

const keepOrder = (): number => 0.999
/** Resolves true if `p` settles within `ms`, false otherwise (without waiting longer). */
const within = async (p: Promise<unknown>, ms: number): Promise<boolean> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, ms) })
  try {
    return await Promise.race([p.then(() => true, () => true), late])
  } finally {
    clearTimeout(timer)
  }
}
const ids = (got: Array<{ json: any }>): string[] => got.map((m) => m.json.id)

describe('Publisher with several regions', () => {
  it('publishes every message to each region, in order; a region down does not block, and gets what it missed when back', async () => {
    const a = await startBroker(2) // region A: two nodes (listeners of one broker)
    const b = await startBroker(2) // region B: the publisher's node, and one that stays up for the subscriber
    const subA = await subscriber(a.listeners[1].url)
    const subB = await subscriber(b.listeners[1].url)
    const changes: Array<[boolean, number]> = []
    const moves: ReconnectInfo[] = []
    const pub = await connectPublisher({ regions: [[a.listeners[0].url, a.listeners[1].url], [b.listeners[0].url]] }, {
      random: keepOrder,
      onConnectionChange: (up, region) => changes.push([up, region]),
      onReconnecting: (info) => moves.push(info)
    })
    await waitFor(() => pub.regions.every((r) => r.connected), 'both regions up') // connect resolved on the first one
    expect(pub.regions.map((r) => [r.index, r.urls, r.connected])).toEqual([
      [0, [a.listeners[0].url, a.listeners[1].url], true], [1, [b.listeners[0].url], true]
    ])
    for (let i = 1; i <= 3; i++) await pub.publishEvent('matches/m/events', { id: `e${i}` })
    await pub.drain()
    await waitFor(() => subA.got.length === 3 && subB.got.length === 3, 'e1..e3 in both regions')

    // Region B goes away: publishes resolve on region A's PUBACK, region B's copies wait in its queue.
    await b.listeners[0].down()
    await waitFor(() => !pub.regions[1].connected, 'region B lost')
    for (let i = 4; i <= 40; i++) {
      const sent = pub.publishEvent('matches/m/events', { id: `e${i}` })
      expect(await within(sent, 1000)).toBe(true)
      if (i % 10 === 0) await pub.setState('matches/m/state', { id: 'm', at: i })
    }
    expect(pub.inFlight).toBe(0)
    expect(pub.regions[1].queued).toBe(37 + 4) // events e4..e40 and 4 states
    expect(await settledWithin(pub.drain(), 300)).toBe(false)
    await waitFor(() => subA.got.length === 44, 'region A has everything')

    await b.listeners[0].up()
    await pub.drain()
    expect(pub.regions.map((r) => r.queued)).toEqual([0, 0])
    await waitFor(() => subB.got.length === 44, 'region B caught up')
    expect(subB.got.map((m) => `${m.topic} ${String(m.json.id)}`)).toEqual(subA.got.map((m) => `${m.topic} ${String(m.json.id)}`))
    expect(ids(subB.got).filter((id) => id !== 'm')).toEqual(Array.from({ length: 40 }, (_, k) => `e${k + 1}`))
    expect(changes).toEqual([[false, 1], [true, 1]])
    expect(moves.every((m) => m.region === 1)).toBe(true)
  })

  it('first connect: resolves on the region that is up; the dead one keeps trying and gets every message when it comes', async () => {
    const a = await startBroker(1)
    const b = await startBroker(2) // its second listener stays up for the subscriber
    await b.listeners[0].down()
    const subA = await subscriber(a.listeners[0].url)
    const subB = await subscriber(b.listeners[1].url)
    const pub = await connectPublisher({ regions: [b.listeners[0].url, a.listeners[0].url] })
    expect(pub.regions.map((r) => r.connected)).toEqual([false, true])
    for (let i = 1; i <= 5; i++) await pub.publishEvent('matches/m/events', { id: `e${i}` })
    await waitFor(() => subA.got.length === 5, 'region 1')
    expect(pub.regions[0].queued).toBe(5)
    expect(subB.got).toEqual([])
    await b.listeners[0].up()
    await pub.drain()
    await pub.publishEvent('matches/m/events', { id: 'e6' })
    await waitFor(() => subB.got.length === 6, 'e1..e6 in region 0')
    expect(ids(subB.got)).toEqual(['e1', 'e2', 'e3', 'e4', 'e5', 'e6'])
    expect(pub.regions.map((r) => r.queued)).toEqual([0, 0])
  })

  it('first connect: every region down rejects with each region\'s error; a refused login rejects at once', async () => {
    const [x, y] = [`mqtt://127.0.0.1:${await closedPort()}`, `mqtt://127.0.0.1:${await closedPort()}`]
    const err = await Publisher.connect({ regions: [[x], [y]] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AggregateError)
    expect((err as Error).message).toMatch(/^no region accepted the connection: region 0: .*ECONNREFUSED.*; region 1: .*ECONNREFUSED/)
    const notAuthorized = await connackRefuser(5)
    await expect(Publisher.connect({ regions: [[notAuthorized.url], [x]] })).rejects.toThrow('Connection refused: Not authorized')
    await expect(Publisher.connect({ regions: [] })).rejects.toThrow(/no region given/)
    await expect(Publisher.connect({ regions: [[x], [x]] })).rejects.toThrow(/listed in region 0 and region 1/)
    await expect(Publisher.connect({ regions: [[x], ['http://h']] })).rejects.toThrow(/unsupported protocol "http:"/)
    await expect(Publisher.connect({ regions: [[x], [y]] }, { maxQueued: 0 })).rejects.toThrow(/maxQueued must be an integer >= 1/)
  })

  it('refuses an event without a string id (viewers match events across regions by it); states need none', async () => {
    const a = await startBroker(1)
    const b = await startBroker(1)
    const pub = await connectPublisher({ regions: [a.listeners[0].url, b.listeners[0].url] })
    await expect(pub.publishEvent('matches/m/events', { type: 'goal' })).rejects.toThrow(/every event needs a non-empty string "id"/)
    await expect(pub.publishEvent('matches/m/events', { id: 7 })).rejects.toThrow(TypeError)
    await pub.setState('matches/m/state', { status: 'live' })
    // One region: as before regions existed, an id is advised, not required.
    const one = await connectPublisher(a.listeners[0].url)
    await one.publishEvent('matches/m/events', { type: 'goal' })
  })

  it('a full queue drops its oldest waiting message for that region only, and says so once', async () => {
    const a = await startBroker(1)
    const b = await startBroker(2)
    const subA = await subscriber(a.listeners[0].url)
    const subB = await subscriber(b.listeners[1].url)
    const errors: Array<[Error, number]> = []
    await b.listeners[0].down() // before connecting: no message of region 1 is on the wire when its queue fills
    const pub = await connectPublisher({ regions: [a.listeners[0].url, b.listeners[0].url] }, { maxQueued: 3, onError: (e, r) => errors.push([e, r]) })
    for (let i = 1; i <= 6; i++) await pub.publishEvent('matches/m/events', { id: `e${i}` })
    await waitFor(() => subA.got.length === 6, 'region 0 has all six')
    expect(pub.regions[1].queued).toBe(3)
    const drops = errors.filter(([e]) => e instanceof RegionQueueFullError)
    expect(drops).toHaveLength(1)
    expect(drops[0][1]).toBe(1)
    expect(drops[0][0].message).toMatch(/^region 1 has 3 messages waiting for it/)
    await b.listeners[0].up()
    await pub.drain()
    await pub.publishEvent('matches/m/events', { id: 'e7' })
    await waitFor(() => subB.got.length === 4, 'e4..e7 in region 1')
    expect(ids(subB.got)).toEqual(['e4', 'e5', 'e6', 'e7'])
  })

  it('close() does not wait for a dead region: what it has not acknowledged is given up, the rest was resolved', async () => {
    const a = await startBroker(1)
    const b = await startBroker(1)
    const pub = await Publisher.connect({ regions: [a.listeners[0].url, b.listeners[0].url] }, { reconnectPeriod: 100 })
    await b.listeners[0].down()
    await waitFor(() => !pub.regions[1].connected, 'region 1 lost')
    await pub.publishEvent('matches/m/events', { id: 'e1' })
    const drained = pub.drain()
    expect(await settledWithin(pub.close(), 500)).toBe(true)
    expect(await settledWithin(drained, 100)).toBe(true)
    await expect(pub.publishEvent('matches/m/events', { id: 'e2' })).rejects.toThrow(PublisherClosedError)
  })
})
