/**
 * Drain on one node (node.drain, and `tribune broker --drain-seconds` with SIGTERM). Tests whether a draining node
 * refuses new connections at once the way admission control does (CONNACK 3; HTTP 503 with Retry-After), answers
 * /readyz 503 at once while /healthz stays 200, disconnects its clients at an even rate over the drain's seconds and
 * then stays up empty until undrain (or exits, after SIGTERM), and stops at once on a second SIGTERM; and whether bad
 * drain durations are refused with a clear error.
 */
import net from 'node:net'
import { describe, it, expect } from 'vitest'
import WebSocket from 'ws'
import mqtt from 'mqtt'
import mqttPacket from 'mqtt-packet'
import type { MqttClient } from 'mqtt'
import { brokerForTest } from '../helpers/broker.js'
import { connect, waitFor } from '../helpers/mqtt.js'
import { spawnBroker, listening } from '../helpers/process.js'
import { redisForTest } from '../helpers/redis.js'
import { connectedClients } from '../../broker/src/aedes-internals.js'

/** The status of a new MQTT connection: its CONNACK return code, or the error when there is none. */
async function connackCode (url: string): Promise<number | string> {
  try {
    const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 3000 })
    await c.endAsync(true)
    return 0
  } catch (err) {
    return (err as { code?: number }).code ?? (err as Error).message
  }
}

/** The answer to a WebSocket upgrade: its HTTP status and Retry-After, or 101 when it was taken. */
async function upgradeAnswer (url: string): Promise<{ status: number, retryAfter?: string }> {
  return await new Promise((resolve) => {
    const ws = new WebSocket(url, 'mqtt')
    ws.on('error', () => {})
    ws.on('open', () => { ws.terminate(); resolve({ status: 101 }) })
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] })
      res.resume()
      ws.terminate()
    })
  })
}

