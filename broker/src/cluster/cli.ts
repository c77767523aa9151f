/**
 * `tribune cluster --nodes N [broker options]`: N broker nodes on this machine, one process each (default one per
 * core), sharing the listening ports (node:cluster hands each new connection to a node in turn) and linked through
 * Redis: the `--redis` (or `--redis-sentinels`) given, or else a redis-server started here with its data under
 * `<data-dir>/redis`.
 * A node that dies is started again; SIGINT/SIGTERM stop every node, then that redis-server; SIGHUP is passed on.
 * On several machines, run `tribune broker --redis <url>` on each instead.
 */
import cluster, { type Worker } from 'node:cluster'
import { availableParallelism, hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { join, resolve } from 'node:path'
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { ConfigError, helpText, loadConfig, options } from '../config.js'
import { UnknownFlagError, closestFlag } from '../../../client/src/flags.js'
import { createLogger } from '../log.js'
import { freePort, spawnRedisServer, type RedisServer } from './redis-server.js'
import { describeTarget, redisTarget, type RedisTarget } from './redis-target.js'

const BIN = fileURLToPath(new URL('../../../../bin/tribune.js', import.meta.url))

/** What a node forked by `tribune cluster` tells the primary once it listens. */
export interface ListeningMessage {
  tribune: 'listening'
  id: string
  ports: Record<string, number>
}

function usage (): string {
  return [
    'Usage: tribune cluster [--nodes N] [broker options]',
    '',
    `  --nodes N   broker processes on this machine, sharing the ports (default: one per core, here ${availableParallelism()})`,
    '  Without --redis or --redis-sentinels (or their variables), a redis-server is started for the cluster, its data',
    '  under <data-dir>/redis.',
    '',
    helpText().replace('Usage: tribune broker [options]', 'Broker options (every node gets them; --node-id is a prefix, nodes are <id>-0, <id>-1, ...):')
  ].join('\n')
}

/**
 * Runs `tribune cluster`.
 * @returns the exit code: 0 after a clean stop, 2 for a bad option, 1 when redis-server or a node cannot start
 */
export async function clusterMain (argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage())
    return 0
  }
  // `--nodes=3` as well as `--nodes 3`.
  const args = argv.flatMap((a) => a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a])
  let nodes = availableParallelism()
  const at = args.indexOf('--nodes')
  if (at >= 0) {
    const raw = args[at + 1]
    nodes = Number(raw)
    if (raw === undefined || !/^\d+$/.test(raw) || nodes < 1 || nodes > 256) {
      console.error(`tribune cluster: --nodes: must be a whole number from 1 to 256 (got ${raw ?? 'nothing'})`)
      return 2
    }
    args.splice(at, 2)
  }
  // Check every option here once, with the broker's own rules, before forking anything.
  let config
  try {
    const flags: Record<string, string | boolean | undefined> = {}
    const known = ['config', ...options.map((o) => o.flag)]
    for (let i = 0; i < args.length; i++) {
      if (!args[i].startsWith('--')) throw new ConfigError(`unexpected argument ${args[i]}`)
      const name = args[i].slice(2)
      if (!known.includes(name)) throw new UnknownFlagError(args[i], closestFlag(name, [...known, 'nodes', 'help']))
      flags[name] = options.some((o) => o.flag === name && o.boolean === true) ? true : args[++i]
    }
    config = loadConfig(flags, process.env)
  } catch (err) {
    console.error(`tribune cluster: ${(err as Error).message}\n\nRun tribune cluster --help for the options.`)
    return 2
  }
  const log = createLogger(config.logLevel, config.logFormat).child({ role: 'cluster' })
  let redis: RedisServer | null = null
  let stopping = false
  let redisUrl = config.redis
  let lock: string | null = null
  // With sentinels the nodes follow the master they elect: the flags (or variables) reach every node as they are.
  const sentinels = config.redisSentinels !== undefined
  if (redisUrl === undefined && !sentinels) {
    const dir = join(resolve(config.dataDir === ':memory:' ? './data' : config.dataDir), 'redis')
    try {
      lock = await takeLock(dir, log)
      const port = await freePort()
      redis = await spawnRedisServer({ port, dir })
      writeLock(lock, { cluster: process.pid, redis: redis.pid })
      // The cluster's own Redis is part of it: started again on the same port and data when it dies.
      const watch = (server: RedisServer): void => {
        void server.exited.then(async () => {
          if (stopping) return
          log.error({ redis: server.url }, 'the cluster\'s redis-server died; starting it again')
          await new Promise((resolve) => setTimeout(resolve, 500))
          if (stopping) return
          redis = await spawnRedisServer({ port, dir })
          if (lock !== null) writeLock(lock, { cluster: process.pid, redis: redis.pid })
          watch(redis)
        }).catch((err: Error) => log.error({ err }, 'cannot start the cluster\'s redis-server again'))
      }
      watch(redis)
    } catch (err) {
      if (lock !== null) rmSync(lock, { force: true })
      console.error(`tribune cluster: no --redis given and cannot start redis-server: ${(err as Error).message}`)
      return 1
    }
    redisUrl = redis.url
    log.info({ redis: redisUrl, dir }, 'started redis-server for the cluster')
  }
  const idAt = args.indexOf('--node-id')
  if (idAt >= 0) args.splice(idAt, 2) // each node gets its own, below
  const base = config.nodeId ?? `${hostname().replace(/[^A-Za-z0-9_.-]/g, '-')}-${randomBytes(2).toString('hex')}`
  cluster.setupPrimary({ exec: BIN, args: ['broker', ...args], silent: false })
  const listening = new Map<number, ListeningMessage>()
  const deaths: number[] = []
  let failed = false
  let stopAll: (why: string) => void = () => {}
  const generation = new Map<number, number>()
  const fork = (i: number): Worker => {
    // A node started again gets a new id: under its old one, the others would not see that it died, and its
    // clients' wills would wait (the new run publishes them too, at start).
    const g = generation.get(i) ?? 0
    generation.set(i, g + 1)
    const worker = cluster.fork({ ...(redisUrl !== undefined ? { TRIBUNE_REDIS: redisUrl } : {}), TRIBUNE_NODE_ID: g === 0 ? `${base}-${i}` : `${base}-${i}.${g}` })
    let listened = false
    worker.on('message', (msg: ListeningMessage) => {
      if (msg?.tribune !== 'listening') return
      listened = true
      listening.set(i, msg)
      if (listening.size === nodes) log.info({ nodes, ids: [...listening.values()].map((m) => m.id), ports: msg.ports, redis: sentinels ? describeTarget(redisTarget(config) as RedisTarget) : redisUrl }, 'cluster listening')
    })
    worker.on('exit', (code, signal) => {
      if (stopping) return
      listening.delete(i)
      const now = Date.now()
      deaths.push(now)
      while (deaths.length > 0 && deaths[0] < now - 60_000) deaths.shift()
      if (!listened) {
        // It never came up (a port in use, Redis unreachable at start): starting it again would fail the same way.
        log.fatal({ node: `${base}-${i}`, code, signal }, 'a node could not start (its error is above); stopping the cluster')
        failed = true
        stopAll('a node could not start')
        return
      }
      if (deaths.length > 5) {
        log.fatal({ deaths: deaths.length }, 'nodes died more than 5 times in a minute; stopping the cluster')
        failed = true
        stopAll('nodes keep dying')
        return
      }
      log.error({ node: `${base}-${i}`, code, signal }, 'node died; starting it again under a new id')
      setTimeout(() => { if (!stopping) fork(i) }, 500)
    })
    return worker
  }
  for (let i = 0; i < nodes; i++) fork(i)
  return await new Promise<number>((resolveExit) => {
    const stop = (signal: string): void => {
      if (stopping) return
      stopping = true
      log.info({ signal }, 'stopping every node')
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
      void Promise.all(workers.map(async (w) => await new Promise<void>((done) => {
        if (w.isDead()) return done()
        w.once('exit', () => done())
        w.process.kill('SIGTERM')
      }))).then(async () => {
        await redis?.stop()
        if (lock !== null) rmSync(lock, { force: true })
        log.info(redis !== null ? 'cluster stopped, and its redis-server' : 'cluster stopped')
        resolveExit(failed ? 1 : 0)
      })
    }
    stopAll = stop
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGHUP', () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP')
    })
  })
}

