/**
 * Retained messages in a cluster (MQTT 3.1.1 section 3.3.1.3): publishers on two nodes overwrite the same topics at the
 * same time; afterwards every node serves, for every topic, the value Redis holds: the last write Redis executed.
 */
import { createRequire } from 'node:module'
import { test, expect } from 'vitest'
import { connect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest, type TestNode } from '../helpers/cluster.js'

const msgpack = createRequire(import.meta.url)('msgpack-lite') as { decode: (b: Buffer) => { payload: Buffer } }
const TOPICS = 50
const ROUNDS = 10

async function retainedOn (node: TestNode): Promise<Map<string, string>> {
  const c = await connect(node.tcpUrl)
  const seen = new Map<string, string>()
  c.on('message', (topic, payload, packet) => { if (packet.retain) seen.set(topic, payload.toString()) })
  await c.subscribeAsync('race/#')
  await waitFor(() => seen.size === TOPICS, `${TOPICS} retained topics`)
  return seen
}

test('concurrent retained writes from two nodes leave every node with Redis\' value for every topic', async () => {
  const redis = await redisForTest()
  const nodes = await clusterForTest(redis.url, 3)
  const a = await connect(nodes[0].tcpUrl)
  const b = await connect(nodes[1].tcpUrl)
  for (let r = 0; r < ROUNDS; r++) {
    await Promise.all(Array.from({ length: TOPICS }, async (_, t) => await Promise.all([
      a.publishAsync(`race/${t}`, `A-${r}`, { qos: 1, retain: true }),
      b.publishAsync(`race/${t}`, `B-${r}`, { qos: 1, retain: true })
    ])))
  }
  const stored = await redis.client().hgetallBuffer('tribune:retained')
  const inRedis = new Map(Object.entries(stored).map(([topic, value]) => [topic, msgpack.decode(value).payload.toString()]))
  expect(inRedis.size).toBe(TOPICS)
  for (const [k, node] of nodes.entries()) {
    const seen = await retainedOn(node)
    const differ = [...inRedis].filter(([topic, value]) => seen.get(topic) !== value)
    expect(differ, `node ${k}: topics whose value is not Redis'`).toEqual([])
  }
})
