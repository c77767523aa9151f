/**
 * Test plumbing for the Publisher: plain aedes 1.2 in-process with TCP listeners that can be taken down and brought
 * back on the same port while the broker keeps the sessions; an MQTT.js subscriber; waiting helpers. Everything is
 * closed after the test.
 */
import net, { type AddressInfo, type Server, type Socket } from 'node:net'
import { Aedes } from 'aedes'
import mqtt, { type MqttClient } from 'mqtt'
import { Publisher, type BrokerTarget, type PublisherOptions } from '../../publisher/src/index.js'
import { onCleanup } from '../helpers/broker.js'

/** A TCP listener for the broker that can be taken down and brought back on the same port. */
export interface Listener {
  port: number
  url: string
  down: () => Promise<void>
  up: () => Promise<void>
}

async function listen (server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  return (server.address() as AddressInfo).port
}

/** Starts aedes with any number of TCP listeners; everything is closed after the test. */
export async function startBroker (listeners = 1): Promise<{ broker: Aedes, listeners: Listener[] }> {
  const broker = await Aedes.createBroker()
  onCleanup(async () => { await new Promise<void>((resolve) => broker.close(() => { resolve() })) }) // runs last
  const out: Listener[] = []
  for (let i = 0; i < listeners; i++) {
    const sockets = new Set<Socket>()
    const server = net.createServer({ noDelay: true }, (socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      broker.handle(socket)
    })
    const port = await listen(server, 0)
    let running = true
    const listener: Listener = {
      port,
      url: `mqtt://127.0.0.1:${port}`,
      down: async () => {
        if (!running) return
        running = false
        const closed = new Promise<void>((resolve) => server.close(() => { resolve() }))
        for (const s of sockets) s.destroy()
        await closed
      },
      up: async () => {
        if (running) return
        await listen(server, port)
        running = true
      }
    }
    out.push(listener)
    onCleanup(async () => { await listener.down() })
  }
  return { broker, listeners: out }
}

export interface Received { topic: string, json: any, qos: number, retain: boolean }

/** A plain MQTT.js subscriber on `filter` (QoS 1) collecting what it receives. */
export async function subscriber (url: string, filter = 'matches/#'): Promise<{ client: MqttClient, got: Received[] }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000 })
  onCleanup(async () => { await client.endAsync(true) })
  const got: Received[] = []
  client.on('message', (topic, payload, packet) => {
    got.push({ topic, json: JSON.parse(payload.toString()), qos: packet.qos, retain: packet.retain })
  })
  await client.subscribeAsync(filter, { qos: 1 })
  return { client, got }
}

/** A Publisher on `urls` (or regions; reconnectPeriod 100 ms unless given), closed after the test. */
export async function connectPublisher (urls: BrokerTarget, opts: PublisherOptions = {}): Promise<Publisher> {
  const pub = await Publisher.connect(urls, { reconnectPeriod: 100, ...opts })
  onCleanup(async () => { await pub.close() })
  return pub
}

/** Resolves when `predicate` holds, polling every 10 ms; rejects after `ms`. */
export async function waitFor (predicate: () => boolean, what: string, ms = 10_000): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Whether a promise has settled within `ms`. */
export async function settledWithin (p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false
  p.then(() => { settled = true }, () => { settled = true })
  await new Promise((resolve) => setTimeout(resolve, ms))
  return settled
}

