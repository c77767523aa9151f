// Tests whether every role and auth method gets exactly the grants and refusals its rules give, for every action
// (connect, publish, retained publish, will, subscribe to an exact topic, a wildcard, #, $replay, $SYS, $admin),
// over TCP and WebSocket (client certificates over MQTT/TLS and WSS), with the shipped examples/secure.json.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { startBroker, type BrokerNode } from '../../broker/src/main.js'
import { secureConfig, SAMPLE, token, clientCert } from '../helpers/auth.js'

type Action = 'connect' | 'publish' | 'retain' | 'will' | 'subExact' | 'subWildcard' | 'subAll' | 'subReplay' | 'subSys' | 'subAdmin'
const ACTIONS: Action[] = ['connect', 'publish', 'retain', 'will', 'subExact', 'subWildcard', 'subAll', 'subReplay', 'subSys', 'subAdmin']

interface Who {
  name: string
  transports: Array<'mqtt' | 'ws' | 'mqtts' | 'wss'>
  options: () => Promise<IClientOptions>
  /** The actions it may do; every other one must be refused. */
  may: Action[]
}

const VIEWER: Action[] = ['connect', 'subExact', 'subWildcard', 'subReplay']
const ALL: Action[] = [...ACTIONS]
const WHO: Who[] = [
  { name: 'anonymous viewer', transports: ['mqtt', 'ws'], options: async () => ({}), may: VIEWER },
  { name: 'API key viewer', transports: ['mqtt', 'ws'], options: async () => ({ username: 'apikey', password: SAMPLE.apiKey }), may: VIEWER },
  { name: 'JWT viewer (HS256)', transports: ['mqtt', 'ws'], options: async () => ({ username: 'jwt', password: await token({ sub: 'fan-1' }) }), may: VIEWER },
  { name: 'JWT publisher (RS256)', transports: ['mqtt', 'ws'], options: async () => ({ username: 'jwt', password: await token({ sub: 'svc-2', role: 'publisher' }, { alg: 'RS256' }) }), may: ['connect', 'publish', 'retain', 'will', 'subExact', 'subWildcard', 'subReplay'] },
  { name: 'JWT operator (ES256, JWKS)', transports: ['mqtt', 'ws'], options: async () => ({ username: 'jwt', password: await token({ sub: 'op-3', role: 'operator' }, { alg: 'ES256', kid: 'example-es256' }) }), may: ALL },
  // scores-svc has its own rules: publish events and state, read state only.
  { name: 'password publisher (own rules)', transports: ['mqtt', 'ws'], options: async () => ({ ...SAMPLE.publisher }), may: ['connect', 'publish', 'retain', 'will', 'subExact'] },
  { name: 'password operator', transports: ['mqtt', 'ws'], options: async () => ({ ...SAMPLE.operator }), may: ALL },
  { name: 'certificate publisher', transports: ['mqtts', 'wss'], options: async () => clientCert('scores-svc'), may: ['connect', 'publish', 'retain', 'will', 'subExact', 'subWildcard', 'subReplay'] }
]

let node: BrokerNode
let observer: MqttClient
const seen: string[] = []

function url (transport: Who['transports'][number]): string {
  const port = node.ports[Object.keys(node.ports).find((n) => n.startsWith(`${transport}:`)) ?? '']
  return transport === 'ws' || transport === 'wss' ? `${transport}://127.0.0.1:${port}/mqtt` : `${transport}://127.0.0.1:${port}`
}

async function tryConnect (u: string, opts: IClientOptions): Promise<MqttClient | number> {
  try {
    return await mqtt.connectAsync(u, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
  } catch (err) {
    return (err as { code?: number }).code ?? -1
  }
}

async function granted (c: MqttClient, filter: string): Promise<boolean> {
  try {
    const r = await c.subscribeAsync(filter, { qos: 1 })
    return r.every((g) => g.qos !== 128)
  } catch {
    return false
  }
}

/** Publishes and reports whether the observer saw it (allowed) or the connection closed and nothing arrived (refused). */
async function published (c: MqttClient, topic: string, retain: boolean): Promise<boolean> {
  const marker = `m-${Math.random().toString(36).slice(2)}`
  const closed = new Promise<boolean>((resolve) => c.once('close', () => resolve(false)))
  c.publish(topic, JSON.stringify({ marker }), { qos: 1, retain })
  const arrived = new Promise<boolean>((resolve) => {
    const t = setInterval(() => {
      if (seen.some((s) => s.includes(marker))) { clearInterval(t); resolve(true) }
    }, 10)
    setTimeout(() => { clearInterval(t); resolve(false) }, 2000)
  })
  const result = await Promise.race([arrived, closed])
  await new Promise((resolve) => setTimeout(resolve, 50))
  return result && seen.some((s) => s.includes(marker))
}

async function run (who: Who, transport: Who['transports'][number], action: Action): Promise<boolean> {
  const opts = await who.options()
  const u = url(transport)
  if (action === 'will') {
    const c = await tryConnect(u, { ...opts, will: { topic: 'matches/m1/state', payload: Buffer.from('{"will":1}'), qos: 1, retain: false } })
    if (typeof c === 'number') return false
    await c.endAsync(true)
    return true
  }
  const c = await tryConnect(u, opts)
  if (typeof c === 'number') return false
  try {
    switch (action) {
      case 'connect': return true
      case 'publish': return await published(c, 'matches/m1/events', false)
      case 'retain': return await published(c, 'matches/m1/state', true)
      case 'subExact': return await granted(c, 'matches/m1/state')
      case 'subWildcard': return await granted(c, 'matches/+/events')
      case 'subAll': return await granted(c, '#')
      case 'subReplay': return await granted(c, '$replay/all/matches/m1/events')
      case 'subSys': return await granted(c, '$SYS/#')
      case 'subAdmin': return await granted(c, '$admin/#')
    }
  } finally {
    await c.endAsync(true)
  }
}

describe('auth matrix: every role and method against every action', () => {
  beforeAll(async () => {
    node = await startBroker(secureConfig(true))
    observer = await mqtt.connectAsync(url('mqtt'), { ...SAMPLE.operator, reconnectPeriod: 0 })
    observer.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`))
    await observer.subscribeAsync('#', { qos: 1 })
  })
  afterAll(async () => {
    await observer?.endAsync(true)
    await node?.close()
  })

  for (const who of WHO) {
    for (const transport of who.transports) {
      it(`${who.name} over ${transport}`, async () => {
        const results: Record<string, boolean> = {}
        for (const action of ACTIONS) results[action] = await run(who, transport, action)
        const expected = Object.fromEntries(ACTIONS.map((a) => [a, who.may.includes(a)]))
        expect(results).toEqual(expected)
      })
    }
  }
})
