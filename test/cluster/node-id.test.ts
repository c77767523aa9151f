/**
 * A node id belongs to one live node of a cluster (broker/src/cluster/node-lease.ts): a node started under the id of a
 * live node of the same Redis and prefix exits non-zero naming the id, and the live node goes on untouched (its
 * clients stay connected, messages and feeds still flow, its clients' wills are not published). A node killed with
 * SIGKILL and started again under its id starts once its lease expires (3 heartbeat intervals at most); one stopped
 * cleanly starts again at once. A running node whose lease is taken from it logs an error naming its id, and one whose
 * lease vanished (Redis restarted empty) takes it again. The nodes are `tribune broker` processes.
 */
import { test, expect } from 'vitest'
import { onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { spawnBroker, listening, type BrokerProcess } from '../helpers/process.js'
const HEARTBEAT = 250
const TTL = 3 * HEARTBEAT
/** The wait bound of node-lease.ts for this heartbeat: the ttl plus half a second. */
const WAIT_BOUND = TTL + 500
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** Spawns `tribune broker` in the cluster on `redisUrl` under `id`, on free ports, logging at info. */
function spawnNode (redisUrl: string, id: string): BrokerProcess {
  return spawnBroker(['--redis', redisUrl, '--node-id', id, '--heartbeat-interval', String(HEARTBEAT)])
}

test('a node started under the id of a live node exits non-zero naming the id; the live node goes on untouched', async () => {
  const redis = await redisForTest()
  const live = spawnNode(redis.url, 'eu-1')
  const ports = await listening(live, 'the live node')
  const url = `mqtt://127.0.0.1:${ports.tcp}`
  const lost: string[] = []
  const viewer = await connect(url, { clientId: 'viewer-1', will: { topic: 'clients/viewer-1/status', payload: Buffer.from('gone'), qos: 1, retain: false } })
  const watcher = await connect(url, { clientId: 'watcher' })
  const publisher = await connect(url, { clientId: 'publisher', will: { topic: 'clients/publisher/status', payload: Buffer.from('gone'), qos: 1, retain: false } })
  for (const [name, c] of [['viewer', viewer], ['watcher', watcher], ['publisher', publisher]] as const) c.on('close', () => lost.push(name))
  const got = collect(viewer)
  const wills = collect(watcher)
  await watcher.subscribeAsync('clients/+/status', { qos: 1 })
  await viewer.subscribeAsync('news/plain', { qos: 1 })
  await viewer.subscribeAsync('$replay/all/matches/m1/events', { qos: 1 })
  await publisher.publishAsync('news/plain', 'before', { qos: 1 })
  await publisher.publishAsync('matches/m1/events', JSON.stringify({ id: 'e1' }), { qos: 1 })
  await waitFor(() => got.length === 2, 'both messages before the second node')
  const leaseBefore = await redis.client().get('tribune:node:eu-1')
  expect(leaseBefore).toMatch(/^[0-9a-f]{16}:\d+$/)

  const started = Date.now()
  const second = spawnNode(redis.url, 'eu-1')
  const code = await second.exited
  const took = Date.now() - started
  expect(code).toBe(1)
  expect(second.out()).toContain('node id eu-1 is held by a live node of this cluster')
  expect(second.out()).toContain('waiting for its lease')
  expect(second.out()).not.toContain('broker listening')
  // Refused after one renewal of the live node's lease (every heartbeat), well within the wait bound.
  expect(took).toBeLessThan(WAIT_BOUND + 3000)

  await sleep(4 * HEARTBEAT) // time for anything the second node might have left behind to show
  await publisher.publishAsync('news/plain', 'after', { qos: 1 })
  await publisher.publishAsync('matches/m1/events', JSON.stringify({ id: 'e2' }), { qos: 1 })
  await waitFor(() => got.length === 4, 'both messages after the second node')
  expect(got.map((m) => m.topic)).toEqual(['news/plain', '$replay/all/matches/m1/events', 'news/plain', '$replay/all/matches/m1/events'])
  expect(got.filter((m) => m.topic.startsWith('$replay')).map((m) => [m.json.seq, m.json.data.id])).toEqual([[1, 'e1'], [2, 'e2']])
  // A new viewer gets the feed's history from the live node as well.
  const late = await connect(`ws://127.0.0.1:${ports.ws}/mqtt`)
  const lateGot = collect(late)
  await late.subscribeAsync('$replay/all/matches/m1/events')
  await waitFor(() => lateGot.length === 2, 'the history for a new viewer')
  expect(lost).toEqual([])
  expect(wills).toEqual([])
  const health = await (await fetch(`http://127.0.0.1:${ports.ws}/healthz`)).json() as { id: string, clients: number }
  expect(health.id).toBe('eu-1')
  expect(health.clients).toBe(4)
  // The lease is still the live node's (same token), renewed; the live node never saw it taken.
  const leaseAfter = await redis.client().get('tribune:node:eu-1')
  expect(leaseAfter?.split(':')[0]).toBe(leaseBefore?.split(':')[0])
  expect(leaseAfter).not.toBe(leaseBefore)
  expect(live.out()).not.toContain('was taken by another node')
  expect(live.child.exitCode).toBeNull()
  console.log(`second node under a live id refused after ${took} ms (heartbeat ${HEARTBEAT} ms, wait bound ${WAIT_BOUND} ms)`)
}, 30_000)

test('a node killed with SIGKILL starts again under the same id once its lease expires, within 3 heartbeats and a margin', async () => {
  const redis = await redisForTest()
  const first = spawnNode(redis.url, 'phoenix')
  await listening(first, 'the first run')
  const before = await redis.client().get('tribune:node:phoenix')
  first.child.kill('SIGKILL')
  await first.exited
  const died = Date.now()
  const again = spawnNode(redis.url, 'phoenix')
  await listening(again, 'the run after the kill', WAIT_BOUND + 10_000)
  const since = Date.now() - died
  const waited = again.lines().find((l) => l.msg === 'the earlier holder\'s lease on this node id expired: taken')
  // The process takes some hundreds of ms to start; if the lease is still there by then, it waits for it.
  if (again.out().includes('waiting for its lease')) {
    expect(waited).toBeDefined()
    expect(waited.waitedMs).toBeLessThanOrEqual(WAIT_BOUND)
  }
  const after = await redis.client().get('tribune:node:phoenix')
  expect(after?.split(':')[0]).not.toBe(before?.split(':')[0])
  console.log(`restart after SIGKILL listening ${since} ms after the death (waited ${String(waited?.waitedMs ?? 'not at all')} ms for the lease; process start ${String(again.startedMs())} ms; ttl ${TTL} ms)`)
  expect(since).toBeLessThan(TTL + 5000)
}, 30_000)

test('a node stopped cleanly starts again under the same id at once: its lease was deleted', async () => {
  const redis = await redisForTest()
  const first = spawnNode(redis.url, 'calm')
  await listening(first, 'the first run')
  expect(await redis.client().exists('tribune:node:calm')).toBe(1)
  first.child.kill('SIGTERM')
  expect(await first.exited).toBe(0)
  expect(await redis.client().exists('tribune:node:calm')).toBe(0)
  const again = spawnNode(redis.url, 'calm')
  await listening(again, 'the run after the clean stop')
  expect(again.out()).not.toContain('waiting for its lease')
  console.log(`restart after a clean stop listening ${String(again.startedMs())} ms after its spawn, without waiting`)
}, 30_000)

test('a running node whose lease is taken logs an error naming its id; a lease lost with Redis\' data is taken again', async () => {
  const redis = await redisForTest()
  const node = spawnNode(redis.url, 'steady')
  const ports = await listening(node, 'the node')
  const viewer = await connect(`mqtt://127.0.0.1:${ports.tcp}`, { reconnectPeriod: 50 })
  const got = collect(viewer)
  await viewer.subscribeAsync('news/plain', { qos: 1 })
  // Another run's token, as if a second node had taken the id while this one stalled.
  await redis.client().set('tribune:node:steady', 'ffffffffffffffff:0', 'PX', 60_000)
  await waitFor(() => node.out().includes('the lease on node id steady was taken by another node'), 'the error', 5 * HEARTBEAT)
  const error = node.lines().find((l) => typeof l.msg === 'string' && l.msg.includes('was taken by another node'))
  expect(error.level).toBe(50)
  expect(await redis.client().get('tribune:node:steady')).toBe('ffffffffffffffff:0') // left to its holder
  await sleep(4 * HEARTBEAT)
  expect(node.lines().filter((l) => typeof l.msg === 'string' && l.msg.includes('was taken by another node'))).toHaveLength(1) // said once
  await redis.client().del('tribune:node:steady')
  await waitFor(() => node.out().includes('the lease on this node id had expired'), 'the lease taken again', 5 * HEARTBEAT)
  const token = (await redis.client().get('tribune:node:steady'))?.split(':')[0]
  // Redis down for longer than the lease, then back empty: the node rides it out and takes the lease again.
  await redis.kill()
  await sleep(TTL + 2 * HEARTBEAT)
  await redis.restart({ empty: true })
  await waitFor(() => node.lines().filter((l) => typeof l.msg === 'string' && l.msg.includes('had expired')).length === 2, 'the lease taken again after the outage', 10_000)
  expect((await redis.client().get('tribune:node:steady'))?.split(':')[0]).toBe(token)
  expect(node.child.exitCode).toBeNull()
  await waitFor(() => viewer.connected, 'the viewer connected')
  const pub = await connect(`mqtt://127.0.0.1:${ports.tcp}`)
  await pub.publishAsync('news/plain', 'still here', { qos: 1 })
  await waitFor(() => got.length === 1, 'a message after the outage', 10_000)
  expect(node.out()).not.toContain('unhandled rejection')
}, 30_000)
