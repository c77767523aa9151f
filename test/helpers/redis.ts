/**
 * Test plumbing: a real `redis-server` (Debian's, on PATH) on a free port with its own data dir; stopped after the
 * test. It can be killed and started again on the same port, with its data (append-only file, fsync always) or empty.
 * (The process itself is run by broker/src/cluster/redis-server.ts, which `tribune cluster` uses too.)
 */
import { mkdirSync, rmSync } from 'node:fs'
import { Redis } from 'ioredis'
import { onCleanup, tempDir } from './broker.js'
import { spawnRedisServer, freePort, type RedisServer } from '../../broker/src/cluster/redis-server.js'

export { freePort }

export interface TestRedis {
  port: number
  url: string
  /** The data dir of the server (its append-only file lives here). */
  dir: string
  /** The server process's id (to stop it with SIGSTOP, say), 0 while it is not running. */
  pid: () => number
  /** A fresh client (closed after the test). */
  client: () => Redis
  /** Stops the server at once (SIGKILL: nothing more is written). */
  kill: () => Promise<void>
  /** Starts it again on the same port; `empty` removes its data first. */
  restart: (opts?: { empty?: boolean }) => Promise<void>
  /** `INFO commandstats` as calls per command, e.g. `{ publish: 3, get: 1 }`. */
  commandStats: () => Promise<Record<string, number>>
}

/** Starts a redis-server for this test on a free port; stopped (and its dir removed) after the test. */
export async function redisForTest (): Promise<TestRedis> {
  const port = await freePort()
  const dir = tempDir('tribune-redis-')
  let server: RedisServer | null = null
  const clients: Redis[] = []
  const start = async (): Promise<void> => { server = await spawnRedisServer({ port, dir }) }
  const kill = async (): Promise<void> => {
    const s = server
    server = null
    await s?.kill()
  }

  await start()
  onCleanup(async () => {
    for (const c of clients) c.disconnect()
    await kill()
  })

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    pid: () => (server as RedisServer | null)?.pid ?? 0,
    client: () => {
      const c = new Redis({ port, host: '127.0.0.1' })
      c.on('error', () => {}) // reconnects by itself while the server is down
      clients.push(c)
      return c
    },
    kill,
    restart: async (opts = {}) => {
      await kill()
      if (opts.empty === true) {
        rmSync(dir, { recursive: true, force: true })
        mkdirSync(dir, { recursive: true })
      }
      await start()
    },
    commandStats: async () => {
      const c = new Redis({ port, host: '127.0.0.1' })
      try {
        const text = await c.info('commandstats')
        const out: Record<string, number> = {}
        for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2])
        return out
      } finally {
        c.disconnect()
      }
    }
  }
}
