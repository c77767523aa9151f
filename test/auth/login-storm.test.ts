// Tests whether a storm of password CONNECTs leaves the node serving (broker/src/auth/password-gate.ts): each password
// check is a 16 MiB scrypt hash on libuv's thread pool, which the embedded store's LevelDB shares. Clients that send a
// CONNECT with any user name and leave at once must not queue hashes in front of a valid login and a feed publish;
// clients that wait beyond the node's bound get CONNACK 3 at once, counted as admission refusals (`login-busy`), and
// unknown user names wait in the same bound as known ones.
import net from 'node:net'
import { describe, it, expect } from 'vitest'
import mqtt from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { startBroker, type BrokerNode } from '../../broker/src/main.js'
import { secureConfig, SAMPLE } from '../helpers/auth.js'
import { onCleanup, tempDir } from '../helpers/broker.js'

/** examples/secure.json on the embedded store on disk (LevelDB: its reads and writes run on the thread pool). */
async function secureNode (): Promise<BrokerNode & { mqttPort: number }> {
  const cfg = secureConfig() as { dataDir: string, auth: { maxFailedLoginDelayMs?: number } }
  cfg.dataDir = tempDir()
  cfg.auth.maxFailedLoginDelayMs = 0
  const node = await startBroker(cfg as never)
  onCleanup(async () => await node.close())
  const name = Object.keys(node.ports).find((n) => n.startsWith('mqtt:')) ?? ''
  return Object.assign(node, { mqttPort: node.ports[name] })
}

const connectPacket = (username: string, i: number): Buffer => mqttPacket.generate({
  cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: `storm-${i}`, username, password: Buffer.from('wrong')
})

/** Sends a CONNECT and resolves with the CONNACK return code ('closed' without one), keeping the connection open. */
async function connack (port: number, packet: Buffer): Promise<number | 'closed'> {
  return await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    onCleanup(() => { socket.destroy() })
    socket.on('error', () => {})
    socket.on('connect', () => socket.write(packet))
    socket.on('data', (d) => resolve(d[0] === 0x20 ? d[3] : -1))
    socket.on('close', () => resolve('closed'))
  })
}

const timed = async <T>(f: () => Promise<T>): Promise<{ ms: number, value: T }> => {
  const start = Date.now()
  const value = await f()
  return { ms: Date.now() - start, value }
}

describe('a storm of password CONNECTs', () => {
  it('from clients that leave at once: a valid login and a feed publish on the embedded store are not held up', async () => {
    const node = await secureNode()
    const url = `mqtt://127.0.0.1:${node.mqttPort}`
    const publisher = await mqtt.connectAsync(url, { ...SAMPLE.publisher, reconnectPeriod: 0 })
    onCleanup(async () => { await publisher.endAsync(true) })
    // 800 CONNECTs of an unknown user, each connection closed 20 ms after it is sent: without a bound, 800 hashes
    // (about 40 ms of a thread each) queue on the 4 threads, 8 s or more of work, whether or not anyone waits.
    const sockets: net.Socket[] = []
    for (let i = 0; i < 800; i++) {
      const s = net.connect(node.mqttPort, '127.0.0.1')
      sockets.push(s)
      s.on('error', () => {})
      s.on('connect', () => { s.write(connectPacket('nobody', i)); setTimeout(() => s.destroy(), 20) })
      if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    onCleanup(() => { for (const s of sockets) s.destroy() })
    await new Promise((resolve) => setTimeout(resolve, 300))
    const [publish, login] = await Promise.all([
      timed(async () => await publisher.publishAsync('matches/storm/events', '{"a":1}', { qos: 1 })),
      // Refused (CONNACK 3) while the bound is full is allowed: the client library retries; it must get in soon.
      timed(async () => {
        for (;;) {
          try {
            const c = await mqtt.connectAsync(url, { ...SAMPLE.operator, reconnectPeriod: 0, connectTimeout: 30_000 })
            await c.endAsync(true)
            return 'in'
          } catch (err) {
            if ((err as { code?: number }).code !== 3) throw err
            await new Promise((resolve) => setTimeout(resolve, 100))
          }
        }
      })
    ])
    console.log(`after 800 password CONNECTs from clients gone at once: feed publish acknowledged in ${publish.ms} ms, a valid login in ${login.ms} ms; login-busy refusals: ${node.admission.stats().refused['login-busy']}`)
    expect(login.value).toBe('in')
    expect(publish.ms).toBeLessThan(2000)
    expect(login.ms).toBeLessThan(3000)
  })

  it('from clients that wait: beyond the bound they get CONNACK 3 at once, counted as login-busy; known and unknown users alike', async () => {
    const node = await secureNode()
    const codes = await Promise.all(Array.from({ length: 60 }, async (_, i) =>
      await connack(node.mqttPort, connectPacket(i % 2 === 0 ? 'nobody' : SAMPLE.publisher.username, i))))
    const threes = codes.filter((c) => c === 3).length
    const fours = codes.filter((c) => c === 4).length
    console.log(`60 wrong passwords at once: ${fours} checked (CONNACK 4), ${threes} refused unchecked (CONNACK 3)`)
    expect(threes + fours).toBe(60)
    // The bound: 2 checks at once and 16 waiting (a 4-thread pool), give or take what finished while the 60 arrived.
    expect(fours).toBeGreaterThanOrEqual(2)
    expect(fours).toBeLessThanOrEqual(30)
    expect(node.admission.stats().refused['login-busy']).toBe(threes)
    // Once the storm is over, a password is checked again: a wrong one gets 4, the right one 0.
    expect(await connack(node.mqttPort, connectPacket('nobody', 100))).toBe(4)
    const ok = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'ok', ...SAMPLE.publisher, password: Buffer.from(SAMPLE.publisher.password) })
    expect(await connack(node.mqttPort, ok)).toBe(0)
  })
})
