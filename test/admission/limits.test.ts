/**
 * Admission control on one node (broker/src/admission/): a connection beyond the node's limits is refused when it
 * arrives, before any MQTT or authentication work: CONNACK 3 over TCP, HTTP 503 with Retry-After over WebSocket, a
 * close before the handshake over TLS. Tests whether the rate (token bucket), the connection count, the per-address
 * limits and overload protection (event-loop lag) each refuse what they should and take what they should, and
 * whether refused client-library viewers get in later through their backoff with their feed exact.
 */
import net from 'node:net'
import tls from 'node:tls'
import { test, expect } from 'vitest'
import WebSocket from 'ws'
import mqttPacket from 'mqtt-packet'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { waitFor } from '../helpers/mqtt.js'
import { Viewer } from '../../client/src/index.js'
import { Publisher } from '../../publisher/src/index.js'
import { join } from 'node:path'
import { EXAMPLES } from '../helpers/auth.js'

const tlsPath = (f: string): string => join(EXAMPLES, 'tls', f)

const CONNECT = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: '', keepalive: 30 })

/** Opens a raw TCP connection, sends a CONNECT, and resolves with the CONNACK return code, or 'closed'. */
async function tcpConnack (port: number, localAddress?: string): Promise<number | 'closed'> {
  return await new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress })
    onCleanup(() => { socket.destroy() })
    socket.on('error', () => {})
    socket.on('connect', () => socket.write(CONNECT))
    const parser = mqttPacket.parser()
    parser.on('packet', (p) => { if (p.cmd === 'connack') resolve(p.returnCode ?? -1) })
    socket.on('data', (d) => parser.parse(d))
    socket.on('close', () => resolve('closed'))
  })
}

/** Opens a WebSocket to `url` and resolves with the HTTP status of its upgrade (101 when made) and Retry-After. */
async function wsUpgrade (url: string): Promise<{ status: number, retryAfter?: string }> {
  return await new Promise((resolve) => {
    const ws = new WebSocket(url, 'mqtt')
    onCleanup(() => { ws.terminate() })
    ws.on('error', () => {})
    ws.on('open', () => resolve({ status: 101 }))
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] })
      res.resume()
    })
  })
}

const count = <T>(list: T[], pred: (x: T) => boolean): number => list.filter(pred).length

// In the first two tests every refusal is answered (--max-refusal-rate 0): at the default budget (1,200 a second, 120 at
// once) most of 450 refusals at once would be shed instead; shedding has its own test below.
test('a node with --max-conn-rate 50 --max-conn-burst 50 takes about 50 of 500 TCP connections offered at once and refuses the rest with CONNACK 3', async () => {
  const node = await brokerForTest({ maxConnRate: 50, maxConnBurst: 50, maxRefusalRate: 0 })
  const start = Date.now()
  const codes = await Promise.all(Array.from({ length: 500 }, async () => await tcpConnack(node.tcpPort)))
  const seconds = (Date.now() - start) / 1000
  const accepted = count(codes, (c) => c === 0)
  // The bucket starts with 50 tokens and gains 50 a second while the 500 arrive.
  expect(accepted).toBeGreaterThanOrEqual(50)
  expect(accepted).toBeLessThanOrEqual(50 + Math.ceil(50 * seconds) + 1)
  expect(count(codes, (c) => c === 3)).toBe(500 - accepted)
  expect(node.admission.stats().refused.rate).toBe(500 - accepted)
  console.log(`TCP: ${accepted} of 500 taken, ${500 - accepted} refused with CONNACK 3, in ${seconds.toFixed(2)} s`)
})

