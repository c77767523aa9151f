/**
 * Test plumbing: small real servers that refuse connections the way a broker's admission control does (MQTT
 * CONNACK 3; HTTP 503 with Retry-After to a WebSocket upgrade; TCP closed at accept, before any answer or TLS
 * handshake), recording when
 * each connection came; and the URL of a port nobody listens on. Closed after the test.
 */
import http from 'node:http'
import net, { type AddressInfo } from 'node:net'
import { onCleanup } from '../helpers/broker.js'

/** A refusing server: its URL and the times (Date.now()) at which connections (or upgrades) arrived. */
export interface Refuser {
  readonly url: string
  readonly arrivals: number[]
}

async function listen (server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const sockets = new Set<net.Socket>()
  server.on('connection', (s: net.Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  onCleanup(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}

/**
 * A TCP server that answers the first bytes (the CONNECT) with CONNACK and return code `code` (default 3, server
 * unavailable: 0x20 0x02 0x00 0x03) and closes.
 */
export async function connackRefuser (code = 3): Promise<Refuser> {
  const arrivals: number[] = []
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    socket.once('data', () => {
      arrivals.push(Date.now())
      socket.end(Buffer.from([0x20, 0x02, 0x00, code]))
    })
  })
  return { url: `mqtt://127.0.0.1:${await listen(server)}`, arrivals }
}

/** An HTTP server that answers every WebSocket upgrade `HTTP/1.1 <status>` with `Retry-After: <retryAfter>` (if given). */
export async function upgradeRefuser (retryAfter: string | undefined, status = 503): Promise<Refuser> {
  const arrivals: number[] = []
  const server = http.createServer((_req, res) => { res.writeHead(404).end() })
  server.on('upgrade', (_req, socket: net.Socket) => {
    arrivals.push(Date.now())
    socket.on('error', () => {})
    const reason = status === 503 ? 'Service Unavailable' : 'Too Many Requests'
    socket.end(`HTTP/1.1 ${status} ${reason}\r\n${retryAfter !== undefined ? `Retry-After: ${retryAfter}\r\n` : ''}Content-Length: 0\r\nConnection: close\r\n\r\n`)
  })
  return { url: `ws://127.0.0.1:${await listen(server)}/mqtt`, arrivals }
}

/**
 * A TCP server that closes every connection at once, as a node shedding load does (closed at accept) and a TLS
 * listener refusing before the handshake: its URL for `scheme` (mqtt://, mqtts://, or ws:// with /mqtt).
 */
export async function closer (scheme: 'mqtt' | 'mqtts' | 'ws' = 'mqtts'): Promise<Refuser> {
  const arrivals: number[] = []
  const server = net.createServer((socket) => {
    arrivals.push(Date.now())
    socket.on('error', () => {})
    socket.destroy()
  })
  const port = await listen(server)
  return { url: scheme === 'ws' ? `ws://127.0.0.1:${port}/mqtt` : `${scheme}://127.0.0.1:${port}`, arrivals }
}

/** A port on 127.0.0.1 where nothing listens (it was free a moment ago): connections are refused by the OS. */
export async function closedPort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}