describe('node.drain', () => {
  it('refuses new connections and answers /readyz 503 at once, disconnects its clients at an even rate, stays up empty until undrain', async () => {
    const node = await brokerForTest()
    const N = 40
    const closedAt: number[] = []
    const clients: MqttClient[] = []
    for (let i = 0; i < N; i++) {
      const c = await connect(i % 2 === 0 ? node.tcpUrl : node.wsUrl)
      c.on('close', () => closedAt.push(Date.now()))
      clients.push(c)
    }
    expect((await fetch(`http://127.0.0.1:${node.wsPort}/readyz`)).status).toBe(200)

    const started = Date.now()
    const drained = node.drain(2)
    expect(node.draining).toBe(true)
    const ready = await fetch(`http://127.0.0.1:${node.wsPort}/readyz`)
    const readyMs = Date.now() - started
    expect(ready.status).toBe(503)
    expect(((await ready.json()) as { reasons: string[] }).reasons).toContain('draining: refusing new connections')
    expect(readyMs).toBeLessThan(100)
    expect((await fetch(`http://127.0.0.1:${node.wsPort}/healthz`)).status).toBe(200)
    expect(await connackCode(node.tcpUrl)).toBe(3)
    expect(await upgradeAnswer(node.wsUrl)).toEqual({ status: 503, retryAfter: '1' })

    await drained
    const tookMs = Date.now() - started
    await waitFor(() => closedAt.length === N, 'every client to see its connection closed')
    // Even: client i goes at i x 2 s / 40, so each half second takes about 10 of them (one tick of slack).
    const perHalfSecond = [0, 1, 2, 3, 4].map((k) => closedAt.filter((t) => t - started >= k * 500 && t - started < (k + 1) * 500).length)
    expect(perHalfSecond.reduce((a, b) => a + b, 0)).toBe(N)
    for (const n of perHalfSecond.slice(0, 4)) expect(n).toBeGreaterThanOrEqual(7)
    for (const n of perHalfSecond.slice(0, 4)) expect(n).toBeLessThanOrEqual(13)
    expect(perHalfSecond[4]).toBeLessThanOrEqual(3)
    expect(tookMs).toBeGreaterThanOrEqual(1900)
    expect(tookMs).toBeLessThan(4000)
    // The CONNECT and the upgrade, and any new connection fetch opened for /readyz and /healthz (refused at accept,
    // their routes answered all the same; fetch may reuse the one it kept from before the drain).
    expect(node.admission.stats().refused.draining).toBeGreaterThanOrEqual(2)
    expect(node.admission.stats().refused.draining).toBeLessThanOrEqual(4)

    // Drained: up, empty, still refusing, until undrain.
    expect(Object.keys(connectedClients(node.aedes))).toEqual([])
    expect(node.draining).toBe(true)
    expect((await fetch(`http://127.0.0.1:${node.wsPort}/readyz`)).status).toBe(503)
    expect(await connackCode(node.tcpUrl)).toBe(3)
    node.undrain()
    expect(node.draining).toBe(false)
    expect((await fetch(`http://127.0.0.1:${node.wsPort}/readyz`)).status).toBe(200)
    expect(await connackCode(node.tcpUrl)).toBe(0)
    expect((await upgradeAnswer(node.wsUrl)).status).toBe(101)
  })

  it('drains over 0 seconds all at once; a drain started again is planned anew; undrain stops one under way', async () => {
    const node = await brokerForTest()
    const clients = await Promise.all(Array.from({ length: 10 }, async () => await connect(node.tcpUrl)))
    // 60 s, then again over 0 s: the second plan replaces the first, and both calls resolve when it is done.
    const slow = node.drain(60)
    await waitFor(() => clients.filter((c) => !c.connected).length >= 1, 'the first client to go')
    const fast = node.drain(0)
    await Promise.all([slow, fast])
    await waitFor(() => clients.every((c) => !c.connected), 'every client to go')

    node.undrain()
    const again = await Promise.all(Array.from({ length: 10 }, async () => await connect(node.tcpUrl)))
    const stopped = node.drain(60)
    await waitFor(() => again.filter((c) => !c.connected).length >= 1, 'the first client to go')
    node.undrain()
    await stopped
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(again.filter((c) => c.connected).length).toBeGreaterThanOrEqual(8) // the rest stay
    expect(node.draining).toBe(false)
    expect(await connackCode(node.tcpUrl)).toBe(0)
  })

  it('refuses a drain duration that is not a number from 0 to 86400 with an error naming it, and a drain of a closing node; an empty node drains at once', async () => {
    const node = await brokerForTest()
    await expect(node.drain(-1)).rejects.toThrow('drain: seconds must be a number from 0 to 86400, got -1')
    await expect(node.drain(Number.NaN)).rejects.toThrow(RangeError)
    await expect(node.drain('5' as unknown as number)).rejects.toThrow('got "5"')
    await expect(node.drain(86_401)).rejects.toThrow(RangeError)
    expect(node.draining).toBe(false)
    // Nobody to disconnect: done at once, whatever the duration.
    const started = Date.now()
    await node.drain(30)
    expect(Date.now() - started).toBeLessThan(1000)
    expect(node.draining).toBe(true)
    await node.close()
    await expect(node.drain(1)).rejects.toThrow('drain: the node is closing')
  })

  it('disconnects at once a client whose CONNECT completes while the node stays drained', async () => {
    const node = await brokerForTest()
    // Accepted before the drain, its CONNECT sent after it: the node answers it, then closes it.
    const socket = net.connect(node.tcpPort, '127.0.0.1')
    socket.on('error', () => {})
    const packets: mqttPacket.Packet[] = []
    const parser = mqttPacket.parser()
    parser.on('packet', (p) => packets.push(p))
    socket.on('data', (d) => parser.parse(d))
    let closed = false
    socket.on('close', () => { closed = true })
    await new Promise((resolve) => socket.once('connect', resolve))
    await node.drain(0)
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'late', keepalive: 60 }))
    await waitFor(() => closed, 'the late client to be closed')
    expect(packets.map((p) => p.cmd)).toEqual(['connack'])
    expect(Object.keys(connectedClients(node.aedes))).toEqual([])
  })
})

