// Tests that the embedded store forgets a clean-session client id once the state it had (a will) is gone, so the
// ids it tracks do not grow with every viewer that ever set a will (found by an attack run).
import { describe, it, expect } from 'vitest'
import { brokerForTest } from '../helpers/broker.js'
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
