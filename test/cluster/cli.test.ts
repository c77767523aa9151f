/**
 * `tribune cluster --nodes 2`: two broker processes sharing the ports, linked by a redis-server the command starts
 * itself; a feed published through one connection reaches viewers on both nodes; SIGTERM stops the nodes and Redis.
 */
import { spawn } from 'node:child_process'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import http from 'node:http'
import { test, expect } from 'vitest'
import { tempDir, onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'

const BIN = join(import.meta.dirname, '../../bin/tribune.js')

/** GET on a new connection each time, so node:cluster hands it to the next node. */
async function healthz (port: number): Promise<{ id: string, store: string }> {
  return await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/healthz', agent: false, headers: { connection: 'close' } }, (res) => {
      let body = ''
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve(JSON.parse(body)))
    }).on('error', reject)
  })
}

async function portOpen (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

test('tribune cluster --nodes 2 runs two linked nodes on shared ports and stops cleanly', async () => {
  const dir = tempDir()
  const child = spawn(process.execPath, [BIN, 'cluster', '--nodes=2', '--port', '0', '--ws-port', '0', '--data-dir', dir, '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] })
  onCleanup(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  const line = (msg: string): any => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).find((l) => l.msg === msg)
  await waitFor(() => line('cluster listening') !== undefined, `cluster listening (output so far: ${out.slice(0, 500)})`, 20_000)
  const up = line("cluster listening")
  const redisUrl: string = line('started redis-server for the cluster').redis
  expect(up.ids).toHaveLength(2)
  expect(new Set(up.ids).size).toBe(2)
  const tcp = up.ports['mqtt:0'] as number
  const ws = up.ports['ws:0'] as number

  const seen = new Set<string>()
  for (let i = 0; i < 6; i++) {
    const h = await healthz(ws)
    expect(h.store).toBe('redis')
    seen.add(h.id)
  }
  expect([...seen].sort()).toEqual([...up.ids].sort())

  // Viewers on several connections (spread over both nodes), one publisher.
  const viewers = await Promise.all(Array.from({ length: 6 }, async (_, i) => {
    const c = await connect(i % 2 === 0 ? `mqtt://127.0.0.1:${tcp}` : `ws://127.0.0.1:${ws}/mqtt`)
    const got = collect(c)
    await c.subscribeAsync('$replay/all/matches/9/events', { qos: 1 })
    return got
  }))
  const pub = await connect(`mqtt://127.0.0.1:${tcp}`)
  for (let i = 1; i <= 20; i++) await pub.publishAsync('matches/9/events', JSON.stringify({ id: `g${i}` }), { qos: 1 })
  for (const got of viewers) {
    await waitFor(() => got.length === 20, '20 messages')
    expect(got.map((m) => m.json.seq)).toEqual(Array.from({ length: 20 }, (_, k) => k + 1))
  }
  await pub.endAsync()

  const redisPort = Number(new URL(redisUrl).port)
  expect(await portOpen(redisPort)).toBe(true)

  // The cluster's own redis-server is watched: killed, it is started again (same port, same data) and the feed goes on.
  const { readFileSync } = await import('node:fs')
  const lockFile = join(dir, 'redis', 'tribune-cluster.lock')
  const before = JSON.parse(readFileSync(lockFile, 'utf8')) as { cluster: number, redis: number }
  expect(before.cluster).toBe(child.pid)
  process.kill(before.redis, 'SIGKILL')
  await waitFor(() => (JSON.parse(readFileSync(lockFile, 'utf8')) as { redis: number }).redis !== before.redis, 'a new redis-server', 10_000)
  await waitFor(() => line('the cluster\'s redis-server died; starting it again') !== undefined, 'the restart logged')
  const again = await connect(`mqtt://127.0.0.1:${tcp}`)
  await again.publishAsync('matches/9/events', JSON.stringify({ id: 'g21' }), { qos: 1 })
  for (const got of viewers) await waitFor(() => got.length === 21 && got[20].json.seq === 21, 'seq 21 after the Redis restart', 10_000)
  await again.endAsync()
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  expect(await exit).toBe(0)
  expect(line('cluster stopped, and its redis-server')).toBeDefined()
  expect(await portOpen(redisPort)).toBe(false)
  expect(await portOpen(tcp)).toBe(false)
}, 60_000)

test('tribune cluster refuses a bad --nodes and bad broker options, naming them', async () => {
  for (const [args, name] of [[['--nodes', '0'], '--nodes'], [['--nodes', 'x'], '--nodes'], [['--port', '99999'], '--port'], [['--redis', 'http://x'], '--redis'], [['--redis-prefix', 'a*'], '--redis-prefix']] as const) {
    const r = await new Promise<{ code: number | null, err: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, 'cluster', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      let err = ''
      p.stderr.on('data', (d) => { err += d })
      p.on('close', (code) => resolve({ code, err }))
    })
    expect(r.code, args.join(' ')).toBe(2)
    expect(r.err).toContain(name)
  }
})

test('tribune broker --redis stops on SIGTERM within seconds even while Redis is down', async () => {
  const { redisForTest } = await import('../helpers/redis.js')
  const redis = await redisForTest()
  const child = spawn(process.execPath, [BIN, 'broker', '--redis', redis.url, '--port', '0', '--ws-port', '0', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] })
  onCleanup(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  await waitFor(() => out.includes('"broker listening"'), 'the node listening')
  const port = JSON.parse(out.split('\n').find((l) => l.includes('"broker listening"')) ?? '{}').tcpPort as number
  const viewer = await connect(`mqtt://127.0.0.1:${port}`)
  await viewer.subscribeAsync('$replay/all/matches/1/events')
  await redis.kill()
  await new Promise((resolve) => setTimeout(resolve, 300))
  const started = Date.now()
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGTERM')
  expect(await exit).toBe(0)
  expect(Date.now() - started).toBeLessThan(10_000)
  expect(out).not.toContain('Error: Connection is closed')
}, 30_000)

test('tribune cluster stops with exit code 1 when a node cannot start, instead of starting it again forever', async () => {
  const { createServer } = await import('node:net')
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()))
  onCleanup(() => { taken.close() })
  const port = (taken.address() as { port: number }).port
  const dir = tempDir()
  const child = spawn(process.execPath, [BIN, 'cluster', '--nodes', '2', '--port', String(port), '--ws-port', '0', '--data-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
  onCleanup(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  expect(code).toBe(1)
  expect(out).toContain('EADDRINUSE')
  expect(out).toContain('a node could not start')
  expect(out.match(/starting it again/g) ?? []).toHaveLength(0)
}, 30_000)
