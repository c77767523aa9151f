/**
 * The Redis Sentinel options (`--redis-sentinels`, `--redis-master-name`, `--redis-min-replicas`):
 *  - pairings that cannot work are refused, naming the option and where it came from (flag, variable, config file);
 *  - `tribune broker` with a master name the sentinels do not know exits 1 and says so;
 *  - `tribune cluster --nodes 2` with sentinels starts no redis-server; both nodes reach the master through the
 *    sentinels, each with its 5 connections (feed appends on their own, --redis-min-replicas passed on), a feed
 *    published through one reaches viewers, and SIGTERM stops the cluster.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test, expect } from 'vitest'
import { loadConfig } from '../../broker/src/config.js'
import { onCleanup, tempDir } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { spawnBroker } from '../helpers/process.js'
import { replicatedRedisForTest } from '../helpers/replicated-redis.js'

const BIN = join(import.meta.dirname, '../../bin/tribune.js')

test('sentinel options that do not fit together are refused, naming the option', () => {
  const refused = (flags: Record<string, string>, env: Record<string, string> = {}): string => {
    try {
      loadConfig(flags, env)
    } catch (err) {
      return (err as Error).message
    }
    throw new Error(`accepted: ${JSON.stringify({ flags, env })}`)
  }
  expect(refused({ 'redis-sentinels': '10.0.0.1:26379' })).toContain('--redis-sentinels: needs a master name too (--redis-master-name')
  expect(refused({ 'redis-master-name': 'mymaster' })).toContain('--redis-master-name: needs sentinels too (--redis-sentinels')
  expect(refused({}, { TRIBUNE_REDIS_SENTINELS: '10.0.0.1:26379,10.0.0.2' , TRIBUNE_REDIS_MASTER_NAME: 'm' })).toContain('TRIBUNE_REDIS_SENTINELS[1]: must be host:port (got "10.0.0.2")')
  expect(refused({ 'redis-sentinels': 'a:1', 'redis-master-name': 'mymaster', redis: 'redis://10.0.0.5:6379' }))
    .toContain('--redis: with --redis-sentinels it gives only [user:password@] and /database, its host being the master name: redis://[user:password@]mymaster[/database]')
  expect(refused({ 'redis-sentinels': 'a:1', 'redis-master-name': 'mymaster', redis: 'rediss://mymaster' })).toContain('--redis: rediss:// (TLS) is not supported with --redis-sentinels')
  expect(refused({ 'redis-min-replicas': '1' })).toContain('--redis-min-replicas: needs Redis (--redis or --redis-sentinels)')
  expect(refused({ redis: 'redis://x:6379', 'redis-min-replicas': '-1' })).toContain('--redis-min-replicas: must be >= 0')

  const ok = loadConfig({ 'redis-master-name': 'mymaster', redis: 'redis://:secret@mymaster/2' }, { TRIBUNE_REDIS_SENTINELS: '10.0.0.1:26379, [::1]:26380', TRIBUNE_REDIS_MIN_REPLICAS: '1' })
  expect(ok).toMatchObject({ redisSentinels: ['10.0.0.1:26379', '[::1]:26380'], redisMasterName: 'mymaster', redisMinReplicas: 1 })
  const file = join(tempDir(), 'tribune.json')
  writeFileSync(file, JSON.stringify({ redisSentinels: ['10.0.0.1:26379'], redisMasterName: 'm', redisMinReplicas: 2 }))
  expect(loadConfig({ config: file }, {})).toMatchObject({ redisSentinels: ['10.0.0.1:26379'], redisMasterName: 'm', redisMinReplicas: 2 })
  writeFileSync(file, JSON.stringify({ redisSentinels: ['10.0.0.1:26379'] }))
  expect(() => loadConfig({ config: file }, {})).toThrow(`${file}: redisSentinels: needs a master name too`)
})

test('tribune broker with a master name the sentinels do not know exits 1, saying so', async () => {
  const redis = await replicatedRedisForTest({ replicas: 0, sentinels: 1 })
  const run = spawnBroker(['--redis-sentinels', redis.sentinelList[0], '--redis-master-name', 'nope'])
  expect(await run.exited).toBe(1)
  expect(run.out()).toContain(`sentinels ${redis.sentinelList[0]} (master nope): cannot connect`)
  expect(run.out()).toContain('do the sentinels answer, and know a master named nope?')
}, 20_000)

test('tribune cluster --nodes 2 with sentinels: no redis-server of its own, both nodes on the sentinels\' master with --redis-min-replicas', async () => {
  const redis = await replicatedRedisForTest({ replicas: 1, sentinels: 1 })
  const child = spawn(process.execPath, [BIN, 'cluster', '--nodes', '2', '--port', '0', '--ws-port', '0', '--data-dir', tempDir(), '--log-level', 'info',
    '--redis-sentinels', redis.sentinelList.join(','), '--redis-master-name', redis.masterName, '--redis-min-replicas', '1', '--node-id', 'sn'], { stdio: ['ignore', 'pipe', 'pipe'] })
  onCleanup(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  const line = (msg: string): any => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((l) => l.msg === msg)
  await waitFor(() => line('cluster listening') !== undefined, `cluster listening (output so far: ${out.slice(0, 500)})`, 20_000)
  expect(line('started redis-server for the cluster')).toBeUndefined()
  const up = line('cluster listening')
  expect(up.redis).toBe(`sentinels ${redis.sentinelList[0]} (master ${redis.masterName})`)
  const names = await redis.clientNames(redis.servers[0].port)
  expect(names.filter((n) => n === 'tribune:sn-0')).toHaveLength(5)
  expect(names.filter((n) => n === 'tribune:sn-1')).toHaveLength(5)

  const tcp = up.ports['mqtt:0'] as number
  const viewers = await Promise.all(Array.from({ length: 4 }, async () => {
    const c = await connect(`mqtt://127.0.0.1:${tcp}`)
    const got = collect(c)
    await c.subscribeAsync('$replay/all/matches/s/events', { qos: 1 })
    return got
  }))
  const pub = await connect(`mqtt://127.0.0.1:${tcp}`)
  for (let i = 1; i <= 10; i++) await pub.publishAsync('matches/s/events', JSON.stringify({ id: `s${i}` }), { qos: 1 })
  for (const got of viewers) {
    await waitFor(() => got.length === 10, '10 messages')
    expect(got.map((m) => m.json.seq)).toEqual(Array.from({ length: 10 }, (_, k) => k + 1))
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  expect(await exited).toBe(0)
}, 40_000)