/**
 * Makes `dir` this cluster's: a lock file names the cluster process and its redis-server. A live cluster there is an
 * error; a redis-server left running by a cluster that was killed is stopped first.
 * @returns the lock file's path
 * @throws Error naming the process that holds the directory
 */
async function takeLock (dir: string, log: { warn: (obj: object, msg: string) => void }): Promise<string> {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'tribune-cluster.lock')
  let held: { cluster?: number, redis?: number } = {}
  try {
    held = JSON.parse(readFileSync(file, 'utf8')) as typeof held
  } catch {}
  const alive = (pid: number | undefined): boolean => {
    if (pid === undefined || pid <= 0) return false
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  if (alive(held.cluster)) throw new Error(`${dir} is in use by another tribune cluster (pid ${String(held.cluster)}); give this one another --data-dir`)
  if (alive(held.redis)) {
    log.warn({ pid: held.redis, dir }, 'stopping a redis-server left running by a cluster that was killed')
    process.kill(held.redis as number, 'SIGTERM')
    for (let i = 0; i < 100 && alive(held.redis); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  writeLock(file, { cluster: process.pid })
  return file
}

/** Writes the lock file whole or not at all (a temporary file renamed over it), so a reader never sees it half written. */
function writeLock (file: string, content: { cluster: number, redis?: number }): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(content))
  renameSync(`${file}.tmp`, file)
}
