// Tests whether every role and auth method gets exactly the grants and refusals its rules give, for every action
// (connect, publish, retained publish, will, subscribe to an exact topic, a wildcard, #, $replay, $SYS, $admin),
// over TCP and WebSocket (client certificates over MQTT/TLS and WSS), with the shipped examples/secure.json.
// Then deny rules (they win over allow rules) and `$` topics granted by name, in a second table; and whether a
// wildcard subscription that overlaps a denied filter (`#` and a deny of `internal/#`) never delivers a denied topic:
// live, retained at SUBSCRIBE, and queued for a persistent session across a reconnect, on both stores.
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { startBroker, type BrokerNode } from '../../broker/src/main.js'
import type { BrokerOptions } from '../../broker/src/config.js'
import { apiKeyDigest } from '../../broker/src/auth/secrets.js'
import { secureConfig, SAMPLE, token, clientCert } from '../helpers/auth.js'
import { brokerForTest } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'

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

// Deny rules. Each API key below carries its own rules (config `auth.apiKeys[].rules`), including `deny`.
type DenyAction = 'subAll' | 'subDenied' | 'subCovered' | 'subOverlap' | 'subNoSubscribe' | 'pubEvents' | 'pubTestEvents' | 'subReplay' | 'subTestReplay' | 'pubDollar' | 'subDollar'
/** What each action does: subscribe to a filter (granted?) or publish to a topic name (delivered?). */
const DENY_ACTIONS: Record<DenyAction, { sub: string } | { pub: string }> = {
  subAll: { sub: '#' },
  subDenied: { sub: 'internal/#' }, // equal to a denied filter
  subCovered: { sub: 'internal/+/x' }, // covered by it
  subOverlap: { sub: '+/x' }, // overlaps it (internal/x): granted, internal/x is dropped per message
  subNoSubscribe: { sub: 'test/nosubscribe' },
  pubEvents: { pub: 'matches/m1/events' },
  pubTestEvents: { pub: 'matches/test-1/events' }, // denied by a prefix level: matches/test-+/events
  subReplay: { sub: '$replay/all/matches/m1/events' },
  subTestReplay: { sub: '$replay/all/matches/test-1/events' }, // denied when its feed is
  pubDollar: { pub: '$TopicA/B' }, // a `$` topic: granted by name only [MQTT-4.7.2-1]
  subDollar: { sub: '$TopicA/B' }
}
const DENY_KEYS: Array<{ id: string, role: 'viewer' | 'publisher' | 'operator', rules?: unknown, may: DenyAction[] }> = [
  {
    id: 'all-but-internal',
    role: 'viewer',
    rules: { subscribe: ['#', '$TopicA/#'], deny: { subscribe: ['internal/#', 'matches/test-+/events'] } },
    may: ['subAll', 'subOverlap', 'subNoSubscribe', 'subReplay', 'subDollar']
  },
  {
    id: 'events-but-test',
    role: 'publisher',
    rules: { publish: ['matches/+/events'], subscribe: ['matches/+/events'], deny: { publish: ['matches/test-+/events'] } },
    may: ['pubEvents', 'subReplay', 'subTestReplay']
  },
  {
    id: 'everything-but-nosubscribe',
    role: 'viewer',
    rules: { publish: ['#', '$TopicA/#'], subscribe: ['#', '$TopicA/#'], deny: { subscribe: ['test/nosubscribe'] } },
    may: ['subAll', 'subDenied', 'subCovered', 'subOverlap', 'pubEvents', 'pubTestEvents', 'subReplay', 'subTestReplay', 'pubDollar', 'subDollar']
  },
  {
    id: 'hash-only', // `#` does not reach `$TopicA/B`
    role: 'viewer',
    rules: { publish: ['#'], subscribe: ['#'] },
    may: ['subAll', 'subDenied', 'subCovered', 'subOverlap', 'subNoSubscribe', 'pubEvents', 'pubTestEvents', 'subReplay', 'subTestReplay']
  },
  // The observer of the table: sees everything published, `$TopicA/...` included.
  { id: 'observer', role: 'viewer', rules: { subscribe: ['#', '$TopicA/#'] }, may: [] }
]
/** A JWT may add deny rules to its role's (`tribune_rules.deny`), never lift them. */
const JWT_WITH_DENY = { sub: 'op-deny', role: 'operator', tribune_rules: { deny: { publish: ['matches/test-+/events'], subscribe: ['internal/#'] } } }
const JWT_WITH_DENY_MAY: DenyAction[] = ['subAll', 'subOverlap', 'subNoSubscribe', 'pubEvents', 'subReplay', 'subTestReplay']

