/**
 * MQTT 3.1.1 section 3.1.2.5: the will of a client whose node dies is published by another node. Nodes hear each
 * other's heartbeats; a node silent for 3 heartbeat intervals is dead, and the others sweep wills every 4 intervals,
 * so a will follows the death within 7 heartbeat intervals (35 s with the default 5 s).
 */
import type { ChildProcess } from 'node:child_process'
import { test, expect } from 'vitest'
import { onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest } from '../helpers/cluster.js'
import { spawnBroker, listening } from '../helpers/process.js'

const HEARTBEAT = 250

/** Starts `tribune broker` as a child process in the cluster; resolves with it and its MQTT port. */
async function spawnNode (redisUrl: string, id: string): Promise<{ child: ChildProcess, port: number }> {
  const run = spawnBroker(['--redis', redisUrl, '--node-id', id, '--heartbeat-interval', String(HEARTBEAT)])
  return { child: run.child, port: (await listening(run, `node ${id} listening`)).tcp }
}

test('the will of a client on a node that is killed is published once, by one of the other nodes, within 7 heartbeats', async () => {
  const redis = await redisForTest()
  const [survivor] = await clusterForTest(redis.url, 3, { heartbeatInterval: HEARTBEAT })
  const watcher = await connect(survivor.tcpUrl)
  const got = collect(watcher)
  await watcher.subscribeAsync('clients/+/status', { qos: 1 })

  const { child, port } = await spawnNode(redis.url, 'doomed')
  const tv = await connect(`mqtt://127.0.0.1:${port}`, { clientId: 'tv-1', will: { topic: 'clients/tv-1/status', payload: Buffer.from('gone'), qos: 1, retain: false } })
  tv.on('error', () => {})
  await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT)) // the survivor has heard the doomed node's heartbeats
  expect(got).toHaveLength(0)

  const died = Date.now()
  child.kill('SIGKILL')
  await waitFor(() => got.length > 0, 'the will, published by the survivor', 7 * HEARTBEAT + 3000)
  const after = Date.now() - died
  await new Promise((resolve) => setTimeout(resolve, 5 * HEARTBEAT))
  expect(got.map((m) => m.topic)).toEqual(['clients/tv-1/status'])
  expect(after).toBeLessThanOrEqual(7 * HEARTBEAT + 1000)
  console.log(`will published ${after} ms after the node died (heartbeat ${HEARTBEAT} ms, bound ${7 * HEARTBEAT} ms)`)
}, 30_000)

test('a node killed and started again at once under the same id publishes its earlier run\'s wills at start', async () => {
  const redis = await redisForTest()
  // The survivor's own interval is long: it would take the node for dead only after 3 of them (6 s), long after the new
  // run, which waits at most its lease's 3 x 250 ms, has started and published the will itself.
  const [survivor] = await clusterForTest(redis.url, 1, { heartbeatInterval: 2000 })
  const watcher = await connect(survivor.tcpUrl)
  const got = collect(watcher)
  await watcher.subscribeAsync('clients/+/status', { qos: 1 })
  const first = await spawnNode(redis.url, 'phoenix')
  const tv = await connect(`mqtt://127.0.0.1:${first.port}`, { clientId: 'tv-2', will: { topic: 'clients/tv-2/status', payload: Buffer.from('gone'), qos: 1, retain: false } })
  tv.on('error', () => {})
  await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT))
  first.child.kill('SIGKILL')
  await spawnNode(redis.url, 'phoenix') // back before the survivor could notice the death
  await waitFor(() => got.length > 0, 'the will, published by the node\'s new run', 5000)
  await new Promise((resolve) => setTimeout(resolve, 8 * HEARTBEAT))
  expect(got.map((m) => m.topic)).toEqual(['clients/tv-2/status'])
}, 30_000)
