/**
 * Slow packets (listeners/slow-packet.ts). Tests whether a packet or WebSocket message a client has begun must be
 * complete within --packet-timeout, whatever its keep alive: a keep alive 0 client that sends most of a PUBLISH and
 * stops (TCP), or binary fragments without FIN while it answers pings (WebSocket), is disconnected with the reason
 * `slow-packet`, so an unfinished packet holds the node's memory for no longer; and whether a client whose packets
 * each arrive in pieces, but each within the timeout, stays connected however long the stream lasts, its chunks never
 * ending at a packet (or message) boundary. Also the defaults: --packet-timeout 15 s, --idle-timeout 10 minutes.
 */
import net from 'node:net'
import { Writable } from 'node:stream'
import { describe, it, expect } from 'vitest'
import { pino } from 'pino'
import mqttPacket from 'mqtt-packet'
import WebSocket from 'ws'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { configSchema } from '../../broker/src/config.js'
import type { BrokerOptions } from '../../broker/src/config.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const gen = (p: object): Buffer => mqttPacket.generate(p as never)
const CONNECT = (clientId: string): Buffer => gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 })
const PUBLISH = (topic: string, payload: Buffer | string): Buffer => gen({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false })
const TIMEOUT = 1000

/** A node whose `client disconnected` lines are kept. */
async function loggedNode (options: Partial<BrokerOptions> = {}): Promise<{ node: Awaited<ReturnType<typeof brokerForTest>>, gone: (clientId: string) => any }> {
  const lines: any[] = []
  const sink = new Writable({ write (chunk, _e, cb) { lines.push(JSON.parse(chunk.toString())); cb() } })
  const node = await brokerForTest({ packetTimeoutMs: TIMEOUT, ...options }, pino({ level: 'info' }, sink))
  return { node, gone: (clientId) => lines.find((l) => l.msg === 'client disconnected' && l.clientId === clientId) }
}

/** A raw TCP client that has sent CONNECT (keep alive 0) and got CONNACK 0; `closedAt` once the node closed it. */
async function rawTcp (port: number, clientId: string): Promise<{ socket: net.Socket, closedAt: () => number | undefined }> {
  const socket = net.connect(port, '127.0.0.1')
  onCleanup(() => { socket.destroy() })
  socket.on('error', () => {})
  let closedAt: number | undefined
  let connack: number | undefined
  socket.on('data', (d) => { if (d[0] === 0x20) connack = d[3] })
  socket.on('close', () => { closedAt = Date.now() })
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(CONNECT(clientId))
  await waitFor(() => connack !== undefined, `${clientId}: CONNACK`)
  expect(connack).toBe(0)
  return { socket, closedAt: () => closedAt }
}

/** A WebSocket client (it answers pings) that has sent CONNECT (keep alive 0) and got CONNACK 0. */
async function rawWs (url: string, clientId: string): Promise<{ ws: WebSocket, closedAt: () => number | undefined }> {
  const ws = new WebSocket(url, 'mqtt')
  onCleanup(() => { ws.terminate() })
  ws.on('error', () => {})
  let closedAt: number | undefined
  let connack: number | undefined
  ws.on('message', (d: Buffer) => { if (d[0] === 0x20) connack = d[3] })
  ws.on('close', () => { closedAt = Date.now() })
  await new Promise((resolve) => ws.once('open', resolve))
  ws.send(CONNECT(clientId))
  await waitFor(() => connack !== undefined, `${clientId}: CONNACK`)
  expect(connack).toBe(0)
  return { ws, closedAt: () => closedAt }
}

