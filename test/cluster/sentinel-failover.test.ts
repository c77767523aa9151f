/**
 * Redis failover under load, every part a real process or socket: a master, two replicas and three sentinels
 * (down-after 1 s), two nodes started with `--redis-sentinels --redis-master-name --redis-min-replicas 1`, client-library
 * viewers on both nodes (TCP and WebSocket), and an MQTT.js publisher sending a QoS 1 feed message every 20 ms
 * throughout. The master is killed (SIGKILL): the sentinels promote a replica, both nodes follow it (/readyz 503
 * meanwhile, 200 after), the publisher and viewers stay connected, every publish is acknowledged, and every viewer
 * ends with every acknowledged message once, in the order it was published, under the epoch it had before. The pause
 * the viewers saw (longest time between two consecutive messages) is printed.
 *
 * Two replicas with --redis-min-replicas 1: a message is acknowledged once a replica has it, so the promoted one has
 * it (Sentinel promotes the replica with the most data), and the new master still has a replica to confirm the
 * publishes that follow.
 */
import { Writable } from 'node:stream'
import { test, expect } from 'vitest'
import { pino } from 'pino'
import type { MqttClient } from 'mqtt'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { replicatedRedisForTest } from '../helpers/replicated-redis.js'
import type { TestNode } from '../helpers/cluster.js'
import { Viewer, type FeedEnvelope } from '../../client/src/index.js'

const FEED = 'matches/failover/events'
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** `p`, its error (a wait that timed out) completed with what `state` says then. */
async function explained (p: Promise<void>, state: () => string): Promise<void> {
  try {
    await p
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${state()}`)
  }
}

/** Publishes one message every `everyMs` without waiting for the PUBACK; records the order sent and the acknowledged ones. */
function keepPublishing (pub: MqttClient, everyMs: number): { stop: () => Promise<void>, sent: string[], acked: Set<string> } {
  const sent: string[] = []
  const acked = new Set<string>()
  const pending: Array<Promise<unknown>> = []
  const timer = setInterval(() => {
    const id = `m${sent.length}`
    sent.push(id)
    pending.push(pub.publishAsync(FEED, JSON.stringify({ id }), { qos: 1 }).then(() => acked.add(id), () => {}))
  }, everyMs)
  return {
    sent,
    acked,
    stop: async () => {
      clearInterval(timer)
      await Promise.all(pending)
    }
  }
}

/**
 * Polls /readyz of every node every 100 ms; per node, `unready` holds the 503 windows as [from, to] in ms from `since`,
 * and `last` the last status.
 */
function watchReadiness (nodes: TestNode[], since: number): { stop: () => void, unready: Array<Array<[number, number]>>, last: number[] } {
  const unready: Array<Array<[number, number]>> = nodes.map(() => [])
  const last = nodes.map(() => 0)
  let stopped = false
  void (async () => {
    while (!stopped) {
      await Promise.all(nodes.map(async (node, i) => {
        const res = await fetch(`http://127.0.0.1:${node.wsPort}/readyz`).catch(() => ({ status: 0 }))
        const t = Date.now() - since
        if (res.status === 503) {
          if (last[i] === 503) unready[i][unready[i].length - 1][1] = t
          else unready[i].push([t, t])
        }
        last[i] = res.status
      }))
      await sleep(100)
    }
  })()
  return { stop: () => { stopped = true }, unready, last }
}

