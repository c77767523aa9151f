/**
 * Client ids across nodes with auth on (examples/secure.json): a persistent session belongs to the identity that made
 * it on every node, so another identity connecting with its client id elsewhere gets CONNACK 2 and neither takes it
 * over nor wipes it; a connection of another identity elsewhere never closes a client here; the same identity still
 * takes its own session over from another node (MQTT 3.1.1 section 3.1.4).
 */
import { test, expect } from 'vitest'
import mqtt from 'mqtt'
import { connect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { brokerForTest } from '../helpers/broker.js'
import { secureConfig, SAMPLE } from '../helpers/auth.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function connackCode (url: string, opts: mqtt.IClientOptions): Promise<number> {
  try {
    const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
    await c.endAsync()
    return 0
  } catch (err) {
    return (err as { code?: number }).code ?? -1
  }
}

test('another identity cannot take over, wipe or kick a client id used on another node; the owner can move it', async () => {
  const redis = await redisForTest()
  const a = await brokerForTest({ ...secureConfig(true), redis: redis.url, nodeId: 'a' })
  const b = await brokerForTest({ ...secureConfig(true), redis: redis.url, nodeId: 'b' })
  const wsB = `ws://127.0.0.1:${b.wsPort}/mqtt`

  // A publisher's persistent session on node a.
  const svc = await connect(`mqtt://127.0.0.1:${a.tcpPort}`, { clientId: 'svc-1', clean: false, ...SAMPLE.publisher })
  await svc.subscribeAsync('matches/+/state', { qos: 1 })
  let svcClosed = false
  svc.on('close', () => { svcClosed = true })
  await sleep(200)
  expect(await connackCode(wsB, { clientId: 'svc-1', clean: false, username: 'apikey', password: SAMPLE.apiKey })).toBe(2) // a viewer, persistent
  expect(await connackCode(wsB, { clientId: 'svc-1', clean: true })).toBe(2) // anonymous, clean: would wipe the session
  expect(await connackCode(wsB, { clientId: 'anon-p', clean: false })).toBe(5) // anonymous clients get no persistent session
  await sleep(300)
  expect(svcClosed).toBe(false)

  // A clean-session publisher with a fixed id on node a is not kicked by an anonymous persistent connect on node b.
  const fixed = await connect(`mqtt://127.0.0.1:${a.tcpPort}`, { clientId: 'pub-x', clean: true, ...SAMPLE.publisher })
  let fixedClosed = false
  fixed.on('close', () => { fixedClosed = true })
  const squatter = await connect(wsB, { clientId: 'pub-x', clean: false, username: 'apikey', password: SAMPLE.apiKey })
  await sleep(500)
  expect(fixedClosed).toBe(false)
  await squatter.endAsync()

  // The owner moves its own session to node b: node a's connection is taken over.
  const moved = await connect(`mqtt://127.0.0.1:${b.tcpPort}`, { clientId: 'svc-1', clean: false, ...SAMPLE.publisher })
  await waitFor(() => svcClosed, 'the first connection taken over')
  expect(moved.connected).toBe(true)
})