test('over WebSocket the refused upgrades get HTTP 503 with Retry-After, and /healthz answers meanwhile', async () => {
  const node = await brokerForTest({ maxConnRate: 50, maxConnBurst: 50, maxRefusalRate: 0 })
  const start = Date.now()
  const results = await Promise.all(Array.from({ length: 500 }, async () => await wsUpgrade(node.wsUrl)))
  const seconds = (Date.now() - start) / 1000
  const accepted = count(results, (r) => r.status === 101)
  expect(accepted).toBeGreaterThanOrEqual(50)
  expect(accepted).toBeLessThanOrEqual(50 + Math.ceil(50 * seconds) + 1)
  const refused = results.filter((r) => r.status !== 101)
  expect(refused).toHaveLength(500 - accepted)
  for (const r of refused) {
    expect(r.status).toBe(503)
    expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1)
    expect(Number(r.retryAfter)).toBeLessThanOrEqual(31)
  }
  // Retry-After spreads the refused over the backlog (about 440 refused at 50/s: 9 s), not all after 1 s.
  const afters = refused.map((r) => Number(r.retryAfter))
  expect(new Set(afters).size).toBeGreaterThanOrEqual(4)
  expect(Math.max(...afters)).toBeGreaterThanOrEqual(5)
  const health = await fetch(`http://127.0.0.1:${node.wsPort}/healthz`)
  expect(health.status).toBe(200)
  const body = await health.json() as { admission: { refused: { rate: number }, connections: number } }
  // The /healthz request's own connection counts too (admission sees every connection to this port from accept):
  // held, or refused by the rate and answered all the same.
  expect(body.admission.refused.rate + body.admission.connections).toBe(500 - accepted + accepted + 1)
  expect(body.admission.connections).toBeGreaterThanOrEqual(accepted)
  console.log(`WS: ${accepted} of 500 upgraded, ${500 - accepted} answered 503 (Retry-After ${Math.min(...afters)}-${Math.max(...afters)} s), in ${seconds.toFixed(2)} s`)
})

test('--max-connections refuses beyond the count held, and takes again when one closes', async () => {
  const node = await brokerForTest({ maxConnections: 10, maxConnRate: 0 })
  const held = await Promise.all(Array.from({ length: 9 }, async () => await wsUpgrade(node.wsUrl)))
  expect(held.map((r) => r.status)).toEqual(Array(9).fill(101))
  const tenth = net.connect(node.tcpPort, '127.0.0.1')
  tenth.on('error', () => {})
  await new Promise((resolve) => tenth.once('connect', resolve))
  await waitFor(() => node.admission.stats().connections === 10, 'ten connections held')
  expect(await tcpConnack(node.tcpPort)).toBe(3)
  expect(await wsUpgrade(node.wsUrl)).toEqual({ status: 503, retryAfter: '5' })
  const ready = await fetch(`http://127.0.0.1:${node.wsPort}/readyz`)
  expect(ready.status).toBe(503)
  expect(((await ready.json()) as { reasons: string[] }).reasons).toContain('at max connections')
  tenth.destroy()
  await waitFor(() => node.admission.stats().connections === 9, 'one connection released')
  expect(await tcpConnack(node.tcpPort)).toBe(0)
  // The TCP CONNECT, the upgrade, and the /readyz request's connection (refused at accept, its route answered).
  expect(node.admission.stats().refused['max-connections']).toBe(3)
})

test('connections to the WebSocket port count from accept, upgraded or not: silent ones fill --max-connections, a refused one is closed within 2 s, an upgrade is not counted twice', async () => {
  const node = await brokerForTest({ maxConnections: 5, maxConnRate: 0, metricsPort: 0 })
  const silent = async (): Promise<net.Socket> => {
    const socket = net.connect(node.wsPort, '127.0.0.1')
    onCleanup(() => { socket.destroy() })
    socket.on('error', () => {})
    await new Promise((resolve) => socket.once('connect', resolve))
    return socket
  }
  // Connections that never send a request: before, admission saw them only at an upgrade that never came.
  const quiet = [await silent(), await silent(), await silent()]
  await waitFor(() => node.admission.stats().connections === 3, 'three silent connections counted')
  const upgraded = [await wsUpgrade(node.wsUrl), await wsUpgrade(node.wsUrl)]
  expect(upgraded.map((r) => r.status)).toEqual([101, 101])
  // Counted once each, from accept: 5, not 7 (read once both upgrades have completed).
  expect(node.admission.stats().connections).toBe(5)
  expect(await wsUpgrade(node.wsUrl)).toEqual({ status: 503, retryAfter: '5' })
  expect(await tcpConnack(node.tcpPort)).toBe(3)
  const plain = await fetch(`http://127.0.0.1:${node.wsPort}/mqtt`)
  expect(plain.status).toBe(503)
  expect(plain.headers.get('retry-after')).toBe('5')
  // A refused connection that sends nothing does not keep its file descriptor beyond 2 s.
  const start = Date.now()
  const refused = await silent()
  await new Promise((resolve) => refused.once('close', resolve))
  expect(Date.now() - start).toBeLessThan(3000)
  const health = await fetch(`http://127.0.0.1:${node.ports.metrics}/healthz`)
  const body = await health.json() as { admission: { connections: number, refused: Record<string, number> } }
  expect(body.admission.connections).toBe(5)
  expect(body.admission.refused['max-connections']).toBe(4)
  for (const s of quiet) s.destroy()
  await waitFor(() => node.admission.stats().connections === 2, 'the silent connections released')
  expect((await wsUpgrade(node.wsUrl)).status).toBe(101)
})

