/**
 * A node near its open-file limit (`ulimit -n`, a real process): connections held count against `--max-connections`
 * (lowered to the limit less a reserve), and refused ones still waiting for their answer hold a file too. Once held and
 * refused sockets together reach the limit less half the reserve, new connections are closed at accept
 * (broker/src/admission/admission.ts, `maxSocketsOpen`), so the node never runs out of files: it keeps answering
 * /healthz, logs no EMFILE, and takes clients again once the flood has gone.
 */
import net from 'node:net'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { test, expect } from 'vitest'
import { onCleanup } from '../helpers/broker.js'
import { connect, waitFor } from '../helpers/mqtt.js'

const BIN = join(import.meta.dirname, '../../bin/tribune.js')
const FILES = 160

/** A raw TCP connection that sends nothing; `answered` once the node wrote anything, `closed` once it is gone. */
function silent (port: number): { socket: net.Socket, state: () => 'open' | 'answered' | 'closed' } {
  const socket = net.connect(port, '127.0.0.1')
  let state: 'open' | 'answered' | 'closed' = 'open'
  socket.on('error', () => {})
  socket.on('data', () => { if (state === 'open') state = 'answered' })
  socket.on('close', () => { state = 'closed' })
  onCleanup(() => { socket.destroy() })
  return { socket, state: () => state }
}

test(`with ulimit -n ${FILES}, 400 silent connections at once are held, refused or closed at accept: the node never runs out of files and takes clients again after`, async () => {
  // `ulimit -n` in a shell that then becomes the broker.
  const child = spawn('bash', ['-c', `ulimit -n ${FILES} && exec "$0" "$@"`, process.execPath, BIN, 'broker', '--port', '0', '--ws-port', '0',
    '--metrics-port', '0', '--data-dir', ':memory:', '--log-level', 'info', '--max-conn-rate', '0', '--packet-timeout', '3000'], { stdio: ['ignore', 'pipe', 'pipe'] })
  onCleanup(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d) => { out += d })
  child.stderr.on('data', (d) => { out += d })
  await waitFor(() => out.includes('"broker listening"'), 'the broker listening')
  const lines = (): any[] => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  const listening = lines().find((l) => l.msg === 'broker listening')
  // The limit less the files the node has open and a quarter of the limit (spare) is the most connections held.
  const lowered = lines().find((l) => typeof l.lowered === 'number')
  expect(lowered.ownFiles).toBeGreaterThan(10)
  expect(lowered).toMatchObject({ openFileLimit: FILES, lowered: FILES - lowered.ownFiles - FILES / 4 })

  const healthz = async (): Promise<number> => {
    const res = await fetch(`http://127.0.0.1:${String(listening.ports.metrics)}/healthz`, { signal: AbortSignal.timeout(2000) })
    await res.arrayBuffer()
    return res.status
  }
  const flood = Array.from({ length: 400 }, () => silent(listening.tcpPort))
  await waitFor(() => flood.every((c) => c.socket.connecting === false || c.state() === 'closed'), 'every connection made or closed')
  // Held: still open, not answered. The rest were refused (a CONNACK 3 after their CONNECT would come; these send
  // none, so they are closed when their wait ends) or closed at accept without a byte.
  await new Promise((resolve) => setTimeout(resolve, 500))
  expect(await healthz()).toBe(200)
  const open = flood.filter((c) => c.state() === 'open').length
  const closed = flood.filter((c) => c.state() === 'closed').length
  // Held plus refused still waiting: at most the limit less the node's own files and half the spare.
  expect(open).toBeLessThanOrEqual(FILES - lowered.ownFiles - FILES / 8)
  expect(open).toBeGreaterThanOrEqual(lowered.lowered) // every connection it may hold is held
  expect(closed).toBeGreaterThan(0)

  for (const c of flood) c.socket.destroy()
  // The node takes a client again once the flood is gone, and never hit its file limit.
  const client = await connect(`mqtt://127.0.0.1:${String(listening.tcpPort)}`, { clientId: 'after-the-flood', reconnectPeriod: 0 })
  expect(client.connected).toBe(true)
  client.end(true)
  expect(await healthz()).toBe(200)
  expect(out).not.toMatch(/EMFILE|ENFILE/)
  expect(child.exitCode).toBeNull()
})
