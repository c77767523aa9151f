/**
 * A Tribune node as it runs in production for the admission benchmarks: a config file written here with an `auth`
 * section (anonymous clients are viewers; a viewer API key; a publisher API key), MQTT over TCP and WebSocket both
 * taking every method; a feed `matches/1/events` with `history` messages and the retained `matches/1/state`, as
 * bench/joins.ts publishes them; and a paced publisher of send times for viewers' latency.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tcpConnect, type Socket } from 'node:net'
import mqtt from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { startBrokerProcess, type RunningBroker } from './brokers.js'

/** What a viewer's join subscribes to, and the PUBLISH packets that complete it (history + state). */
export const JOIN_TOPICS = ['$replay/all/matches/1/events', 'matches/1/state']
/** The topic the paced publisher sends send times to, which the storm's viewers watch (a public state topic). */
export const LATENCY_TOPIC = 'matches/live/state'

export interface SecureNode {
  broker: RunningBroker
  /** API keys: a viewer's (user name `apikey`) and the publisher's. */
  viewerKey: string
  publisherKey: string
  /** PUBLISH packets a join waits for: the history and the state. */
  expect: number
  stop: () => Promise<void>
}

/**
 * Starts the node with admission control on (`admission` options, e.g. `['--max-conn-rate', '0']`, after the
 * defaults) or off, publishes the feed's history and the retained state, and returns it.
 */
export async function startSecureNode (opts: { history: number, admission: 'on' | 'off', args?: string[] }): Promise<SecureNode> {
  const dir = mkdtempSync(join(tmpdir(), 'tribune-bench-auth-'))
  const viewerKey = randomBytes(24).toString('base64url')
  const publisherKey = randomBytes(24).toString('base64url')
  const sha256 = (k: string): string => createHash('sha256').update(k).digest('hex')
  const config = join(dir, 'tribune.json')
  writeFileSync(config, JSON.stringify({
    auth: {
      anonymous: { role: 'viewer' },
      apiKeys: [{ id: 'bench-viewers', sha256: sha256(viewerKey), role: 'viewer' }, { id: 'bench-publisher', sha256: sha256(publisherKey), role: 'publisher' }]
    }
  }, null, 2))
  const broker = await startBrokerProcess('tribune', [], { admission: opts.admission, brokerArgs: ['--config', config, ...(opts.args ?? [])] })
  try {
    const publisher = await mqtt.connectAsync(broker.tcpUrl, { clientId: 'bench-history', username: 'apikey', password: publisherKey, reconnectPeriod: 0 })
    for (let i = 1; i <= opts.history; i++) {
      await publisher.publishAsync('matches/1/events', JSON.stringify({ id: `e${i}`, minute: i, type: 'shot' }), { qos: 1 })
    }
    await publisher.publishAsync('matches/1/state', JSON.stringify({ score: '2-1', status: 'live' }), { qos: 1, retain: true })
    await publisher.endAsync()
  } catch (err) {
    await broker.stop()
    throw err
  }
  return { broker, viewerKey, publisherKey, expect: opts.history + 1, stop: async () => { await broker.stop(); rmSync(dir, { recursive: true, force: true }) } }
}

export interface PacedPublisher {
  /** Messages sent so far. */
  sent: () => number
  stop: () => void
}

/**
 * Publishes a 64-byte message to {@link LATENCY_TOPIC} every `everyMs` (QoS 0, raw MQTT over TCP, with the publisher
 * key), its first 8 bytes the send time (float64, ms since 1970, as bench/lib/load-worker.ts reads it).
 */
export async function pacedPublisher (node: SecureNode, everyMs = 100): Promise<PacedPublisher> {
  const u = new URL(node.broker.tcpUrl)
  const socket: Socket = tcpConnect({ host: u.hostname, port: Number(u.port), noDelay: true })
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  socket.on('error', () => {})
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'bench-paced', keepalive: 600, username: 'apikey', password: Buffer.from(node.publisherKey) }))
  const connack = await new Promise<Buffer>((resolve) => socket.once('data', resolve))
  if (connack[0] !== 0x20 || connack[3] !== 0) throw new Error(`paced publisher refused: CONNACK ${connack[3]}`)
  let sent = 0
  const timer = setInterval(() => {
    const payload = Buffer.alloc(64)
    payload.writeDoubleLE(performance.timeOrigin + performance.now(), 0)
    socket.write(mqttPacket.generate({ cmd: 'publish', topic: LATENCY_TOPIC, payload, qos: 0, dup: false, retain: false }))
    sent++
  }, everyMs)
  return { sent: () => sent, stop: () => { clearInterval(timer); socket.destroy() } }
}
