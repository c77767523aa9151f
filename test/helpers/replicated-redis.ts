/**
 * Test plumbing: a replicated Redis, watched by Redis Sentinels, every process real and on a free port: one master,
 * `replicas` replicas (`--replicaof`), `sentinels` sentinels (`redis-server <conf> --sentinel`, each with a writable
 * configuration file of its own; none with `sentinels: 0`) with a short down-after time, so a killed master is
 * replaced within seconds. Every process is killed after the test (SIGCONT first, for one a test stopped).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { onCleanup, tempDir } from './broker.js'
import { freePort, spawnRedisServer, type RedisServer } from '../../broker/src/cluster/redis-server.js'

export interface ReplicatedRedis {
  masterName: string
  /** `redis://` URL of the first master. */
  url: string
  /** The first master, then its replicas. */
  servers: RedisServer[]
  sentinels: RedisServer[]
  /** `host:port` of each sentinel, as `--redis-sentinels` takes them. */
  sentinelList: string[]
  /** The port of the master the sentinels name now. */
  masterPort: () => Promise<number>
  /** Replicas connected to the server on `port` (its INFO replication). */
  connectedReplicas: (port: number) => Promise<number>
  /** The names of the client connections of the server on `port` (CLIENT LIST), the unnamed left out. */
  clientNames: (port: number) => Promise<string[]>
  /** Asks the first sentinel for a failover now (SENTINEL FAILOVER): the master is demoted while alive. */
  failover: () => Promise<void>
  /** Failovers so far: the highest configuration epoch a sentinel holds for the master (0 before any). */
  failovers: () => Promise<number>
}

/** Asks the server on `port` one command and closes the connection. */
async function ask<T> (port: number, fn: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  c.on('error', () => {})
  try {
    await c.connect()
    return await fn(c)
  } finally {
    c.disconnect()
  }
}

/**
 * Starts the servers and sentinels, and waits until every replica is in sync and every sentinel knows every replica
 * and the other sentinels (without that, a failover cannot be agreed on).
 * @param opts.replicas replicas of the master (default 2)
 * @param opts.sentinels sentinels (default 3, with a quorum of 2)
 * @param opts.downAfterMs the sentinels' down-after-milliseconds (default 1000)
 */
export async function replicatedRedisForTest (opts: { replicas?: number, sentinels?: number, downAfterMs?: number } = {}): Promise<ReplicatedRedis> {
  const masterName = 'tribune-test'
  const nReplicas = opts.replicas ?? 2
  const nSentinels = opts.sentinels ?? 3
  const dir = tempDir('tribune-sentinel-')
  const servers: RedisServer[] = []
  const sentinels: RedisServer[] = []
  onCleanup(async () => {
    for (const s of [...sentinels, ...servers]) {
      try { process.kill(s.pid, 'SIGCONT') } catch {}
      await s.kill()
    }
  })
  const masterPort = await freePort()
  servers.push(await spawnRedisServer({ port: masterPort, dir: join(dir, 'master') }))
  for (let i = 0; i < nReplicas; i++) {
    servers.push(await spawnRedisServer({ port: await freePort(), dir: join(dir, `replica-${i}`), args: ['--replicaof', '127.0.0.1', String(masterPort)] }))
  }
  for (let i = 0; i < nSentinels; i++) {
    const port = await freePort()
    const conf = join(dir, `sentinel-${i}.conf`)
    writeFileSync(conf, [
      `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${masterName} ${opts.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${masterName} 5000`,
      `sentinel parallel-syncs ${masterName} ${nReplicas}`,
      ''
    ].join('\n'))
    sentinels.push(await spawnRedisServer({ port, dir: join(dir, `sentinel-${i}`), sentinelConf: conf }))
  }
  const group: ReplicatedRedis = {
    masterName,
    url: `redis://127.0.0.1:${masterPort}`,
    servers,
    sentinels,
    sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`),
    masterPort: async () => {
      for (const s of sentinels) {
        try {
          const addr = await ask(s.port, async (c) => await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as [string, string] | null
          if (addr !== null) return Number(addr[1])
        } catch {}
      }
      throw new Error('no sentinel names a master')
    },
    connectedReplicas: async (port) => {
      const info = await ask(port, async (c) => await c.info('replication'))
      return Number(/connected_slaves:(\d+)/.exec(info)?.[1] ?? 0)
    },
    clientNames: async (port) => {
      const list = await ask(port, async (c) => await c.call('CLIENT', 'LIST') as string)
      return [...list.matchAll(/ name=(\S+)/g)].map((m) => m[1])
    },
    failover: async () => {
      await ask(sentinels[0].port, async (c) => await c.call('SENTINEL', 'FAILOVER', masterName))
    },
    failovers: async () => {
      const epochs = await Promise.all(sentinels.map(async (s) => {
        const fields = await ask(s.port, async (c) => await c.call('SENTINEL', 'MASTER', masterName)) as string[]
        return Number(fields[fields.indexOf('config-epoch') + 1])
      }))
      return Math.max(...epochs)
    }
  }
  // Replicas in sync; sentinels learn the replicas from the master's INFO (every 10 s, at once at start) and each
  // other from hello messages (every 2 s).
  const deadline = Date.now() + 20_000
  for (;;) {
    const views = await Promise.all(sentinels.map(async (s) => await ask(s.port, async (c) => await Promise.all([
      c.call('SENTINEL', 'REPLICAS', masterName) as Promise<unknown[]>,
      c.call('SENTINEL', 'SENTINELS', masterName) as Promise<unknown[]>
    ]))))
    const linked = await Promise.all(servers.slice(1).map(async (r) => /master_link_status:up/.test(await ask(r.port, async (c) => await c.info('replication')))))
    if (linked.every((up) => up) && views.every(([replicas, others]) => replicas.length === nReplicas && others.length === nSentinels - 1)) break
    if (Date.now() > deadline) throw new Error(`sentinels still do not know each other and every replica after 20 s: ${JSON.stringify(views.map(([r, o]) => ({ replicas: r.length, sentinels: o.length })))}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return group
}