const keyOf = (id: string): string => `deny-table-key-${id}-0123456789`

/** examples/secure.json (every listener takes every method) plus the API keys of the deny table. */
function denyConfig (extra: BrokerOptions = {}): BrokerOptions {
  const cfg = secureConfig(true) as BrokerOptions & { auth: { apiKeys: unknown[] } }
  for (const k of DENY_KEYS) cfg.auth.apiKeys.push({ id: k.id, sha256: apiKeyDigest(keyOf(k.id)), role: k.role, rules: k.rules })
  return { ...cfg, ...extra }
}

describe('auth matrix: deny rules and $ topics', () => {
  let observerSeen: string[]
  let denyNode: BrokerNode
  let denyObserver: MqttClient

  const denyUrl = (transport: 'mqtt' | 'ws'): string => {
    const port = denyNode.ports[Object.keys(denyNode.ports).find((n) => n.startsWith(`${transport}:`)) ?? '']
    return transport === 'ws' ? `ws://127.0.0.1:${port}/mqtt` : `mqtt://127.0.0.1:${port}`
  }

  /** Publishes and reports whether the observer saw it, or the connection closed and nothing arrived. */
  async function delivered (c: MqttClient, topic: string): Promise<boolean> {
    const marker = `m-${Math.random().toString(36).slice(2)}`
    const closed = new Promise<boolean>((resolve) => c.once('close', () => resolve(false)))
    c.publish(topic, JSON.stringify({ marker }), { qos: 1 })
    const arrived = new Promise<boolean>((resolve) => {
      const t = setInterval(() => {
        if (observerSeen.some((s) => s.includes(marker))) { clearInterval(t); resolve(true) }
      }, 10)
      setTimeout(() => { clearInterval(t); resolve(false) }, 2000)
    })
    const result = await Promise.race([arrived, closed])
    await new Promise((resolve) => setTimeout(resolve, 50))
    return result && observerSeen.some((s) => s.includes(marker))
  }

  async function runDeny (opts: IClientOptions, transport: 'mqtt' | 'ws', action: DenyAction): Promise<boolean> {
    const c = await tryConnect(denyUrl(transport), opts)
    if (typeof c === 'number') throw new Error(`CONNACK ${c}`)
    try {
      const what = DENY_ACTIONS[action]
      return 'sub' in what ? await granted(c, what.sub) : await delivered(c, what.pub)
    } finally {
      await c.endAsync(true)
    }
  }

  beforeAll(async () => {
    observerSeen = []
    denyNode = await startBroker(denyConfig())
    denyObserver = await mqtt.connectAsync(denyUrl('mqtt'), { username: 'apikey', password: keyOf('observer'), reconnectPeriod: 0 })
    denyObserver.on('message', (topic, payload) => observerSeen.push(`${topic} ${payload.toString()}`))
    await denyObserver.subscribeAsync({ '#': { qos: 1 }, '$TopicA/#': { qos: 1 } })
  })
  afterAll(async () => {
    await denyObserver?.endAsync(true)
    await denyNode?.close()
  })

  const rows: Array<{ name: string, options: () => Promise<IClientOptions>, may: DenyAction[] }> = [
    ...DENY_KEYS.filter((k) => k.id !== 'observer').map((k) => ({ name: `API key ${k.id}`, options: async () => ({ username: 'apikey', password: keyOf(k.id) }), may: k.may })),
    { name: 'JWT operator with deny claims', options: async () => ({ username: 'jwt', password: await token(JWT_WITH_DENY) }), may: JWT_WITH_DENY_MAY }
  ]
  for (const row of rows) {
    for (const transport of ['mqtt', 'ws'] as const) {
      it(`${row.name} over ${transport}`, async () => {
        const actions = Object.keys(DENY_ACTIONS) as DenyAction[]
        const results: Record<string, boolean> = {}
        for (const action of actions) results[action] = await runDeny(await row.options(), transport, action)
        expect(results).toEqual(Object.fromEntries(actions.map((a) => [a, row.may.includes(a)])))
      })
    }
  }
})

