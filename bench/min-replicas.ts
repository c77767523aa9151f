/**
 * What `--redis-min-replicas` costs a feed publish: a redis-server master with two replicas (processes on free ports,
 * append-only fsync always as everywhere here) and one Tribune node on it, run with --redis-min-replicas 0 and 1 in
 * turn (`rounds` times each, on fresh nodes and feeds), measuring:
 *  - one at a time: a QoS 1 publish to a feed, waiting for its PUBACK before the next (`--messages`): the PUBACK time,
 *    mean, p50 and p99 in µs;
 *  - in flight: `--messages` QoS 1 publishes sent without waiting, spread over `--feeds` feeds: publishes per second
 *    until the last PUBACK (with N > 0 a feed's appends are written one after the other, so one feed is the worst case).
 * The node and the publisher share this process, as in join-cost.ts; Redis runs apart.
 *
 * Usage: npm run -s bench:min-replicas -- [--messages 1000] [--feeds 10] [--rounds 2] [--json]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { Redis } from 'ioredis'
import { startBroker } from '../broker/src/main.js'
import { spawnRedisServer, freePort, type RedisServer } from '../broker/src/cluster/redis-server.js'
import { countFlag } from './lib/args.js'

export interface MinReplicasFigures {
  minReplicas: number
  /** PUBACK time of a publish sent alone, µs. */
  meanUs: number
  p50Us: number
  p99Us: number
  /** Publishes per second with all of them in flight, on one feed and on `feeds` feeds. */
  oneFeedPerSecond: number
  manyFeedsPerSecond: number
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]

async function measure (url: string, minReplicas: number, round: number, messages: number, feeds: number): Promise<MinReplicasFigures> {
  const node = await startBroker({ host: '127.0.0.1', port: 0, wsPort: 0, redis: url, redisMinReplicas: minReplicas, nodeId: `bench-${minReplicas}-${round}`, logLevel: 'warn', overloadLagMs: 0, maxConnRate: 0 })
  const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${node.tcpPort}`, { reconnectPeriod: 0 })
  try {
    const feed = (i: number): string => `matches/bench-${minReplicas}-${round}-${i}/events`
    for (let i = 0; i < 100; i++) await pub.publishAsync(feed(0), JSON.stringify({ id: `w${i}` }), { qos: 1 }) // warm-up
    const times: number[] = []
    for (let i = 0; i < messages; i++) {
      const t = process.hrtime.bigint()
      await pub.publishAsync(feed(0), JSON.stringify({ id: `s${i}`, minute: i, type: 'shot' }), { qos: 1 })
      times.push(Number(process.hrtime.bigint() - t) / 1000)
    }
    times.sort((a, b) => a - b)
    const inFlight = async (nFeeds: number, tag: string): Promise<number> => {
      const start = process.hrtime.bigint()
      await Promise.all(Array.from({ length: messages }, async (_, i) => await pub.publishAsync(feed(1 + (i % nFeeds)), JSON.stringify({ id: `${tag}${i}`, minute: i }), { qos: 1 })))
      return messages / (Number(process.hrtime.bigint() - start) / 1e9)
    }
    return {
      minReplicas,
      meanUs: times.reduce((a, b) => a + b, 0) / times.length,
      p50Us: quantile(times, 0.5),
      p99Us: quantile(times, 0.99),
      oneFeedPerSecond: await inFlight(1, 'o'),
      manyFeedsPerSecond: await inFlight(feeds, 'm')
    }
  } finally {
    await pub.endAsync(true)
    await node.close()
  }
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  const messages = countFlag(args, 'messages', 1000)
  const feeds = countFlag(args, 'feeds', 10)
  const rounds = countFlag(args, 'rounds', 2)
  const dir = mkdtempSync(join(tmpdir(), 'tribune-bench-'))
  const servers: RedisServer[] = []
  try {
    const master = await spawnRedisServer({ port: await freePort(), dir: join(dir, 'master') })
    servers.push(master)
    for (let i = 0; i < 2; i++) servers.push(await spawnRedisServer({ port: await freePort(), dir: join(dir, `replica-${i}`), args: ['--replicaof', '127.0.0.1', String(master.port)] }))
    // Both replicas online, their first sync (and the append-only file it rewrites) done.
    const info = new Redis(master.url)
    try {
      for (let i = 0; i < 100 && (await info.info('replication')).match(/state=online,offset=\d+,lag=[01]/g)?.length !== 2; i++) await new Promise((resolve) => setTimeout(resolve, 100))
    } finally {
      info.disconnect()
    }
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const results: MinReplicasFigures[] = []
    for (let r = 0; r < rounds; r++) {
      for (const n of [0, 1]) {
        const f = await measure(master.url, n, r, messages, feeds)
        results.push(f)
        if (!args.includes('--json')) {
          console.log(`--redis-min-replicas ${n} (round ${r + 1}): PUBACK one at a time mean ${f.meanUs.toFixed(0)} µs, p50 ${f.p50Us.toFixed(0)}, p99 ${f.p99Us.toFixed(0)}; ` +
            `in flight ${f.oneFeedPerSecond.toFixed(0)}/s on 1 feed, ${f.manyFeedsPerSecond.toFixed(0)}/s on ${feeds} feeds`)
        }
      }
    }
    if (args.includes('--json')) console.log(JSON.stringify({ kind: 'min-replicas', messages, feeds, results }))
  } finally {
    for (const s of servers) await s.kill()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