describe('SIGTERM with --drain-seconds', () => {
  it('drains, then exits 0; /readyz answers 503 within 100 ms of the signal', async () => {
    const run = spawnBroker(['--drain-seconds', '2', '--metrics-port', '0', '--log-format', 'json'])
    const { tcp } = await listening(run, 'the node listening')
    const metrics = run.lines().find((l) => l.msg === 'broker listening').ports.metrics as number
    const closedAt: number[] = []
    for (let i = 0; i < 10; i++) (await connect(`mqtt://127.0.0.1:${tcp}`)).on('close', () => closedAt.push(Date.now()))
    expect((await fetch(`http://127.0.0.1:${metrics}/readyz`)).status).toBe(200) // also loads Node's fetch before the signal
    const signalled = Date.now()
    run.child.kill('SIGTERM')
    let status = 0
    let answeredMs = 0
    while (status !== 503) {
      status = (await fetch(`http://127.0.0.1:${metrics}/readyz`)).status
      answeredMs = Date.now() - signalled
      if (answeredMs > 1000) break
    }
    expect(status).toBe(503)
    expect(answeredMs).toBeLessThan(100)
    expect(await run.exited).toBe(0)
    const exitMs = Date.now() - signalled
    expect(exitMs).toBeGreaterThanOrEqual(1800)
    expect(closedAt.length).toBe(10)
    expect(Math.max(...closedAt) - Math.min(...closedAt)).toBeGreaterThan(1400) // spread over the 2 s, not all at once
    const reasons = run.lines().filter((l) => l.msg === 'client disconnected').map((l) => l.reason)
    expect(reasons).toEqual(Array(10).fill('drain'))
    expect(run.lines().map((l) => l.msg)).toContain('broker closed')
  })

  it('stops at once on a second SIGTERM during the drain', async () => {
    const run = spawnBroker(['--drain-seconds', '60', '--log-format', 'json'])
    const { tcp } = await listening(run, 'the node listening')
    for (let i = 0; i < 5; i++) await connect(`mqtt://127.0.0.1:${tcp}`)
    run.child.kill('SIGTERM')
    await waitFor(() => run.lines().some((l) => typeof l.msg === 'string' && l.msg.startsWith('draining:')), 'the drain to start')
    const second = Date.now()
    run.child.kill('SIGTERM')
    expect(await run.exited).toBe(0)
    expect(Date.now() - second).toBeLessThan(3000)
    const reasons = run.lines().filter((l) => l.msg === 'client disconnected').map((l) => l.reason as string)
    expect(reasons).toHaveLength(5)
    expect(reasons.filter((r) => r === 'shutdown').length).toBeGreaterThanOrEqual(4) // the first may have gone already
  })

  it('stops cleanly, once started, on a SIGTERM that comes while the node starts', async () => {
    // A node killed with SIGKILL leaves its id's lease in Redis: a new run under that id waits for it to expire.
    const redis = await redisForTest()
    const args = ['--redis', redis.url, '--node-id', 'early', '--heartbeat-interval', '250', '--log-format', 'json']
    const first = spawnBroker(args)
    await listening(first, 'the first run listening')
    first.child.kill('SIGKILL')
    await first.exited
    const second = spawnBroker(args)
    await waitFor(() => second.lines().some((l) => typeof l.msg === 'string' && l.msg.startsWith('node id held by another run')), 'the second run waiting for the lease')
    second.child.kill('SIGTERM')
    expect(await second.exited).toBe(0)
    const msgs = second.lines().map((l) => l.msg)
    expect(msgs).toContain('broker listening')
    expect(msgs).toContain('broker closed')
  })
})