describe('a wildcard subscription that overlaps a denied filter', () => {
  const viewer = { username: 'apikey', password: keyOf('all-but-internal') } // `#`, except internal/# and matches/test-+/events
  const denied = (topic: string): boolean => topic.startsWith('internal/') || topic === 'matches/test-1/events'

  /** The operator publishes denied and allowed topics, in this order, the allowed `end` marker last. */
  async function publishMix (url: string, tag: string): Promise<void> {
    const ops = await connect(url, { ...SAMPLE.operator })
    for (const topic of ['internal/x', `public/${tag}`, 'internal/a/b', 'matches/test-1/events', 'matches/m1/events', `public/${tag}-end`]) {
      await ops.publishAsync(topic, JSON.stringify({ tag }), { qos: 1 })
    }
    await ops.endAsync()
  }

  it('never delivers a denied topic to a clean session: live, and retained at SUBSCRIBE, over TCP and WebSocket', async () => {
    const node = await brokerForTest(denyConfig())
    const port = (p: string): number => node.ports[Object.keys(node.ports).find((n) => n.startsWith(`${p}:`)) ?? '']
    const tcp = `mqtt://127.0.0.1:${port('mqtt')}`
    const ops = await connect(tcp, { ...SAMPLE.operator })
    await ops.publishAsync('internal/state', '{"secret":1}', { qos: 1, retain: true })
    await ops.publishAsync('public/state', '{"ok":1}', { qos: 1, retain: true })
    for (const url of [tcp, `ws://127.0.0.1:${port('ws')}/mqtt`]) {
      const v = await connect(url, viewer)
      const got = collect(v)
      expect(await v.subscribeAsync('#', { qos: 1 })).toEqual([{ topic: '#', qos: 1 }]) // granted, though it overlaps internal/#
      await waitFor(() => got.some((m) => m.topic === 'public/state'), 'the allowed retained message')
      await publishMix(tcp, 'live')
      await waitFor(() => got.some((m) => m.topic === 'public/live-end'), 'the end marker')
      expect(got.map((m) => m.topic)).toEqual(['public/state', 'public/live', 'matches/m1/events', 'public/live-end'])
      await v.endAsync()
    }
  })

  it('stops the denied topics through subscriptions already granted when a reload adds a deny rule, $replay included', async () => {
    const node = await brokerForTest(denyConfig())
    const tcp = `mqtt://127.0.0.1:${node.ports[Object.keys(node.ports).find((n) => n.startsWith('mqtt:')) ?? '']}`
    const v = await connect(tcp, { username: 'apikey', password: keyOf('hash-only') })
    const got = collect(v)
    await v.subscribeAsync('#', { qos: 1 })
    // A filter the new deny rule covers (not merely overlaps) can no longer be held: its client is disconnected.
    const r = await connect(tcp, { username: 'apikey', password: keyOf('hash-only') })
    await r.subscribeAsync('$replay/all/matches/test-1/events', { qos: 1 })
    const next = denyConfig() as BrokerOptions & { auth: { apiKeys: Array<{ id: string, rules?: { deny?: unknown } }> } }
    const key = next.auth.apiKeys.find((k) => k.id === 'hash-only')
    if (key?.rules === undefined) throw new Error('the hash-only key has rules')
    key.rules = { ...key.rules, deny: { subscribe: ['internal/#', 'matches/test-+/events'] } }
    expect(await node.reload({ ...next, host: '127.0.0.1', overloadLagMs: 0 })).toBe(1) // r, not v
    await waitFor(() => !r.connected, 'the $replay holder to be disconnected')
    expect(v.connected).toBe(true)
    const ops = await connect(tcp, { ...SAMPLE.operator })
    for (const topic of ['internal/x', 'matches/test-1/events', 'public/end']) await ops.publishAsync(topic, '{}', { qos: 1 })
    await waitFor(() => got.some((m) => m.topic === 'public/end'), 'the end marker')
    expect(got.map((m) => m.topic)).toEqual(['public/end'])
  })

  for (const store of ['embedded', 'redis'] as const) {
    it(`never delivers a denied topic to a persistent session, before or after a reconnect (${store} store)`, async () => {
      const extra: BrokerOptions = store === 'redis' ? { redis: (await redisForTest()).url } : {}
      const node = await brokerForTest(denyConfig(extra))
      const tcp = `mqtt://127.0.0.1:${node.ports[Object.keys(node.ports).find((n) => n.startsWith('mqtt:')) ?? '']}`
      // The operator publishes, and sees everything itself: once it has a batch's end marker, no message of the batch
      // is still on its way through the node's message stream (through Redis on that store).
      const ops = await connect(tcp, { ...SAMPLE.operator })
      const opsGot = collect(ops)
      await ops.subscribeAsync('#', { qos: 1 })
      const mix = async (tag: string): Promise<void> => {
        for (const topic of ['internal/x', `public/${tag}`, 'internal/a/b', 'matches/test-1/events', 'matches/m1/events', `public/${tag}-end`]) {
          await ops.publishAsync(topic, JSON.stringify({ tag }), { qos: 1 })
        }
        await waitFor(() => opsGot.some((m) => m.topic === `public/${tag}-end`), `the operator's copy of the ${tag} batch`)
      }
      await ops.publishAsync('internal/state', '{"secret":1}', { qos: 1, retain: true })
      await ops.publishAsync('public/state', '{"ok":1}', { qos: 1, retain: true })
      const session = { ...viewer, clientId: `deny-persistent-${store}`, clean: false }
      const key = (m: { topic: string, json: any }): string => `${m.topic} ${m.json?.tag ?? m.json?.data?.tag ?? ''}`

      const first = await connect(tcp, session)
      const got1 = collect(first)
      expect(await first.subscribeAsync('#', { qos: 1 })).toEqual([{ topic: '#', qos: 1 }])
      await waitFor(() => got1.some((m) => m.topic === 'public/state'), 'the allowed retained message')
      await mix('online')
      await waitFor(() => got1.some((m) => m.topic === 'public/online-end'), 'the end marker')
      await first.endAsync()

      await mix('offline') // queued for the session while it is away
      // Listening before CONNACK: the queued messages may come in the same read as the CONNACK.
      const second = mqtt.connect(tcp, { reconnectPeriod: 0, connectTimeout: 5000, ...session })
      const got2 = collect(second)
      await new Promise((resolve, reject) => { second.once('connect', resolve); second.once('error', reject) })
      await waitFor(() => got2.some((m) => m.topic === 'public/offline-end'), 'the queued end marker')
      await mix('back')
      await waitFor(() => got2.some((m) => m.topic === 'public/back-end'), 'the live end marker after the reconnect')
      await second.endAsync(true)

      expect([...got1, ...got2].filter((m) => denied(m.topic))).toEqual([])
      expect(got1.map(key)).toEqual(['public/state ', 'public/online online', 'matches/m1/events online', 'public/online-end online'])
      const expected2 = ['public/offline offline', 'matches/m1/events offline', 'public/offline-end offline', 'public/back back', 'matches/m1/events back', 'public/back-end back']
      if (store === 'embedded') {
        expect(got2.map(key)).toEqual(expected2)
      } else {
        // On Redis a reconnecting persistent session may also get again messages it had acknowledged (a defect of
        // the Redis persistence path, not of the rules): only the allowed ones, each expected one at least once.
        const keys2 = got2.map(key)
        expect(expected2.filter((k) => !keys2.includes(k))).toEqual([])
        expect(keys2.filter((k) => !expected2.includes(k) && !got1.map(key).includes(k))).toEqual([])
      }
    })
  }
})
