/**
 * `--redis-min-replicas 1` against a real master and its one replica: with the replica stopped (SIGSTOP), a QoS 1
 * feed publish is not acknowledged and not delivered, nor is a QoS 0 one after it (Redis WAIT keeps counting 0
 * replicas); a warning says why. The replica back (SIGCONT): the PUBACK comes, the viewer gets both messages, in
 * order, nothing lost.
 */
import { Writable } from 'node:stream'
import { test, expect } from 'vitest'
import { pino } from 'pino'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { replicatedRedisForTest } from '../helpers/replicated-redis.js'

const FEED = 'matches/wait/events'
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

test('--redis-min-replicas 1, the replica stopped: nothing acknowledged or delivered; the replica back: acknowledged and delivered in order', async () => {
  const redis = await replicatedRedisForTest({ replicas: 1, sentinels: 0 })
  const logs: any[] = []
  const sink = new Writable({ write (chunk, _enc, cb) { logs.push(JSON.parse(chunk.toString())); cb() } })
  const node = await brokerForTest({ redis: redis.url, redisMinReplicas: 1, nodeId: 'node-0' }, pino({ level: 'info' }, sink))
  const viewer = await connect(node.tcpUrl)
  const got = collect(viewer)
  await viewer.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
  const pub = await connect(node.tcpUrl)
  await pub.publishAsync(FEED, '{"id":"a"}', { qos: 1 })
  await waitFor(() => got.length === 1, 'the first message')

  const replica = redis.servers[1]
  process.kill(replica.pid, 'SIGSTOP')
  onCleanup(() => { try { process.kill(replica.pid, 'SIGCONT') } catch {} })
  let ackedAt: number | null = null
  const held = pub.publishAsync(FEED, '{"id":"b"}', { qos: 1 }).then(() => { ackedAt = Date.now() })
  await pub.publishAsync(FEED, '{"id":"c"}', { qos: 0 })
  await sleep(3500)
  expect(ackedAt).toBeNull()
  expect(got.length).toBe(1)
  const warning = logs.find((l) => String(l.msg).startsWith('feed messages wait for Redis replicas'))
  expect(warning).toMatchObject({ wanted: 1, acknowledged: 0 })
  expect(logs.filter((l) => String(l.msg).startsWith('feed messages wait')).length).toBe(1) // at most one per 10 s

  process.kill(replica.pid, 'SIGCONT')
  const resumedAt = Date.now()
  await held
  console.log(`replica resumed: PUBACK ${String((ackedAt as number | null ?? Date.now()) - resumedAt)} ms later`)
  await waitFor(() => got.length === 3, 'both messages held during the stop')
  expect(got.map((m) => [m.json.seq, m.json.data.id])).toEqual([[1, 'a'], [2, 'b'], [3, 'c']])
  await waitFor(() => logs.some((l) => l.msg === 'feed messages reach enough Redis replicas again'), 'the recovery logged')
  // Every message is on the replica.
  const { Redis } = await import('ioredis')
  const onReplica = new Redis({ port: replica.port, host: '127.0.0.1' })
  onCleanup(() => { onReplica.disconnect() })
  expect(await onReplica.llen(`tribune:feed:{${FEED}}:log`)).toBe(3)
}, 40_000)
