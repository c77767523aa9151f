// Tests that the embedded store forgets a clean-session client id once the state it had (a will) is gone, so the
// ids it tracks do not grow with every viewer that ever set a will (found by an attack run).
import { describe, it, expect } from 'vitest'
import mqtt from 'mqtt'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'

describe('embedded store: ids with state', () => {
  it('tracks a clean client with a will only while the will is stored', async () => {
    const node = await brokerForTest()
    const store = (node.aedes as unknown as { persistence: { trackedIds: number } }).persistence
    expect(store.trackedIds).toBe(0)
    const watcher = await connect(node.tcpUrl)
    const wills = collect(watcher)
    await watcher.subscribeAsync('gone/#')
    const polite = await Promise.all(Array.from({ length: 20 }, async (_, i) => await connect(node.tcpUrl, { clientId: `polite-${i}`, will: { topic: `gone/${i}`, payload: Buffer.from('x'), qos: 0, retain: false } })))
    expect(store.trackedIds).toBe(20)
    await Promise.all(polite.map(async (c) => await c.endAsync())) // DISCONNECT: the will is deleted, not published
    await waitFor(() => store.trackedIds === 0, 'the ids of the clients that left')
    const rude = await Promise.all(Array.from({ length: 5 }, async (_, i) => await connect(node.tcpUrl, { clientId: `rude-${i}`, will: { topic: `gone/rude-${i}`, payload: Buffer.from('y'), qos: 0, retain: false } })))
    for (const c of rude) c.stream.destroy() // no DISCONNECT: the will is published, then deleted
    await waitFor(() => wills.length === 5 && store.trackedIds === 0, 'the wills published and the ids forgotten')
    expect(wills.map((w) => w.topic).sort()).toEqual(['gone/rude-0', 'gone/rude-1', 'gone/rude-2', 'gone/rude-3', 'gone/rude-4'])
  })
})

// A persistent session's queue in the embedded store: at most MAX_QUEUED_PER_SESSION messages while it is offline
// (as Mosquitto's max_queued_messages), more while it is connected, where aedes stores each message it sends it before
// the PUBACK (found by an attack run: a viewer joining two feeds of 600 messages was disconnected at 1,000 and lost 200).
describe('embedded store: queue of a persistent session', () => {
  it('lets a connected persistent viewer take two feeds of 600 messages, all of them, without being closed', async () => {
    const node = await brokerForTest()
    const pub = await connect(node.tcpUrl)
    for (const feed of ['matches/p1/events', 'matches/p2/events']) {
      await Promise.all(Array.from({ length: 600 }, async (_, i) => await pub.publishAsync(feed, JSON.stringify({ i }), { qos: 1 })))
    }
    const viewer = await connect(node.tcpUrl, { clientId: 'keeper', clean: false })
    let closed = 0
    viewer.on('close', () => { closed++ })
    const got = collect(viewer)
    await viewer.subscribeAsync({ '$replay/all/matches/p1/events': { qos: 1 }, '$replay/all/matches/p2/events': { qos: 1 } })
    await waitFor(() => got.length >= 1200, '1,200 messages', 30_000)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(new Set(got.map((m) => `${m.topic} ${String(m.json.seq)}`)).size).toBe(1200)
    expect(got.length).toBe(1200)
    expect(closed).toBe(0)
  }, 60_000)

  it('keeps at most 1,000 messages for a persistent session while it is offline', async () => {
    const node = await brokerForTest()
    const keeper = await connect(node.tcpUrl, { clientId: 'away', clean: false })
    await keeper.subscribeAsync('news/#', { qos: 1 })
    await keeper.endAsync()
    const pub = await connect(node.tcpUrl)
    await Promise.all(Array.from({ length: 1100 }, async (_, i) => await pub.publishAsync(`news/${i}`, String(i), { qos: 1 })))
    const back = mqtt.connect(node.tcpUrl, { clientId: 'away', clean: false, reconnectPeriod: 0 })
    onCleanup(async () => { await back.endAsync(true) })
    const got = collect(back) // before CONNACK: the queued messages come right behind it
    await waitFor(() => got.length >= 1000, 'the queued messages', 30_000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(got.length).toBe(1000) // the first 1,000; the rest were dropped while it was away
    expect(node.stats().sessions.queueDrops).toBe(100) // and counted (tribune_session_queue_dropped_total)
    expect(got.map((m) => m.topic).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))).toEqual(Array.from({ length: 1000 }, (_, i) => `news/${i}`))
  }, 60_000)
})
