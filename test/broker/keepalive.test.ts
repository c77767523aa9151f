// Tests keep alive 0 (MQTT 3.1.1 section 3.1.2.10, "turns off the keep alive mechanism"): accepted with CONNACK 0 over
// TCP and WebSocket (or refused with CONNACK 2 when the node says so), and a dead peer still found: TCP keepalive on
// every accepted socket (read from the kernel with `ss`), WebSocket pings a client must answer, and the idle timeout.
// Clients that asked for a keep alive are left to aedes' own timeout.
import { describe, it, expect } from 'vitest'
import net from 'node:net'
import { execFileSync } from 'node:child_process'
import WebSocket from 'ws'
import mqttPacket from 'mqtt-packet'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const CONNECT = (clientId: string, keepalive: number): Buffer => mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive })

/** A raw MQTT client over TCP that has sent CONNECT; records CONNACK and when the broker closed it. */
async function rawTcp (port: number, clientId: string, keepalive: number): Promise<{ socket: net.Socket, connack: () => number | undefined, closedAt: () => number | undefined }> {
  const socket = net.connect(port, '127.0.0.1')
  onCleanup(() => { socket.destroy() })
  socket.on('error', () => {})
  const parser = mqttPacket.parser()
  let code: number | undefined
  let closedAt: number | undefined
  parser.on('packet', (p) => { if (p.cmd === 'connack') code = p.returnCode })
  socket.on('data', (d) => parser.parse(d))
  socket.on('close', () => { closedAt = Date.now() })
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(CONNECT(clientId, keepalive))
  await waitFor(() => code !== undefined || closedAt !== undefined, `${clientId}: CONNACK`)
  return { socket, connack: () => code, closedAt: () => closedAt }
}

/** A raw MQTT client over WebSocket that has sent CONNECT; `autoPong: false` makes it a peer that never answers pings. */
async function rawWs (port: number, clientId: string, keepalive: number, autoPong: boolean): Promise<{ ws: WebSocket, pings: () => number, closedAt: () => number | undefined }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, 'mqtt', { autoPong })
  onCleanup(() => { ws.terminate() })
  ws.on('error', () => {})
  let pings = 0
  let closedAt: number | undefined
  let connack: number | undefined
  ws.on('ping', () => { pings++ })
  ws.on('close', () => { closedAt = Date.now() })
  const parser = mqttPacket.parser()
  parser.on('packet', (p) => { if (p.cmd === 'connack') connack = p.returnCode })
  ws.on('message', (d: Buffer) => parser.parse(d))
  await new Promise((resolve) => ws.once('open', resolve))
  ws.send(CONNECT(clientId, keepalive))
  await waitFor(() => connack !== undefined, `${clientId}: CONNACK`)
  expect(connack).toBe(0)
  return { ws, pings: () => pings, closedAt: () => closedAt }
}

/** The kernel's timers on the node's side of its established connections on `port` (`ss -o`), one line each. */
function serverSockets (port: number): string[] {
  return execFileSync('ss', ['-tnoH', 'state', 'established', `( sport = :${port} )`]).toString().split('\n').filter((l) => l.trim() !== '')
}

describe('keep alive 0', () => {
  it('is accepted over TCP and WebSocket with CONNACK 0, and such a client is served like any other', async () => {
    const node = await brokerForTest()
    const tcp = await connect(node.tcpUrl, { keepalive: 0 })
    const ws = await connect(node.wsUrl, { keepalive: 0 })
    const got = collect(ws)
    await ws.subscribeAsync('news/#', { qos: 1 })
    await tcp.publishAsync('news/1', 'hello', { qos: 1 })
    await waitFor(() => got.length === 1, 'the message')
    expect(tcp.connected && ws.connected).toBe(true)
  })

  it('is refused with CONNACK 2 when the node is configured to refuse it (keepaliveZero: refuse)', async () => {
    const node = await brokerForTest({ keepaliveZero: 'refuse' })
    const err = await connect(node.tcpUrl, { keepalive: 0 }).catch((e: { code?: number }) => e)
    expect((err as { code?: number }).code).toBe(2)
    expect((await connect(node.tcpUrl, { keepalive: 30 })).connected).toBe(true)
  })

  it('leaves TCP keepalive on every socket the node accepts, MQTT and WebSocket', async () => {
    const node = await brokerForTest()
    const clients = [await connect(node.tcpUrl, { keepalive: 0 }), await connect(node.wsUrl, { keepalive: 0 }), await connect(node.tcpUrl, { keepalive: 60 })]
    expect(clients.every((c) => c.connected)).toBe(true)
    const lines = (): string[] => [...serverSockets(node.tcpPort), ...serverSockets(node.wsPort)]
    expect(lines()).toHaveLength(3)
    // The kernel probes the peer once idle 60 s; `ss` shows the retransmission timer instead while data is unacknowledged.
    await waitFor(() => lines().every((line) => /timer:\(keepalive,/.test(line)), 'keepalive timers on the 3 sockets', 3000)
      .catch((err: Error) => { throw new Error(`${err.message}: ${lines().join('; ')}`) })
  })

  it('closes a keep alive 0 WebSocket that does not answer pings, and keeps one that does', async () => {
    const node = await brokerForTest({ wsPingIntervalMs: 1000 })
    const start = Date.now()
    const deaf = await rawWs(node.wsPort, 'deaf', 0, false)
    const alive = await rawWs(node.wsPort, 'alive', 0, true)
    const timed = await rawWs(node.wsPort, 'timed', 60, true)
    await waitFor(() => deaf.closedAt() !== undefined, 'the client that does not answer closed', 5000)
    // First ping at 1 s, unanswered at the second, 2 s after the connect.
    expect((deaf.closedAt() ?? 0) - start).toBeGreaterThanOrEqual(1900)
    expect((deaf.closedAt() ?? 0) - start).toBeLessThan(4000)
    await sleep(1500)
    expect(alive.closedAt()).toBeUndefined()
    expect(alive.pings()).toBeGreaterThanOrEqual(2)
    expect(timed.pings()).toBe(0) // a client with a keep alive is aedes' to time out
    expect(timed.closedAt()).toBeUndefined()
  })

  it('closes a keep alive 0 client that sends nothing for the idle timeout, and none that sends or has a keep alive', async () => {
    const node = await brokerForTest({ idleTimeoutMs: 1000 })
    const start = Date.now()
    const silent = await rawTcp(node.tcpPort, 'silent', 0)
    const chatty = await rawTcp(node.tcpPort, 'chatty', 0)
    const timed = await rawTcp(node.tcpPort, 'timed', 60)
    expect([silent.connack(), chatty.connack(), timed.connack()]).toEqual([0, 0, 0])
    const pinger = setInterval(() => chatty.socket.write(mqttPacket.generate({ cmd: 'pingreq' })), 300)
    onCleanup(() => clearInterval(pinger))
    await waitFor(() => silent.closedAt() !== undefined, 'the silent client closed', 4000)
    expect((silent.closedAt() ?? 0) - start).toBeGreaterThanOrEqual(950)
    await sleep(1500)
    expect(chatty.closedAt()).toBeUndefined()
    expect(timed.closedAt()).toBeUndefined()
  })
})
