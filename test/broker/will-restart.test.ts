/**
 * Tests whether the will of a client (MQTT 3.1.1 section 3.1.2.5) survives its node's crash on the embedded store:
 * `tribune broker --node-id fixed --data-dir D` is killed (SIGKILL) while the client is connected and started again at
 * once with the same command; the new run publishes the will at start, once. Started under another node id, it does
 * the same (aedes' own sweep would publish it only after 4 heartbeat intervals, 20 s by default). A persistent session
 * subscribed to the will's topic receives it (queued for it at start) when it comes back.
 */
import { test, expect } from 'vitest'
import { tempDir } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { spawnBroker, listening } from '../helpers/process.js'

/** ms between heartbeats: aedes' own will sweep runs every 4 of them, so a second copy would come within a second. */
const HEARTBEAT = 250

test.each([
  ['the same node id', ['--node-id', 'fixed'], ['--node-id', 'fixed', '--heartbeat-interval', String(HEARTBEAT)]],
  ['another node id, default heartbeat interval', ['--node-id', 'before'], ['--node-id', 'after']]
])('a node killed and started again at once on the same data dir under %s publishes its earlier run\'s will at start, once', async (_name, firstArgs, secondArgs) => {
  const dir = tempDir()
  const first = spawnBroker(['--data-dir', dir, '--heartbeat-interval', String(HEARTBEAT), ...firstArgs])
  const { tcp: port1 } = await listening(first, 'the first run listening')
  const watcher = await connect(`mqtt://127.0.0.1:${port1}`, { clientId: 'watcher', clean: false })
  await watcher.subscribeAsync('clients/+/status', { qos: 1 })
  await watcher.endAsync()
  const tv = await connect(`mqtt://127.0.0.1:${port1}`, { clientId: 'tv-1', will: { topic: 'clients/tv-1/status', payload: Buffer.from('gone'), qos: 1, retain: false } })
  tv.on('error', () => {})
  first.child.kill('SIGKILL')
  await first.exited

  const second = spawnBroker(['--data-dir', dir, ...secondArgs])
  const { tcp: port2 } = await listening(second, 'the second run listening')
  const back = await connect(`mqtt://127.0.0.1:${port2}`, { clientId: 'watcher', clean: false })
  const got = collect(back)
  await waitFor(() => got.length > 0, 'the will', 3000)
  await new Promise((resolve) => setTimeout(resolve, 6 * HEARTBEAT)) // a sweep would publish a second copy by now
  const pub = await connect(`mqtt://127.0.0.1:${port2}`)
  await pub.publishAsync('clients/marker/status', 'marker', { qos: 1 })
  await waitFor(() => got.some((m) => m.topic === 'clients/marker/status'), 'the marker')
  expect(got.map((m) => m.topic)).toEqual(['clients/tv-1/status', 'clients/marker/status'])
  expect(second.lines().filter((l) => l.msg === 'published the will of a client of an earlier run of this node').map((l) => l.clientId)).toEqual(['tv-1'])
}, 30_000)
