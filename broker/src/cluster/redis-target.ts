/**
 * Where a node's Redis is: one server named by a URL (`--redis`), or the master a group of Redis Sentinels elects
 * (`--redis-sentinels`, `--redis-master-name`, and optionally `--redis` for the user, password and database only:
 * `redis://[user:password@]<master name>[/database]`). Every connection of the node is made here, so all of them
 * follow the same master.
 *
 * With sentinels (ioredis' sentinel mode): each connection asks a sentinel for the master's address whenever it
 * connects, checks that the server it reached is a master (ioredis' ready check compares `role`), and
 *  - when the master dies, reconnects every 250 ms at most, asking again, so it is on the new master within 250 ms of
 *    the sentinels' promotion (`retryStrategy`);
 *  - when the master is demoted while alive (a manual `SENTINEL FAILOVER`, a partition healed), leaves it on the
 *    sentinels' `+switch-master` message (cluster/sentinel-switch.ts), or at the first write refused with READONLY,
 *    which is sent again on the new master (`reconnectOnError`);
 *  - when no sentinel answers, asks them again every 10 ms to 1 s (ioredis' `sentinelRetryStrategy`); a sentinel that
 *    does not accept the connection within 2 s, or answer within 1 s, is passed over for the next.
 */
import { Redis, type RedisOptions } from 'ioredis'

/** One Redis server, or a master found through sentinels. */
export type RedisTarget =
  | { url: string }
  | { sentinels: Array<{ host: string, port: number }>, masterName: string, /** user, password, database only */ url?: string }

/**
 * The target a configuration names, or undefined for the embedded store.
 * @param cfg `redis`, `redisSentinels` (`host:port` each) and `redisMasterName`, as validated by config.ts
 */
export function redisTarget (cfg: { redis?: string, redisSentinels?: string[], redisMasterName?: string }): RedisTarget | undefined {
  if (cfg.redisSentinels !== undefined && cfg.redisMasterName !== undefined) {
    const sentinels = cfg.redisSentinels.map((s) => {
      const at = s.lastIndexOf(':')
      return { host: s.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(s.slice(at + 1)) }
    })
    return { sentinels, masterName: cfg.redisMasterName, url: cfg.redis }
  }
  return cfg.redis !== undefined ? { url: cfg.redis } : undefined
}

/** The database number the target's URL names (0 when none). */
export function databaseOf (target: RedisTarget): number {
  return target.url === undefined ? 0 : Number(new URL(target.url).pathname.slice(1) || '0')
}

/** The target for logs and errors, the password hidden: `redis://***@host:6379` or `sentinels a:26379,b:26379 (master m)`. */
export function describeTarget (target: RedisTarget): string {
  const redact = (url: string): string => url.replace(/\/\/[^@/]*@/, '//***@')
  if (!('sentinels' in target)) return redact(target.url)
  return `sentinels ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')} (master ${target.masterName}${target.url !== undefined ? `, ${redact(target.url)}` : ''})`
}

/**
 * A new ioredis connection to the target with `options` (retries, key prefix, ...), in sentinel mode when the target
 * has sentinels.
 */
export function connectRedis (target: RedisTarget, options: RedisOptions): Redis {
  if (!('sentinels' in target)) return new Redis(target.url, options)
  const url = target.url !== undefined ? new URL(target.url) : undefined
  return new Redis({
    ...options,
    sentinels: target.sentinels,
    name: target.masterName,
    role: 'master',
    username: url?.username !== undefined && url.username !== '' ? decodeURIComponent(url.username) : undefined,
    password: url?.password !== undefined && url.password !== '' ? decodeURIComponent(url.password) : undefined,
    db: databaseOf(target),
    retryStrategy: (times) => Math.min(50 * times, 250),
    connectTimeout: 2000,
    sentinelCommandTimeout: 1000,
    reconnectOnError: (err) => /^(READONLY|LOADING)/.test(err.message) ? 2 : false
  })
}
