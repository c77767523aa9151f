/**
 * `--redis-min-replicas 1` against real Redis servers:
 *  - a master and its one replica: with the replica stopped (SIGSTOP), a QoS 1 feed publish is not acknowledged and
 *    not delivered, nor is a QoS 0 one after it (Redis WAIT keeps counting 0 replicas); a warning says why. The
 *    replica back (SIGCONT): the PUBACK comes, the viewer gets both messages, in order, nothing lost;
 *  - the connection blocked in WAIT cut (CLIENT KILL): the append is written again on the new connection and found
 *    held (its data `id`); one entry, delivered once;
 *  - a failover while a WAIT waits, to a replica that never got the append (the node reaches Redis through a TCP
 *    proxy switched to the promoted replica, as behind a floating address): the append is written again there, so
 *    the message is neither acknowledged while lost nor given a seq the new master hands out again;
 *  - 500 publishes in flight over 5 feeds: all acknowledged, each feed in publish order, one WAIT for several appends.
 */
import net from 'node:net'
import { Writable } from 'node:stream'
import { test, expect } from 'vitest'
import { pino } from 'pino'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { replicatedRedisForTest } from '../helpers/replicated-redis.js'

const FEED = 'matches/wait/events'
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A master and one replica, a node with `--redis-min-replicas 1` (its log lines kept), a `$replay` viewer and a
 * publisher whose first message ("a") is delivered; then the replica stopped (SIGSTOP, resumed after the test).
 */
async function replicaStopped (): Promise<{ redis: Awaited<ReturnType<typeof replicatedRedisForTest>>, logs: any[], got: ReturnType<typeof collect>, pub: Awaited<ReturnType<typeof connect>>, replica: Awaited<ReturnType<typeof replicatedRedisForTest>>['servers'][number] }> {
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
  return { redis, logs, got, pub, replica }
}

