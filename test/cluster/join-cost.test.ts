/**
 * The join storm of bench/joins.ts, smaller: a viewer's join (connect, SUBSCRIBE to a `$replay` feed and a retained
 * state topic, history and state received, disconnect) must cost Redis nothing per viewer. The few commands counted
 * are per node (one feed load, one SUBSCRIBE/UNSUBSCRIBE of the state topic) and heartbeats.
 */
import { test, expect } from 'vitest'
import { joinStorm } from '../../bench/joins.js'

test('800 WebSocket viewers joining 2 cluster nodes cost at most 0.05 Redis commands per join, and each gets history then state', async () => {
  const result = await joinStorm({ viewers: 800, nodes: 2, history: 10 })
  expect(result.allExact).toBe(true)
  expect(result.commandsPerJoin).toBeLessThanOrEqual(0.05)
  // Nothing per viewer: no per-client $SYS PUBLISH, no session reads or deletes.
  for (const cmd of ['get', 'del', 'hget', 'hgetall', 'lrem', 'sadd', 'srem', 'hset']) expect(result.commands[cmd] ?? 0).toBe(0)
  expect(result.commands.publish ?? 0).toBeLessThanOrEqual(8) // heartbeats only
}, 120_000)
