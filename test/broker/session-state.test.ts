// Tests that the embedded store forgets a clean-session client id once the state it had (a will) is gone, so the
// ids it tracks do not grow with every viewer that ever set a will (found by an attack run).
import { describe, it, expect } from 'vitest'
import { readFileSync } from 'node:fs'
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

  it('spares a clean viewer whose id never had state aedes\' outgoing-queue pipeline at connect, not an id with a session', async () => {
    // patches/aedes+1.2.0.patch, applied by `npm ci` (postinstall: patch-package)
    const connectJs = readFileSync(new URL('../../node_modules/aedes/lib/handlers/connect.js', import.meta.url), 'utf8')
    expect(connectJs).toContain('!persistence.hasOutgoing(client)')
    const node = await brokerForTest()
    const store = (node.aedes as unknown as { persistence: { hasOutgoing: (c: { id: string, clean: boolean }) => boolean } }).persistence
    expect(store.hasOutgoing({ id: 'viewer', clean: true })).toBe(false)
    const keeper = await connect(node.tcpUrl, { clientId: 'keeper', clean: false })
    await keeper.subscribeAsync('news/#', { qos: 1 })
    await keeper.endAsync()
    expect(store.hasOutgoing({ id: 'keeper', clean: false })).toBe(true)
    expect(store.hasOutgoing({ id: 'keeper', clean: true })).toBe(true) // its queue must be cleared at a clean connect
    const viewer = await connect(node.tcpUrl, { clientId: 'viewer' })
    const got = collect(viewer)
    await viewer.subscribeAsync('news/#')
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync('news/1', 'hello', { qos: 1 })
    await waitFor(() => got.length === 1, 'the message, on a connection that skipped the pipeline')
  })
})