test('a WSS listener counts a connection from accept and refuses before the TLS handshake', async () => {
  const node = await brokerForTest({
    maxConnections: 1,
    maxConnRate: 0,
    listeners: [{ protocol: 'wss', port: 0, tls: { cert: tlsPath('server.pem'), key: tlsPath('server.key') } }]
  })
  const port = Object.values(node.ports)[0]
  // A TLS connection that never sends its upgrade holds the node's one connection.
  const first = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false })
  onCleanup(() => { first.destroy() })
  await new Promise((resolve) => first.once('secureConnect', resolve))
  expect(node.admission.stats().connections).toBe(1)
  const second = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false })
  second.on('error', () => {})
  let secured = false
  second.on('secureConnect', () => { secured = true })
  await new Promise((resolve) => second.once('close', resolve))
  expect(secured).toBe(false)
  expect(node.admission.stats().refused['max-connections']).toBe(1)
  first.destroy()
  await waitFor(() => node.admission.stats().connections === 0, 'the TLS connection released')
})

test('--max-conns-per-address and --max-conn-rate-per-address refuse one address beyond its share', async () => {
  const node = await brokerForTest({ maxConnsPerAddress: 5, maxConnRate: 0 })
  const codes = []
  for (let i = 0; i < 6; i++) codes.push(await tcpConnack(node.tcpPort))
  expect(codes).toEqual([0, 0, 0, 0, 0, 3])
  expect(node.admission.stats().refused['address-connections']).toBe(1)

  const byRate = await brokerForTest({ maxConnRatePerAddress: 20, maxConnRate: 0 })
  const burst = await Promise.all(Array.from({ length: 60 }, async () => await tcpConnack(byRate.tcpPort)))
  const accepted = count(burst, (c) => c === 0)
  expect(accepted).toBeGreaterThanOrEqual(20)
  expect(accepted).toBeLessThan(40)
  expect(count(burst, (c) => c === 3)).toBe(60 - accepted)
  expect(byRate.admission.stats().refused['address-rate']).toBe(60 - accepted)
})

test('an address over its own limits does not spend the answers of others: 50 answers a second, then closed unanswered', async () => {
  // The node's budget of answered refusals is small (50 a second, 5 at once): before, the flood's 280 refusals spent
  // it, and the node then shed every new connection, the other address's too.
  const node = await brokerForTest({ maxConnRatePerAddress: 20, maxConnRate: 0, maxRefusalRate: 50 })
  const flood = await Promise.all(Array.from({ length: 300 }, async () => await tcpConnack(node.tcpPort, '127.0.0.2')))
  const accepted = count(flood, (c) => c === 0)
  const answered = count(flood, (c) => c === 3)
  const closed = count(flood, (c) => c === 'closed')
  expect(accepted).toBeGreaterThanOrEqual(20)
  expect(accepted).toBeLessThan(40)
  expect(answered).toBeGreaterThanOrEqual(50)
  expect(answered).toBeLessThan(60)
  expect(accepted + answered + closed).toBe(300)
  const stats = node.admission.stats()
  expect(stats.refused['address-rate']).toBe(answered + closed)
  expect(stats.addressDropped).toBe(closed)
  expect(stats.shed).toBe(0)
  // Another address is taken at once, and refused clearly only for its own share.
  expect(await tcpConnack(node.tcpPort, '127.0.0.3')).toBe(0)
  console.log(`flood of 300 from one address: ${accepted} taken, ${answered} CONNACK 3, ${closed} closed unanswered; another address taken`)
})

