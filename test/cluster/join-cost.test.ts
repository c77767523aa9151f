/**
 * The join storm of bench/joins.ts, smaller: a viewer's join (connect, SUBSCRIBE to a `$replay` feed and a retained
 * state topic, history and state received, disconnect) must cost Redis nothing per viewer. The few commands counted
 * are per node (one feed load, one SUBSCRIBE/UNSUBSCRIBE of the state topic) and heartbeats.
 */
import { test, expect } from 'vitest'
import { joinStorm } from '../../bench/join-cost.js'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest } from '../helpers/cluster.js'
import { connect } from '../helpers/mqtt.js'

test('800 WebSocket viewers joining 2 cluster nodes cost at most 0.05 Redis commands per join, and each gets history then state', async () => {
  const result = await joinStorm({ viewers: 800, nodes: 2, history: 10 })
  expect(result.allExact).toBe(true)
  expect(result.commandsPerJoin).toBeLessThanOrEqual(0.05)
  // Nothing per viewer: no per-client $SYS PUBLISH, no session reads or deletes.
  for (const cmd of ['get', 'del', 'hget', 'hgetall', 'lrem', 'sadd', 'srem', 'hset']) expect(result.commands[cmd] ?? 0).toBe(0)
  expect(result.commands.publish ?? 0).toBeLessThanOrEqual(8) // heartbeats only
}, 120_000)

test('viewers joining feeds nobody published to (each a new name) cost Redis no feed read', async () => {
  const redis = await redisForTest()
  // Heartbeats (and the node id lease's renewal, a script too) once a minute: none within the test.
  const [node] = await clusterForTest(redis.url, 1, { heartbeatInterval: 60_000 })
  const before = await redis.commandStats()
  for (let i = 0; i < 100; i++) {
    const c = await connect(i % 2 === 0 ? node.wsUrl : node.tcpUrl)
    await c.subscribeAsync(`$replay/all/matches/unheard-${i}/events`)
    await c.endAsync()
  }
  const after = await redis.commandStats()
  const spent = Object.fromEntries(Object.entries(after).filter(([cmd, n]) => cmd !== 'info' && n !== (before[cmd] ?? 0)).map(([cmd, n]) => [cmd, n - (before[cmd] ?? 0)]))
  expect(spent.evalsha ?? 0).toBe(0)
  expect(spent.eval ?? 0).toBe(0)
  expect(Object.values(spent).reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(4) // heartbeats at most
})

test('a reconnect herd on a state topic costs one SUBSCRIBE per node, and no UNSUBSCRIBE while it comes back', async () => {
  const redis = await redisForTest()
  const [node] = await clusterForTest(redis.url, 1)
  const before = await redis.commandStats()
  for (let round = 0; round < 3; round++) {
    const viewers = await Promise.all(Array.from({ length: 30 }, async () => {
      const c = await connect(node.wsUrl)
      await c.subscribeAsync('matches/herd/state')
      return c
    }))
    await Promise.all(viewers.map(async (c) => await c.endAsync()))
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const after = await redis.commandStats()
  expect((after.subscribe ?? 0) - (before.subscribe ?? 0)).toBe(1)
  expect((after.unsubscribe ?? 0) - (before.unsubscribe ?? 0)).toBe(0)
})
