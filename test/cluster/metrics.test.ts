// Tests whether `$SYS/+/stats` on one node of a 2-node cluster gives the statistics of every node (their documents
// go through Redis, each naming its node, with its clients), while each node's individual `$SYS` values stay on that
// node; and whether a cluster member measures its Redis round trips and shows them in stats() and on GET /metrics.
import { test, expect } from 'vitest'
import type { NodeStats } from '../../broker/src/metrics/stats.js'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest } from '../helpers/cluster.js'
import { connect, waitFor } from '../helpers/mqtt.js'
import { scrape, value } from '../helpers/metrics.js'

test('$SYS/+/stats on one node gives every node of the cluster; the individual values stay on their node', async () => {
  const redis = await redisForTest()
  const [a, b] = await clusterForTest(redis.url, 2, { sysInterval: 1, heartbeatInterval: 300 })
  // 2 viewers on node-0 (and the operator), 3 on node-1.
  for (const url of [a.wsUrl, a.tcpUrl, b.wsUrl, b.wsUrl, b.tcpUrl]) await (await connect(url)).subscribeAsync('matches/+/events')
  const operator = await connect(a.tcpUrl)
  const docs: NodeStats[] = []
  const values: string[] = []
  operator.on('message', (topic, payload) => {
    if (topic.endsWith('/stats')) docs.push(JSON.parse(payload.toString()) as NodeStats)
    else values.push(topic)
  })
  await operator.subscribeAsync('$SYS/+/stats')
  await operator.subscribeAsync('$SYS/+/clients/#')
  const from = (id: string): NodeStats[] => docs.filter((d) => d.id === id)
  // Node-1's values, had they gone through Redis, would have followed its first document, before its second.
  await waitFor(() => from('node-0').length >= 2 && from('node-1').length >= 2, 'two documents from each node', 15_000)
  expect(from('node-0')[1]).toMatchObject({ store: { kind: 'redis', reachable: true }, clients: { connected: 3, transport: { ws: 1, mqtt: 2 } } })
  expect(from('node-1')[1]).toMatchObject({ store: { kind: 'redis', reachable: true }, clients: { connected: 3, transport: { ws: 2, mqtt: 1 } } })
  const connected = from('node-0')[1].clients.connected + from('node-1')[1].clients.connected
  expect(connected).toBe(6) // the 5 viewers and the operator
  expect(values.some((t) => t.startsWith('$SYS/node-0/clients/'))).toBe(true)
  expect(values.filter((t) => t.startsWith('$SYS/node-1/'))).toEqual([])

  // Each node times its lease renewal (once per heartbeat interval): the Redis round trip.
  await waitFor(() => (b.stats().redis?.commandSeconds.count ?? 0) >= 2, 'two Redis round trips timed on node-1')
  const redisTimes = b.stats().redis?.commandSeconds
  expect(redisTimes?.maxSeconds).toBeGreaterThan(0)
  expect(redisTimes?.maxSeconds).toBeLessThan(5)
  const metrics = await scrape(`http://127.0.0.1:${b.wsPort}/metrics`)
  expect(value(metrics, 'tribune_redis_command_seconds')).toBeGreaterThanOrEqual(2)
  expect(value(metrics, 'tribune_store_reachable')).toBe(1)
  expect(value(metrics, 'tribune_info', { node_id: 'node-1', store: 'redis' })).toBe(1)
  expect(value(metrics, 'tribune_redis_foreign_messages_total')).toBe(0)
}, 30_000)