test('--metrics-port holds at most 64 connections: silent ones cannot take the node\'s files, and time out within seconds', async () => {
  const node = await brokerForTest({ maxConnRate: 0, metricsPort: 0 })
  const port = node.ports.metrics
  const silent = await Promise.all(Array.from({ length: 64 }, async () => await new Promise<net.Socket>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s))
    s.on('error', () => {})
    onCleanup(() => { s.destroy() })
  })))
  await new Promise((resolve) => setTimeout(resolve, 200))
  // The 65th is closed at accept, without an answer.
  const extra = net.connect(port, '127.0.0.1')
  extra.on('error', () => {})
  const answer = await new Promise<string>((resolve) => {
    extra.on('connect', () => extra.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'))
    extra.on('data', (d: Buffer) => resolve(d.toString().split('\r\n')[0]))
    extra.on('close', () => resolve('closed'))
  })
  expect(answer).toBe('closed')
  // The silent ones are dropped by the 5 s idle timeout, then /healthz answers again.
  const start = Date.now()
  await Promise.all(silent.map(async (s) => { if (!s.destroyed) await new Promise((resolve) => s.once('close', resolve)) }))
  expect(Date.now() - start).toBeLessThan(8000)
  expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200)
})

test('a TLS listener refuses before the handshake', async () => {
  const node = await brokerForTest({
    maxConnections: 1,
    maxConnRate: 0,
    listeners: [{ protocol: 'mqtts', port: 0, tls: { cert: tlsPath('server.pem'), key: tlsPath('server.key') } }]
  })
  const port = Object.values(node.ports)[0]
  const first = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false })
  onCleanup(() => { first.destroy() })
  await new Promise((resolve) => first.once('secureConnect', resolve))
  const second = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false })
  second.on('error', () => {})
  let secured = false
  second.on('secureConnect', () => { secured = true })
  await new Promise((resolve) => second.once('close', resolve))
  expect(secured).toBe(false)
  expect(node.admission.stats().refused['max-connections']).toBe(1)
})

test('a node whose event loop lags beyond --overload-lag-ms refuses a new connection with CONNACK 3, and takes it again once the loop recovers', async () => {
  const node = await brokerForTest({ overloadLagMs: 200, maxConnRate: 0 })
  expect(await tcpConnack(node.tcpPort)).toBe(0)
  // The connection is made (the kernel completes it), then the loop is held for 600 ms before the node can look at it.
  const pending = tcpConnack(node.tcpPort)
  const until = Date.now() + 600
  while (Date.now() < until) { /* busy: a node delivering a goal to many viewers */ }
  expect(await pending).toBe(3)
  expect(node.admission.stats().refused.overload).toBe(1)
  const ws = await wsUpgrade(node.wsUrl)
  expect(ws).toEqual({ status: 503, retryAfter: '2' })
  await waitFor(() => !node.admission.overloaded, 'the node to recover', 5000)
  expect(await tcpConnack(node.tcpPort)).toBe(0)
  expect((await wsUpgrade(node.wsUrl)).status).toBe(101)
})

