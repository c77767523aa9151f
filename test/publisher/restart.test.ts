// Tests whether a Publisher loses nothing and duplicates nothing that was acknowledged when the Tribune broker restarts
// under it: events are published one after another while the broker is stopped and started again twice on the same port
// and data dir; the feed must end with every event once, in publish order, as seq 1..n.
import net, { type AddressInfo } from 'node:net'
import { describe, it, expect } from 'vitest'
import { startBroker, type BrokerNode } from '../../broker/src/main.js'
import { Publisher } from '../../publisher/src/index.js'
import { tempDir, onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'

async function freePort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address() as AddressInfo
  await new Promise((resolve) => s.close(resolve))
  return port
}

describe('publisher across broker restarts', () => {
  it('ends with every acknowledged event once and in order', async () => {
    const dataDir = tempDir()
    const port = await freePort()
    const opts = { host: '127.0.0.1', port, wsPort: 0, dataDir, logLevel: 'silent' as const }
    let node: BrokerNode = await startBroker(opts)
    onCleanup(async () => await node.close())
    const pub = await Publisher.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 50 })
    onCleanup(async () => await pub.close())
    const N = 150
    let restarts = 0
    let acked = 0
    const restarting = (async () => {
      for (const at of [40, 100]) {
        await waitFor(() => acked >= at, `${at} acknowledged`)
        await node.close()
        await new Promise((resolve) => setTimeout(resolve, 150))
        node = await startBroker(opts)
        restarts++
      }
    })()
    for (let i = 1; i <= N; i++) {
      await pub.publishEvent('matches/r/events', { id: `ev-${i}`, i })
      acked++
    }
    await restarting
    expect(restarts).toBe(2)
    const v = await connect(`mqtt://127.0.0.1:${port}`)
    const got = collect(v)
    await v.subscribeAsync('$replay/all/matches/r/events', { qos: 1 })
    await waitFor(() => got.length >= N, `${N} events`)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(got.map((m) => m.json.data.id)).toEqual(Array.from({ length: N }, (_, k) => `ev-${k + 1}`))
    expect(got.map((m) => m.json.seq)).toEqual(Array.from({ length: N }, (_, k) => k + 1))
    expect(new Set(got.map((m) => m.json.epoch)).size).toBe(1)
  })
})