test('--redis-min-replicas 1, the replica stopped: nothing acknowledged or delivered; the replica back: acknowledged and delivered in order', async () => {
  const { redis, logs, got, pub, replica } = await replicaStopped()
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

test('the appends connection cut while its WAIT waits: the append is written again, found held (its data id), acknowledged once on the replica, delivered once', async () => {
  const { redis, logs, got, pub, replica } = await replicaStopped()
  let ackedAt: number | null = null
  const held = pub.publishAsync(FEED, '{"id":"b"}', { qos: 1 }).then(() => { ackedAt = Date.now() })
  const { Redis } = await import('ioredis')
  const master = new Redis({ port: redis.servers[0].port, host: '127.0.0.1' })
  onCleanup(() => { master.disconnect() })
  // The connection blocked in WAIT is cut (CLIENT KILL): the WAIT goes again on a new connection, which made no write.
  let killed = 0
  await waitFor(() => {
    void master.call('CLIENT', 'LIST').then(async (list) => {
      const ids = [...String(list).matchAll(/^id=(\d+) .* cmd=wait\b/gm)].map((m) => m[1])
      for (const id of ids) killed += Number(await master.call('CLIENT', 'KILL', 'ID', id))
    })
    return killed > 0
  }, 'the appends connection blocked in WAIT')
  await waitFor(() => logs.some((l) => String(l.msg).startsWith('the Redis connection of feed appends was made again')), 'the append written again')
  await sleep(1500)
  expect(ackedAt).toBeNull()
  expect(got.length).toBe(1)

  process.kill(replica.pid, 'SIGCONT')
  await held
  await waitFor(() => got.length === 2, 'the message')
  await sleep(300)
  expect(got.map((m) => [m.json.seq, m.json.data.id])).toEqual([[1, 'a'], [2, 'b']])
  expect(await master.llen(`tribune:feed:{${FEED}}:log`)).toBe(2)
}, 40_000)

/** A TCP proxy on a free port to `target`; `switchTo` sends new connections elsewhere (those open stay). */
async function tcpProxy (target: number): Promise<{ port: number, switchTo: (port: number) => void }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((down) => {
    const up = net.connect(target, '127.0.0.1')
    sockets.add(down).add(up)
    const end = (): void => { down.destroy(); up.destroy(); sockets.delete(down); sockets.delete(up) }
    down.on('error', end).on('close', end)
    up.on('error', end).on('close', end)
    down.pipe(up)
    up.pipe(down)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onCleanup(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { port: (server.address() as net.AddressInfo).port, switchTo: (port) => { target = port } }
}

test('a failover while a WAIT waits, to a replica without the append: written again on the new master, acknowledged and delivered once, the next message not lost', async () => {
  const redis = await replicatedRedisForTest({ replicas: 2, sentinels: 0 })
  const [master, r1, r2] = redis.servers
  const proxy = await tcpProxy(master.port)
  const node = await brokerForTest({ redis: `redis://127.0.0.1:${proxy.port}`, redisMinReplicas: 1, nodeId: 'node-0' })
  const viewer = await connect(node.tcpUrl)
  const got = collect(viewer)
  await viewer.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
  const pub = await connect(node.tcpUrl)
  await pub.publishAsync(FEED, '{"id":"a"}', { qos: 1 })
  await waitFor(() => got.length === 1, 'the first message')
  const { Redis } = await import('ioredis')
  const admin = (port: number): InstanceType<typeof Redis> => {
    const c = new Redis({ port, host: '127.0.0.1' })
    onCleanup(() => { c.disconnect() })
    return c
  }
  // r1 leaves the master with the history so far (it is the one promoted below); r2 is stopped: "b" reaches no replica.
  await admin(r1.port).replicaof('NO', 'ONE')
  process.kill(r2.pid, 'SIGSTOP')
  onCleanup(() => { try { process.kill(r2.pid, 'SIGCONT') } catch {} })
  let acked = false
  const held = pub.publishAsync(FEED, '{"id":"b"}', { qos: 1 }).then(() => { acked = true })
  await sleep(500)
  expect(acked).toBe(false) // "b" is on the master, its WAIT waiting

  // The failover: the master dies, r1 is the master now and r2 its replica, the address leads to r1.
  proxy.switchTo(r1.port)
  await master.kill()
  process.kill(r2.pid, 'SIGCONT')
  await admin(r2.port).replicaof('127.0.0.1', String(r1.port))
  await held
  await pub.publishAsync(FEED, '{"id":"c"}', { qos: 1 })
  await waitFor(() => got.length === 3, 'b and c')
  await sleep(300)
  expect(got.map((m) => [m.json.seq, m.json.data.id])).toEqual([[1, 'a'], [2, 'b'], [3, 'c']])
  const onR1 = admin(r1.port)
  expect((await onR1.lrange(`tribune:feed:{${FEED}}:log`, 0, -1)).map((e) => JSON.parse(e).data.id)).toEqual(['a', 'b', 'c'])
}, 40_000)

test('500 QoS 1 publishes in flight over 5 feeds with --redis-min-replicas 1: all acknowledged, each feed in publish order, fewer WAITs than appends', async () => {
  const redis = await replicatedRedisForTest({ replicas: 2, sentinels: 0 })
  const node = await brokerForTest({ redis: redis.url, redisMinReplicas: 1, nodeId: 'node-0' })
  const viewer = await connect(node.tcpUrl)
  const got = collect(viewer)
  const feeds = Array.from({ length: 5 }, (_, f) => `matches/many-${f}/events`)
  for (const feed of feeds) await viewer.subscribeAsync(`$replay/all/${feed}`, { qos: 1 })
  const { Redis } = await import('ioredis')
  const master = new Redis({ port: redis.servers[0].port, host: '127.0.0.1' })
  onCleanup(() => { master.disconnect() })
  const waits = async (): Promise<number> => Number(/cmdstat_wait:calls=(\d+)/.exec(await master.info('commandstats'))?.[1] ?? 0)
  const before = await waits()
  const pub = await connect(node.tcpUrl)
  await Promise.all(Array.from({ length: 500 }, async (_, i) => await pub.publishAsync(feeds[i % 5], JSON.stringify({ id: `p${i}` }), { qos: 1 })))
  const calls = (await waits()) - before
  await waitFor(() => got.filter((m) => m.json?.seq !== undefined).length === 500, '500 messages')
  for (const feed of feeds) {
    const mine = got.filter((m) => m.topic.endsWith(feed))
    expect(mine.map((m) => m.json.seq)).toEqual(Array.from({ length: 100 }, (_, k) => k + 1))
    expect(mine.map((m) => Number(m.json.data.id.slice(1)) % 5)).toEqual(mine.map(() => feeds.indexOf(feed)))
    const order = mine.map((m) => Number(m.json.data.id.slice(1)))
    expect(order).toEqual([...order].sort((a, b) => a - b))
  }
  console.log(`500 appends confirmed with ${calls} WAITs`)
  expect(calls).toBeLessThan(500)
}, 40_000)
