/**
 * Test plumbing: a real `redis-server` (Debian's, on PATH) on a free port with its own data dir; stopped after the
 * test. It can be killed and started again on the same port, with its data (append-only file, fsync always) or empty.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdirSync, rmSync } from 'node:fs'
import { Redis } from 'ioredis'
import { onCleanup, tempDir } from './broker.js'

export interface TestRedis {
  port: number
  url: string
  /** The data dir of the server (its append-only file lives here). */
  dir: string
  /** A fresh client (closed after the test). */
  client: () => Redis
  /** Stops the server at once (SIGKILL: nothing more is written). */
  kill: () => Promise<void>
  /** Starts it again on the same port; `empty` removes its data first. */
  restart: (opts?: { empty?: boolean }) => Promise<void>
  /** `INFO commandstats` as calls per command, e.g. `{ publish: 3, get: 1 }`. */
  commandStats: () => Promise<Record<string, number>>
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** Starts a redis-server for this test on a free port; stopped (and its dir removed) after the test. */
export async function redisForTest (): Promise<TestRedis> {
  const port = await freePort()
  const dir = tempDir('tribune-redis-')
  let proc: ChildProcess | null = null
  const clients: Redis[] = []

  const start = async (): Promise<void> => {
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--save', '', '--appendonly', 'yes', '--appendfsync', 'always',
      '--protected-mode', 'no', '--loglevel', 'warning'
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    proc = child
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    probe.on('error', () => {})
    const deadline = Date.now() + 10_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${stderr}`)
      try {
        await probe.connect()
        if ((await probe.ping()) === 'PONG') break
      } catch {}
      probe.disconnect()
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s: ${stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    probe.disconnect()
  }

  const kill = async (): Promise<void> => {
    const p = proc
    proc = null
    if (p === null || p.exitCode !== null) return
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve())
      p.kill('SIGKILL')
    })
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
