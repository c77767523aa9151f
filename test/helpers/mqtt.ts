/** Test plumbing: real MQTT.js clients and raw MQTT connections, closed after the test, and waiting helpers. */
import net from 'node:net'
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { onCleanup } from './broker.js'

/** Connects an MQTT.js client (no automatic reconnect unless asked); ended after the test. */
export async function connect (url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
  onCleanup(async () => { await client.endAsync(true) })
  return client
}

/** Resolves when `predicate` holds, polling every 10 ms; rejects after `ms` with `what` in the message. */
export async function waitFor (predicate: () => boolean, what: string, ms = 10_000): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Collects the messages a client receives, as {topic, json} (json null when not JSON). */
export function collect (client: MqttClient): Array<{ topic: string, json: any, retain: boolean }> {
  const out: Array<{ topic: string, json: any, retain: boolean }> = []
  client.on('message', (topic, payload, packet) => {
    let json: unknown = null
    try { json = JSON.parse(payload.toString()) } catch {}
    out.push({ topic, json, retain: packet.retain })
  })
  return out
}

/**
 * A raw TCP connection to a broker on `port` (127.0.0.1), for byte-exact packets: `packets` collects what the broker
 * sends, parsed by mqtt-packet (MQTT 3.1.1). Destroyed after the test.
 */
export async function rawMqtt (port: number): Promise<{ socket: net.Socket, packets: mqttPacket.Packet[] }> {
  const socket = net.connect(port, '127.0.0.1')
  onCleanup(() => { socket.destroy() })
  socket.on('error', () => {})
  const parser = mqttPacket.parser()
  const packets: mqttPacket.Packet[] = []
  parser.on('packet', (p) => packets.push(p))
  socket.on('data', (d) => parser.parse(d))
  await new Promise((resolve) => socket.once('connect', resolve))
  return { socket, packets }
}
