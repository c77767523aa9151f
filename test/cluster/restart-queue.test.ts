/**
 * Tests whether QoS 1 messages queued in Redis for an offline persistent session (clean session off) survive their
 * node's crash and a restart under the same --node-id: aedes names a stored message `<node id>:<counter>`, and its
 * counter restarted at 0 with each run, so the new run's messages took the names, and overwrote the stored copies,
 * of the earlier run's. The session must get every message once, in order. A real node process, killed with SIGKILL.
 */
import { test, expect } from 'vitest'
import mqtt from 'mqtt'
import { onCleanup } from '../helpers/broker.js'
import { connect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { spawnBroker, listening } from '../helpers/process.js'

/** ms between heartbeats: the dead run's lease on the id (3 of them) expires soon, so the restart waits little. */
const HEARTBEAT = 250
const AFTER = 10

test('messages queued for an offline session before kill -9 and after a restart under the same node id all arrive, once, in order', async () => {
  const redis = await redisForTest()
  const args = ['--redis', redis.url, '--node-id', 'fixed', '--heartbeat-interval', String(HEARTBEAT)]
  const first = spawnBroker(args)
  const { tcp: port1 } = await listening(first, 'the first run listening')
  const url1 = `mqtt://127.0.0.1:${port1}`
  const keeper = await connect(url1, { clientId: 'keeper', clean: false })
  await keeper.subscribeAsync('news/#', { qos: 1 })
  await keeper.endAsync()
  const pub1 = await connect(url1)
  for (let i = 1; i <= 3; i++) await pub1.publishAsync(`news/${i}`, `before-${i}`, { qos: 1 })
  // aedes sends the PUBACK of a plain topic's message before it queues it: kill once the three are queued.
  const r = redis.client()
  for (let tries = 0; await r.llen('tribune:outgoing:keeper') < 3; tries++) {
    if (tries > 500) throw new Error('the three messages were never queued')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  first.child.kill('SIGKILL')
  await first.exited

  const second = spawnBroker(args)
  const { tcp: port2 } = await listening(second, 'the second run listening', 15_000)
  const url2 = `mqtt://127.0.0.1:${port2}`
  const pub2 = await connect(url2)
  // Enough messages for the new run's counter to pass the earlier run's (a few $SYS notices apart).
  for (let i = 1; i <= AFTER; i++) await pub2.publishAsync(`news/${i}`, `after-${i}`, { qos: 1 })

  // The listener is on before the CONNACK: the queued messages may come in the same read.
  const back = mqtt.connect(url2, { clientId: 'keeper', clean: false, reconnectPeriod: 0 })
  onCleanup(async () => { await back.endAsync(true) })
  const got: string[] = []
  back.on('message', (_topic, payload) => got.push(payload.toString()))
  await new Promise((resolve, reject) => back.once('connect', resolve).once('error', reject))
  await pub2.publishAsync('news/marker', 'marker', { qos: 1 })
  await waitFor(() => got.includes('marker'), 'the marker')
  expect(got).toEqual(['before-1', 'before-2', 'before-3', ...Array.from({ length: AFTER }, (_, i) => `after-${i + 1}`), 'marker'])
}, 60_000)