test('500 client-library viewers offered at once to a node with --max-conn-rate 50: the refused get in later through their backoff, every feed exact', async () => {
  const node = await brokerForTest({ maxConnRate: 50, maxConnBurst: 50 })
  const feed = 'matches/herd/events'
  const publisher = await Publisher.connect(node.tcpUrl)
  onCleanup(async () => { await publisher.close() })
  for (let i = 1; i <= 5; i++) await publisher.publishEvent(feed, { type: 'goal', id: `e${i}`, minute: i })
  const viewers: Array<{ viewer: Viewer, seqs: number[] }> = []
  for (let i = 0; i < 500; i++) {
    const viewer = Viewer.connect(i % 2 === 0 ? node.tcpUrl : node.wsUrl, { reconnect: { baseMs: 500, capMs: 4000 } })
    onCleanup(async () => { await viewer.close() })
    viewer.on('error', () => {})
    const entry = { viewer, seqs: [] as number[] }
    viewer.watchFeed(feed, { from: 'all' }, (m) => entry.seqs.push(m.seq))
    viewers.push(entry)
  }
  // Publish while they come in.
  for (let i = 6; i <= 40; i++) {
    await publisher.publishEvent(feed, { type: 'tick', id: `e${i}`, minute: i })
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await waitFor(() => viewers.every((v) => v.seqs.length >= 40), 'every viewer to have the 40 events', 60_000)
  const expected = Array.from({ length: 40 }, (_, i) => i + 1)
  for (const v of viewers) expect(v.seqs).toEqual(expected)
  const stats = node.admission.stats()
  expect(stats.refused.rate).toBeGreaterThan(300)
  console.log(`500 viewers in, each with seqs 1..40 once, after ${stats.refused.rate} refusals (rate)`)
}, 90_000)

test('beyond --max-refusal-rate clear refusals, new connections are closed at accept without an answer; --metrics-port answers meanwhile', async () => {
  const node = await brokerForTest({ maxConnRate: 1, maxConnBurst: 1, maxRefusalRate: 200, metricsPort: 0 })
  const metrics = `http://127.0.0.1:${node.ports.metrics}`
  const start = Date.now()
  const codes = await Promise.all(Array.from({ length: 300 }, async () => await tcpConnack(node.tcpPort)))
  const seconds = (Date.now() - start) / 1000
  const accepted = count(codes, (c) => c === 0)
  const refused = count(codes, (c) => c === 3)
  const closed = count(codes, (c) => c === 'closed')
  expect(accepted + refused + closed).toBe(300)
  expect(accepted).toBeLessThanOrEqual(1 + Math.ceil(seconds) + 1)
  // The budget: 20 at once (a tenth of the rate), 200 more a second.
  expect(refused).toBeGreaterThanOrEqual(20)
  expect(refused).toBeLessThanOrEqual(20 + Math.ceil(200 * seconds) + 1)
  expect(closed).toBeGreaterThan(100)
  const health = await fetch(`${metrics}/healthz`)
  expect(health.status).toBe(200)
  const body = await health.json() as { admission: { refused: { rate: number }, shed: number } }
  expect(body.admission.refused.rate).toBe(refused)
  expect(body.admission.shed).toBe(closed)
  // The Retry-After of a rate refusal counts the connections shed as backlog too (at 1 a second, the ~280 just shed
  // put it at the 30 s cap: 1-31 s): counting only the answered refusals, it would be at most 1 + their number.
  const afters = Array.from({ length: 200 }, () => node.admission.retryAfter('rate'))
  expect(Math.max(...afters)).toBeGreaterThan(refused + 2)
  expect(Math.max(...afters)).toBeLessThanOrEqual(31)
  expect((await fetch(`${metrics}/readyz`)).status).toBe(200)
  // Once the budget has grown back (200 a second), refusals are clear again (the rate's one token taken first).
  await new Promise((resolve) => setTimeout(resolve, 1200))
  expect(node.admission.stats().shedding).toBe(false)
  expect([await tcpConnack(node.tcpPort), await tcpConnack(node.tcpPort)]).toEqual([0, 3])
  // WebSocket upgrades are shed too: beyond the budget the connection closes before any HTTP answer.
  const wsStart = Date.now()
  const outcomes = await Promise.all(Array.from({ length: 100 }, async () => await new Promise<string>((resolve) => {
    const socket = new WebSocket(node.wsUrl, 'mqtt')
    onCleanup(() => { socket.terminate() })
    socket.on('open', () => resolve('open'))
    socket.on('unexpected-response', (_req, res) => { resolve(`HTTP ${res.statusCode ?? 0}`); res.resume() })
    socket.on('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message))
  })))
  const wsSeconds = (Date.now() - wsStart) / 1000
  const wsRefused = count(outcomes, (o) => o === 'HTTP 503')
  const wsClosed = count(outcomes, (o) => o === 'ECONNRESET' || o === 'socket hang up')
  expect(count(outcomes, (o) => o === 'open')).toBeLessThanOrEqual(1)
  // The budget is full again (20), and gains 200 a second while the 100 arrive.
  expect(wsRefused).toBeGreaterThanOrEqual(15)
  expect(wsRefused).toBeLessThanOrEqual(20 + Math.ceil(200 * wsSeconds) + 1)
  expect(wsClosed).toBeGreaterThan(0)
  expect(wsRefused + wsClosed + count(outcomes, (o) => o === 'open')).toBe(100)
  console.log(`300 at once: ${accepted} taken, ${refused} CONNACK 3, ${closed} closed at accept, in ${seconds.toFixed(2)} s; then 100 WebSocket upgrades: ${wsRefused} answered 503, ${wsClosed} closed at accept`)
})
