// Tests whether a persistent session still belongs to the identity that made it after the node restarts on the
// embedded store (found by an attack run: the owners were kept in memory only, so after a restart another identity
// with the session's client id was accepted, with the session present, or wiped it with a clean session): another
// identity, anonymous or not, persistent or clean, gets CONNACK 2 and the session and its queue are intact; the owner
// gets it back, and a clean connect by the owner gives the client id up. Raw CONNECT packets for the exact CONNACK.
import { describe, it, expect } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { startBroker, type BrokerNode } from '../../broker/src/main.js'
import { secureConfig, SAMPLE } from '../helpers/auth.js'
import { onCleanup, tempDir } from '../helpers/broker.js'
import { connect, rawMqtt, waitFor } from '../helpers/mqtt.js'

const ID = 'tv-owned'
const viewer = { username: 'apikey', password: Buffer.from(SAMPLE.apiKey) }
const publisher = { username: SAMPLE.publisher.username, password: Buffer.from(SAMPLE.publisher.password) }

/** examples/secure.json (every method on every listener, anonymous persistent sessions allowed) on `dataDir`. */
async function node (dataDir: string): Promise<BrokerNode> {
  const cfg = { ...secureConfig(true), dataDir } as { auth: { anonymous: { persistentSessions?: boolean } } }
  cfg.auth.anonymous.persistentSessions = true
  const n = await startBroker(cfg as never)
  onCleanup(async () => await n.close())
  return n
}

/**
 * Connects as `ID` with raw packets, acknowledging QoS 1 messages.
 * @returns the CONNACK and the payloads received up to a PINGRESP sent after it (queued messages come before it)
 */
async function attempt (n: BrokerNode, clean: boolean, creds: { username?: string, password?: Buffer }): Promise<{ returnCode: number, sessionPresent: boolean, got: string[] }> {
  const { socket, packets } = await rawMqtt(n.tcpPort)
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId: ID, keepalive: 60, ...creds }))
  await waitFor(() => packets.some((p) => p.cmd === 'connack'), 'CONNACK')
  const connack = packets[0] as mqttPacket.IConnackPacket
  const got: string[] = []
  if (connack.returnCode === 0) {
    socket.write(mqttPacket.generate({ cmd: 'pingreq' }))
    await waitFor(() => packets.some((p) => p.cmd === 'pingresp'), 'PINGRESP')
    for (const p of packets) {
      if (p.cmd !== 'publish') continue
      got.push(p.payload.toString())
      socket.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }))
    }
    socket.write(mqttPacket.generate({ cmd: 'disconnect' }))
  }
  socket.end()
  if (!socket.closed) await new Promise((resolve) => socket.once('close', resolve))
  return { returnCode: connack.returnCode ?? -1, sessionPresent: connack.sessionPresent, got }
}

describe('owners of persistent sessions on the embedded store', () => {
  it('outlive a restart: another identity gets CONNACK 2 and the session stays the owner\'s', async () => {
    const dataDir = tempDir()
    const first = await node(dataDir)
    const owner = await connect(`mqtt://127.0.0.1:${first.tcpPort}`, { clientId: ID, clean: false, username: viewer.username, password: viewer.password })
    await owner.subscribeAsync('matches/m1/state', { qos: 1 })
    await owner.endAsync()
    const ops = await connect(`mqtt://127.0.0.1:${first.tcpPort}`, { ...SAMPLE.operator })
    await ops.publishAsync('matches/m1/state', 'while away', { qos: 1 })
    await ops.endAsync()
    await first.close()

    const second = await node(dataDir)
    for (const [clean, creds] of [[false, {}], [true, {}], [false, publisher], [true, publisher]] as const) {
      expect(await attempt(second, clean, creds), `clean ${String(clean)}, ${creds.username ?? 'anonymous'}`).toEqual({ returnCode: 2, sessionPresent: false, got: [] })
    }
    expect(await attempt(second, false, viewer)).toEqual({ returnCode: 0, sessionPresent: true, got: ['while away'] })
    // A clean connect by the owner discards the session and gives the id up.
    expect(await attempt(second, true, viewer)).toEqual({ returnCode: 0, sessionPresent: false, got: [] })
    expect(await attempt(second, false, publisher)).toEqual({ returnCode: 0, sessionPresent: false, got: [] })
    expect(await attempt(second, false, viewer)).toMatchObject({ returnCode: 2 })
  })
})
