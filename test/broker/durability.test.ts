// Tests whether a node restarted on the same data dir serves the same retained state and feed history.
import { describe, it, expect } from 'vitest'
import { startBroker } from '../../broker/src/main.js'
import { tempDir, onCleanup } from '../helpers/broker.js'
import mqtt from 'mqtt'
import { connect, collect, waitFor } from '../helpers/mqtt.js'

describe('durable store', () => {
  it('serves the same state and history after a restart on the same data dir', async () => {
    const dataDir = tempDir()
    const opts = { host: '127.0.0.1', port: 0, wsPort: 0, dataDir, logLevel: 'silent' as const }
    const first = await startBroker(opts)
    const pub = await connect(`mqtt://127.0.0.1:${first.tcpPort}`)
    for (let i = 1; i <= 7; i++) await pub.publishAsync('matches/a/events', JSON.stringify({ id: `g${i}`, i }), { qos: 1 })
    await pub.publishAsync('matches/a/state', JSON.stringify({ score: [2, 1] }), { qos: 1, retain: true })
    const before = await readAll(`mqtt://127.0.0.1:${first.tcpPort}`, 7)
    await pub.endAsync()
    await first.close()

    const second = await startBroker(opts)
    onCleanup(async () => await second.close())
    const after = await readAll(`mqtt://127.0.0.1:${second.tcpPort}`, 7)
    expect(after).toEqual(before)
    expect(after.state).toEqual({ score: [2, 1] })
    expect(after.feed.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7])

    // The sequence goes on where it stopped, in the same epoch.
    const pub2 = await connect(`mqtt://127.0.0.1:${second.tcpPort}`)
    const v = await connect(`mqtt://127.0.0.1:${second.tcpPort}`)
    const got = collect(v)
    await v.subscribeAsync(`$replay/last-1/matches/a/events`)
    await pub2.publishAsync('matches/a/events', JSON.stringify({ id: 'g8' }), { qos: 1 })
    await waitFor(() => got.length === 2, 'last + live')
    expect(got.map((m) => m.json.seq)).toEqual([7, 8])
    expect(got[1].json.epoch).toBe(before.feed[0].epoch)
  })

  it('a clean connect after a restart discards the persistent session its client id left before it', async () => {
    const dataDir = tempDir()
    const opts = { host: '127.0.0.1', port: 0, wsPort: 0, dataDir, logLevel: 'silent' as const }
    const first = await startBroker(opts)
    const url1 = `mqtt://127.0.0.1:${first.tcpPort}`
    const keeper = await connect(url1, { clientId: 'keeper', clean: false })
    await keeper.subscribeAsync('news/#', { qos: 1 })
    await keeper.endAsync()
    const pub = await connect(url1)
    await pub.publishAsync('news/1', 'queued for keeper', { qos: 1 })
    await pub.endAsync()
    await first.close()

    const second = await startBroker(opts)
    onCleanup(async () => await second.close())
    const url2 = `mqtt://127.0.0.1:${second.tcpPort}`
    // The id's state was written by the first run: the clean connect must delete it (MQTT 3.1.1 section 3.1.2.4).
    const clean = await connect(url2, { clientId: 'keeper', clean: true })
    const gotClean = collect(clean)
    await new Promise((resolve) => setTimeout(resolve, 200))
    await clean.endAsync()
    const again = await mqtt.connectAsync(url2, { clientId: 'keeper', clean: false, reconnectPeriod: 0 })
    onCleanup(async () => { await again.endAsync(true) })
    const gotAgain = collect(again)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(gotClean).toEqual([])
    expect(gotAgain).toEqual([])
    // The session it finds is new: its old subscription is gone, so a new publish does not reach it.
    const pub2 = await connect(url2)
    await pub2.publishAsync('news/2', 'not subscribed', { qos: 1 })
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(gotAgain).toEqual([])
  })
})

async function readAll (url: string, n: number): Promise<{ state: unknown, feed: any[] }> {
  const c = await connect(url)
  const got = collect(c)
  await c.subscribeAsync('matches/a/state')
  await c.subscribeAsync('$replay/all/matches/a/events')
  await waitFor(() => got.length === n + 1, 'state and history')
  await c.endAsync()
  return {
    state: got.find((m) => m.topic === 'matches/a/state')?.json,
    feed: got.filter((m) => m.topic.startsWith('$replay')).map((m) => m.json)
  }
}
