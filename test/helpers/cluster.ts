/** Test plumbing: several broker nodes on free ports, linked by one test Redis. */
import { brokerForTest } from './broker.js'
import type { BrokerOptions } from '../../broker/src/config.js'

export type TestNode = Awaited<ReturnType<typeof brokerForTest>>

/** Starts `n` nodes (ids node-0, node-1, ...) linked by the Redis at `redisUrl`; closed after the test. */
export async function clusterForTest (redisUrl: string, n: number, options: BrokerOptions = {}): Promise<TestNode[]> {
  const nodes: TestNode[] = []
  for (let i = 0; i < n; i++) nodes.push(await brokerForTest({ redis: redisUrl, nodeId: `node-${i}`, ...options }))
  return nodes
}