describe('a packet begun must be complete within --packet-timeout', () => {
  it('closes a keep alive 0 client over TCP that sent most of a PUBLISH and stopped', async () => {
    const { node, gone } = await loggedNode()
    const client = await rawTcp(node.tcpPort, 'partial-tcp')
    const publish = PUBLISH('t', Buffer.alloc(200_000, 0x78))
    const sentAt = Date.now()
    client.socket.write(publish.subarray(0, 150_000))
    await waitFor(() => client.closedAt() !== undefined, 'the node to close the connection', 5000)
    const after = client.closedAt()! - sentAt
    expect(after).toBeGreaterThanOrEqual(TIMEOUT - 50)
    expect(after).toBeLessThan(TIMEOUT + 1500)
    await waitFor(() => gone('partial-tcp') !== undefined, 'the disconnect line')
    expect(gone('partial-tcp')).toMatchObject({ reason: 'slow-packet', transport: 'mqtt' })
    expect(gone('partial-tcp').detail).toMatch(/^slow packet: a packet begun \d+ ms ago is still incomplete \(--packet-timeout 1000 ms\)$/)
  })

  it('closes a keep alive 0 client over WebSocket that sends fragments without FIN and answers pings', async () => {
    const { node, gone } = await loggedNode({ wsPingIntervalMs: 1000 })
    const client = await rawWs(node.wsUrl, 'partial-ws')
    const sentAt = Date.now()
    for (let i = 0; i < 4; i++) client.ws.send(Buffer.alloc(64 * 1024, 0x78), { binary: true, fin: false })
    await waitFor(() => client.closedAt() !== undefined, 'the node to close the WebSocket', 5000)
    const after = client.closedAt()! - sentAt
    expect(after).toBeGreaterThanOrEqual(TIMEOUT - 50)
    expect(after).toBeLessThan(TIMEOUT + 1500)
    await waitFor(() => gone('partial-ws') !== undefined, 'the disconnect line')
    expect(gone('partial-ws')).toMatchObject({ reason: 'slow-packet', transport: 'ws' })
  })

  it('keeps a TCP client whose packets come in pieces, each packet within the timeout, for three times as long', async () => {
    const { node, gone } = await loggedNode()
    const viewer = await connect(node.tcpUrl)
    const got = collect(viewer)
    await viewer.subscribeAsync('pieces/#')
    const client = await rawTcp(node.tcpPort, 'pieces-tcp')
    const packets = Array.from({ length: 12 }, (_, i) => PUBLISH(`pieces/${i}`, JSON.stringify({ i, pad: 'x'.repeat(1000) })))
    const bytes = Buffer.concat(packets)
    const size = packets[0].length // every packet the same size: each write ends in the middle of one
    let at = 0
    for (let end = Math.floor(size / 2); at < bytes.length; end += size) {
      client.socket.write(bytes.subarray(at, Math.min(end, bytes.length)))
      at = Math.min(end, bytes.length)
      await sleep(TIMEOUT / 4)
    }
    await waitFor(() => got.length === 12, 'the 12 messages')
    expect(got.map((m) => m.json.i)).toEqual([...Array(12).keys()])
    expect(client.closedAt()).toBeUndefined()
    expect(gone('pieces-tcp')).toBeUndefined()
  })

  it('keeps a WebSocket client whose messages come in fragments, each message within the timeout', async () => {
    const { node, gone } = await loggedNode()
    const viewer = await connect(node.wsUrl)
    const got = collect(viewer)
    await viewer.subscribeAsync('frags/#')
    const client = await rawWs(node.wsUrl, 'frags-ws')
    for (let i = 0; i < 12; i++) {
      const packet = PUBLISH(`frags/${i}`, JSON.stringify({ i }))
      const half = Math.floor(packet.length / 2)
      // The end of one message and the start of the next leave in one go: the WebSocket is never between messages.
      if (i === 0) client.ws.send(packet.subarray(0, half), { binary: true, fin: false })
      client.ws.send(packet.subarray(half), { binary: true, fin: true })
      if (i < 11) {
        const next = PUBLISH(`frags/${i + 1}`, JSON.stringify({ i: i + 1 }))
        client.ws.send(next.subarray(0, Math.floor(next.length / 2)), { binary: true, fin: false })
      }
      await sleep(TIMEOUT / 4)
    }
    await waitFor(() => got.length === 12, 'the 12 messages')
    expect(got.map((m) => m.json.i)).toEqual([...Array(12).keys()])
    expect(client.closedAt()).toBeUndefined()
    expect(gone('frags-ws')).toBeUndefined()
  })

  it('is 15 s by default, and keep alive 0 clients that send nothing are closed after 10 minutes by default', () => {
    const config = configSchema.parse({})
    expect(config.packetTimeoutMs).toBe(15_000)
    expect(config.idleTimeoutMs).toBe(600_000)
    expect(() => configSchema.parse({ packetTimeoutMs: 500 })).toThrow(/at least 1000 ms/)
  })
})
