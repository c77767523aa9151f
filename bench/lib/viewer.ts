/**
 * A lean MQTT 3.1.1 viewer for load generation: raw packets (mqtt-packet) over `ws` or TCP, no client library, so
 * the generator costs little next to the broker it measures.
 */
import { connect as tcpConnect, type Socket } from 'node:net'
import { WebSocket } from 'ws'
import mqttPacket from 'mqtt-packet'

export interface ViewerOptions {
  /** `ws://host:port/path` or `mqtt://host:port`. */
  url: string
  clientId: string
  /** Topic filters subscribed in one SUBSCRIBE (QoS 0). */
  topics: string[]
  /** Resolve `joined` once this many PUBLISH packets have arrived. */
  expect: number
}

export interface Viewer {
  /** Resolves with the ms from the start of the connect until the `expect`-th PUBLISH; rejects on a close or error first. */
  joined: Promise<number>
  /** PUBLISH payloads received, in order. */
  received: Buffer[]
  /** Sends DISCONNECT and closes; resolves once the socket is closed. */
  close: () => Promise<void>
}

/** Connects one viewer, subscribes once CONNACK arrives, and counts PUBLISH packets (MQTT 3.1.1 sections 3.1, 3.8). */
export function startViewer (opts: ViewerOptions): Viewer {
  const started = Date.now()
  const received: Buffer[] = []
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  let send: (buf: Buffer) => void
  let end: () => void
  let closed: Promise<void>
  let resolveJoined: (ms: number) => void = () => {}
  let rejectJoined: (err: Error) => void = () => {}
  let done = false
  const joined = new Promise<number>((resolve, reject) => {
    resolveJoined = resolve
    rejectJoined = reject
  })
  joined.catch(() => {})
  const connectPacket = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: opts.clientId, keepalive: 300 })
  if (opts.url.startsWith('ws')) {
    const ws = new WebSocket(opts.url, 'mqtt', { perMessageDeflate: false })
    send = (buf) => ws.send(buf)
    end = () => ws.close()
    closed = new Promise((resolve) => ws.once('close', () => resolve()))
    ws.on('open', () => send(connectPacket))
    ws.on('message', (data: Buffer) => parser.parse(data))
    ws.on('error', (err) => rejectJoined(err))
  } else {
    const u = new URL(opts.url)
    const socket: Socket = tcpConnect({ host: u.hostname, port: Number(u.port), noDelay: true })
    send = (buf) => socket.write(buf)
    end = () => socket.end()
    closed = new Promise((resolve) => socket.once('close', () => resolve()))
    socket.on('connect', () => send(connectPacket))
    socket.on('data', (data) => parser.parse(data))
    socket.on('error', (err) => rejectJoined(err))
  }
  void closed.then(() => { if (!done) rejectJoined(new Error(`${opts.clientId}: connection closed after ${received.length} of ${opts.expect} messages`)) })
  parser.on('packet', (packet) => {
    if (packet.cmd === 'connack') {
      if (packet.returnCode !== 0) {
        rejectJoined(new Error(`${opts.clientId}: CONNACK ${String(packet.returnCode)}`))
        return
      }
      send(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: opts.topics.map((topic) => ({ topic, qos: 0 as const })) }))
    } else if (packet.cmd === 'publish') {
      received.push(Buffer.from(packet.payload as Buffer))
      if (received.length === opts.expect) {
        done = true
        resolveJoined(Date.now() - started)
      }
    }
  })
  return {
    joined,
    received,
    close: async () => {
      done = true
      send(mqttPacket.generate({ cmd: 'disconnect' }))
      end()
      await closed
    }
  }
}