test('kill -9 of the Redis master: the sentinels promote a replica, both nodes follow it, every viewer ends with every acknowledged message once and in order, under one epoch', async () => {
  const redis = await replicatedRedisForTest({ replicas: 2, sentinels: 3 })
  const options = { redisSentinels: redis.sentinelList, redisMasterName: redis.masterName, redisMinReplicas: 1 }
  // The nodes' warnings and above, with the time, to explain a failure.
  const logs: string[] = []
  const logger = (id: string): ReturnType<typeof pino> => pino({ level: 'info' }, new Writable({
    write (chunk, _enc, cb) {
      const line = JSON.parse(chunk.toString())
      if (line.level >= 40 || /redis/i.test(String(line.msg))) logs.push(`${line.time as number} ${id} ${String(line.msg)} ${JSON.stringify({ ...line, msg: undefined, time: undefined, level: undefined, pid: undefined, hostname: undefined, name: undefined })}`)
      cb()
    }
  }))
  const nodes = [await brokerForTest({ ...options, nodeId: 'node-0' }, logger('node-0')), await brokerForTest({ ...options, nodeId: 'node-1' }, logger('node-1'))]
  const watchers: Array<{ list: FeedEnvelope[], at: number[], resets: number, closes: number }> = []
  for (let i = 0; i < 8; i++) {
    const node = nodes[i % 2]
    const viewer = Viewer.connect(i % 4 < 2 ? node.tcpUrl : node.wsUrl, { reconnect: { baseMs: 20, capMs: 200 } })
    onCleanup(async () => await viewer.close())
    const w = { list: [] as FeedEnvelope[], at: [] as number[], resets: 0, closes: 0 }
    const sub = viewer.watchFeed(FEED, { from: 'all' }, (env) => {
      w.list.push(env)
      w.at.push(Date.now())
    })
    sub.on('reset', () => { w.resets++ })
    viewer.mqttClient.on('close', () => { w.closes++ })
    watchers.push(w)
  }
  const pub = await connect(nodes[0].tcpUrl, { clientId: 'failover-publisher' })
  let publisherCloses = 0
  pub.on('close', () => { publisherCloses++ })

  const publishing = keepPublishing(pub, 20)
  await waitFor(() => publishing.acked.size >= 50 && watchers.every((w) => w.list.length > 0), 'publishing under way')
  const epoch = watchers[0].list[0].epoch
  const oldMaster = await redis.masterPort()
  expect(oldMaster).toBe(redis.servers[0].port)

  const killedAt = Date.now()
  const readiness = watchReadiness(nodes, killedAt)
  onCleanup(() => readiness.stop())
  await redis.servers[0].kill()
  let promotedAfter = 0
  await waitFor(() => {
    void redis.masterPort().then((port) => { if (port !== oldMaster && promotedAfter === 0) promotedAfter = Date.now() - killedAt }, () => {})
    return promotedAfter > 0
  }, 'the sentinels to name a new master', 30_000)
  await explained(waitFor(() => readiness.last.every((s) => s === 200) && readiness.unready.every((u) => u.length > 0), 'both nodes ready again after being unready', 20_000),
    () => `/readyz 503 windows ${JSON.stringify(readiness.unready)}, last ${JSON.stringify(readiness.last)}`)
  const readyAfter = Date.now() - killedAt
  await sleep(2000) // publishing goes on on the new master
  await publishing.stop()
  readiness.stop()

  const n = publishing.sent.length
  expect(publishing.acked.size).toBe(n) // every publish acknowledged, none lost or refused
  await explained(waitFor(() => watchers.every((w) => w.list.length >= n), `every viewer to hold ${n} messages`, 20_000),
    () => `viewers hold ${JSON.stringify(watchers.map((w) => w.list.length))}`)
  await sleep(300) // nothing more, nothing twice
  let pause = 0
  for (const [i, w] of watchers.entries()) {
    expect(w.list.map((e) => e.seq), `viewer ${i}`).toEqual(Array.from({ length: n }, (_, k) => k + 1))
    expect(w.list.map((e) => (e.data as { id: string }).id), `viewer ${i}`).toEqual(publishing.sent)
    expect(new Set(w.list.map((e) => e.epoch)), `viewer ${i}`).toEqual(new Set([epoch]))
    expect(w.resets, `viewer ${i} resets`).toBe(0)
    expect(w.closes, `viewer ${i} disconnected`).toBe(0)
    for (let k = 1; k < w.at.length; k++) pause = Math.max(pause, w.at[k] - w.at[k - 1])
  }
  expect(publisherCloses).toBe(0)
  // Each node unready once per failover, from the kill until it is on the new master, not again once back. On a
  // loaded machine the sentinels may take the new master for dead too (down-after 1 s) and fail over once more.
  const failovers = await redis.failovers()
  const since = (line: string): string => line.replace(/^\d+/, (t) => `+${Number(t) - killedAt}ms`)
  for (const [i, windows] of readiness.unready.entries()) {
    expect(windows.length, `node ${i}'s 503 windows: ${JSON.stringify(windows)} for ${failovers} failovers; logs:\n${logs.map(since).join('\n')}`).toBeLessThanOrEqual(failovers)
  }
  const windows = readiness.unready.map(([[from, to]]) => `${from}-${to} ms`)
  console.log(`failover${failovers > 1 ? ` (${failovers} failovers: the sentinels took the new master for dead too)` : ''}: new master named by the sentinels ${promotedAfter} ms after kill -9, both nodes ready again after ${readyAfter} ms ` +
    `(/readyz 503 from/to: ${windows.join(', ')}); ${n} messages, the viewers' longest pause ${pause} ms`)
}, 60_000)

test('SENTINEL FAILOVER (the master demoted while alive): every connection of both nodes moves to the new master, and messages flow between the nodes', async () => {
  const redis = await replicatedRedisForTest({ replicas: 1, sentinels: 3 })
  const options = { redisSentinels: redis.sentinelList, redisMasterName: redis.masterName }
  const nodes = [await brokerForTest({ ...options, nodeId: 'node-0' }), await brokerForTest({ ...options, nodeId: 'node-1' })]
  const viewer = await connect(nodes[1].tcpUrl)
  const got = collect(viewer)
  await viewer.subscribeAsync([`$replay/all/${FEED}`, 'matches/failover/chat'], { qos: 1 })
  const pub = await connect(nodes[0].tcpUrl)
  await pub.publishAsync(FEED, '{"id":"before"}', { qos: 1 })
  await waitFor(() => got.length === 1, 'the first message')
  const oldMaster = await redis.masterPort()
  const ours = (names: string[]): number => names.filter((n) => n.startsWith('tribune:node-')).length
  const perNode = ours(await redis.clientNames(oldMaster))
  expect(perNode).toBe(8) // 4 connections per node

  await redis.failover()
  let newMaster = oldMaster
  await waitFor(() => {
    void redis.masterPort().then((port) => { newMaster = port }, () => {})
    return newMaster !== oldMaster
  }, 'the sentinels to name a new master', 10_000)
  // Subscribers too (they write nothing, so only the switch announcement moves them).
  let onNew = 0
  let onOld = perNode
  await waitFor(() => {
    void Promise.all([redis.clientNames(newMaster), redis.clientNames(oldMaster)]).then(([n, o]) => { onNew = ours(n); onOld = ours(o) }, () => {})
    return onNew === perNode && onOld === 0
  }, 'every connection of both nodes on the new master', 10_000)
  await pub.publishAsync(FEED, '{"id":"after"}', { qos: 1 })
  await pub.publishAsync('matches/failover/chat', 'hello', { qos: 1 }) // a plain message: Redis pub/sub only
  await waitFor(() => got.length === 3, 'the messages published after the failover')
  expect(got.map((m) => m.json?.data?.id ?? String(m.json ?? 'hello'))).toEqual(['before', 'after', 'hello'])
  expect(got.slice(0, 2).map((m) => m.json.seq)).toEqual([1, 2])
}, 40_000)
