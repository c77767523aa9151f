/**
 * Runs a local `redis-server` (Debian's, from PATH) as a child process: for `tribune cluster` without `--redis`,
 * for the tests and for the benchmarks. Data is kept in an append-only file fsynced on every write, so what Redis
 * acknowledged survives a crash of Redis.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'

export interface RedisServer {
  port: number
  url: string
  pid: number
  /** Resolves when the process exits (for whatever reason). */
  exited: Promise<void>
  /** Stops the server at once (SIGKILL: nothing more is written). */
  kill: () => Promise<void>
  /** Asks the server to stop (SIGTERM) and waits for it. */
  stop: () => Promise<void>
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
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

/**
 * Starts redis-server on 127.0.0.1:`port` with its files in `dir`, and waits until it answers PING.
 * @param opts.args more redis-server options (e.g. `['--replicaof', '127.0.0.1', '6379']`), after the defaults
 * @param opts.sentinelConf run as a Redis Sentinel with this configuration file (which it rewrites: writable, an
 *   absolute path); no data files then
 * @throws Error when redis-server is not installed, exits, or does not answer within 10 s (with its stderr)
 */
export async function spawnRedisServer (opts: { port: number, dir: string, args?: string[], sentinelConf?: string }): Promise<RedisServer> {
  mkdirSync(opts.dir, { recursive: true })
  const data = opts.sentinelConf !== undefined ? [] : ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always']
  const child: ChildProcess = spawn('redis-server', [
    ...(opts.sentinelConf !== undefined ? [opts.sentinelConf, '--sentinel'] : []),
    '--port', String(opts.port), '--bind', '127.0.0.1', '--dir', opts.dir, ...data,
    '--protected-mode', 'no', '--loglevel', 'warning', ...(opts.args ?? [])
  ], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve))
  const probe = new Redis({ port: opts.port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  probe.on('error', () => {})
  const deadline = Date.now() + 10_000
  try {
    for (;;) {
      const failed = await Promise.race([spawnError, new Promise<null>((resolve) => setTimeout(() => resolve(null), 25))])
      if (failed !== null) throw new Error(`cannot run redis-server (${failed.message}); install it (Debian: apt-get install redis-server)`)
      if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}: ${stderr.trim()}`)
      try {
        await probe.connect()
        if ((await probe.ping()) === 'PONG') break
      } catch {}
      probe.disconnect()
      if (Date.now() > deadline) throw new Error(`redis-server on port ${opts.port} did not answer within 10 s: ${stderr.trim()}`)
    }
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  } finally {
    probe.disconnect()
  }
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve())
      child.kill(signal)
    })
  }
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })
  return { port: opts.port, url: `redis://127.0.0.1:${opts.port}`, pid: child.pid ?? 0, exited, kill: async () => await end('SIGKILL'), stop: async () => await end('SIGTERM') }
}
