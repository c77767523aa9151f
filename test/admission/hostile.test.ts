/**
 * Admission control against hostile clients (found by an attack run): a refused connection must not stay open because
 * its client keeps sending (TCP and WebSocket), an upgrade to a wrong path or an HTTP connection that never sends its
 * request must not stay open either (neither counts as a connection), and the per-address limits must count one host
 * once whichever form its address takes.
 */
import net from 'node:net'
import { test, expect } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { addressKey } from '../../broker/src/admission/admission.js'
import { REFUSED_LINGER_MS } from '../../broker/src/admission/refuse.js'

const CONNECT = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: '', keepalive: 30 })

/** A raw connection that never closes its side and writes `trickle` every 300 ms; resolves with ms until the server closed it. */
async function heldOpen (port: number, first: Buffer | string, trickle: Buffer | string): Promise<number> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  onCleanup(() => { socket.destroy() })
  socket.on('error', () => {})
  socket.on('data', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  const start = Date.now()
  socket.write(first)
  const timer = setInterval(() => { if (!socket.destroyed) socket.write(trickle) }, 300)
  onCleanup(() => clearInterval(timer))
  await new Promise((resolve) => socket.once('close', resolve))
  clearInterval(timer)
  return Date.now() - start
}

test('a refused TCP or WebSocket client that keeps sending is closed within the linger time; so is an upgrade to a wrong path', async () => {
  const node = await brokerForTest({ maxConnections: 1, maxConnRate: 0 })
  const holder = net.connect(node.tcpPort, '127.0.0.1')
  onCleanup(() => { holder.destroy() })
  await new Promise((resolve) => holder.once('connect', resolve))
  const upgrade = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`
  const [tcp, ws, wrongPath] = await Promise.all([
    heldOpen(node.tcpPort, CONNECT, Buffer.from([0])),
    heldOpen(node.wsPort, upgrade('/mqtt'), 'x'),
    heldOpen(node.wsPort, upgrade('/elsewhere'), 'x')
  ])
  for (const ms of [tcp, ws, wrongPath]) expect(ms).toBeLessThan(REFUSED_LINGER_MS + 1000)
  // All three, the wrong path's too: a WebSocket port's connections pass admission at accept.
  expect(node.admission.stats().refused['max-connections']).toBe(3)
  expect(node.admission.stats().connections).toBe(1)
})

test('an HTTP connection that never sends its request is closed within the CONNECT timeout', async () => {
  const node = await brokerForTest({ connectTimeoutMs: 1000 })
  const ms = await heldOpen(node.wsPort, 'GET /healthz HTTP/1.1\r\n', 'X-Slow: 1\r\n')
  expect(ms).toBeGreaterThanOrEqual(900)
  expect(ms).toBeLessThan(3500)
})

test('per-address limits count a host once: IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
  expect(addressKey('::ffff:127.0.0.1')).toBe('127.0.0.1')
  expect(addressKey('127.0.0.1')).toBe('127.0.0.1')
  expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64')
  expect(addressKey('2001:0DB8:0001:0002::9')).toBe('2001:db8:1:2::/64')
  expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
  expect(addressKey('::1')).toBe('0:0:0:0::/64')
  expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
})
