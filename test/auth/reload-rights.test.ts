// Tests whether a reload (node.reload, what SIGHUP runs) takes rights away at once from clients already connected:
// an operator demoted to viewer that holds `#` and `$SYS/#`, and a client holding a filter a new deny rule covers,
// are disconnected (reason `revoked`) and get 0x80 for those filters when they come back, while a client whose
// subscriptions are still allowed stays and keeps receiving; and whether the will of a client a reload disconnects
// (its credential revoked, or a subscription taken away) is not published, while another client's will still is.
import { Writable } from 'node:stream'
import { describe, it, expect } from 'vitest'
import { pino } from 'pino'
import type { MqttClient } from 'mqtt'
import { brokerForTest } from '../helpers/broker.js'
import { collect, connect, waitFor } from '../helpers/mqtt.js'
import { apiKeyDigest } from '../../broker/src/auth/secrets.js'
import type { BrokerOptions } from '../../broker/src/config.js'

const KEYS = { ops: 'ops-key-for-the-reload-rights-test-0123', reader: 'reader-key-for-the-reload-rights-test-01', svc: 'svc-key-for-the-reload-rights-test-01234', root: 'root-key-for-the-reload-rights-test-0123', tv: 'tv-key-for-the-reload-rights-test-012345' }

/** The auth section before the reload, and after it (`after`): ops demoted, reader denied `secret/#`, svc revoked. */
const options = (after: boolean): BrokerOptions => ({
  host: '127.0.0.1',
  port: 0,
  wsPort: 0,
  dataDir: ':memory:',
  overloadLagMs: 0,
  auth: {
    apiKeys: [
      { id: 'ops', sha256: apiKeyDigest(KEYS.ops), role: after ? 'viewer' : 'operator' },
      { id: 'reader', sha256: apiKeyDigest(KEYS.reader), role: 'viewer', rules: { publish: ['reader/will'], subscribe: ['#'], ...(after ? { deny: { publish: [], subscribe: ['secret/#'] } } : {}) } },
      { id: 'svc', sha256: apiKeyDigest(KEYS.svc), role: 'publisher', revoked: after },
      { id: 'root', sha256: apiKeyDigest(KEYS.root), role: 'operator' },
      { id: 'tv', sha256: apiKeyDigest(KEYS.tv), role: 'viewer', rules: { publish: ['tv/will'], subscribe: ['matches/+/events', 'matches/+/state'] } }
    ]
  }
})

const key = (id: keyof typeof KEYS): { username: string, password: string } => ({ username: 'apikey', password: KEYS[id] })

describe('a reload taking rights away', () => {
  it('disconnects the clients holding subscriptions their new rules refuse, and publishes none of their wills', async () => {
    const lines: any[] = []
    const sink = new Writable({ write (chunk, _e, cb) { lines.push(JSON.parse(chunk.toString())); cb() } })
    const node = await brokerForTest(options(false), pino({ level: 'info' }, sink))
    const root = await connect(node.tcpUrl, { ...key('root'), clientId: 'root' })
    const rootGot = collect(root)
    await root.subscribeAsync(['ops/will', 'reader/will', 'matches/m1/state', 'tv/will', 'marker'], { qos: 1 })
    const closed = new Set<string>()
    const client = async (id: keyof typeof KEYS, will: string): Promise<MqttClient> => {
      const c = await connect(node.tcpUrl, { ...key(id), clientId: id, will: { topic: will, payload: Buffer.from(`will of ${id}`), qos: 1, retain: false } })
      c.on('close', () => closed.add(id))
      return c
    }
    const ops = await client('ops', 'ops/will')
    const opsGot = collect(ops)
    expect(await ops.subscribeAsync('#', { qos: 1 })).toEqual([{ topic: '#', qos: 1 }])
    expect(await ops.subscribeAsync('$SYS/#', { qos: 0 })).toEqual([{ topic: '$SYS/#', qos: 0 }])
    const reader = await client('reader', 'reader/will')
    expect(await reader.subscribeAsync('secret/#', { qos: 1 })).toEqual([{ topic: 'secret/#', qos: 1 }])
    await client('svc', 'matches/m1/state') // its credential is revoked by the reload
    const tv = await client('tv', 'tv/will')
    const tvGot = collect(tv)
    await tv.subscribeAsync('matches/+/state', { qos: 1 })

    expect(await node.reload(options(true))).toBe(3)
    await waitFor(() => ['ops', 'reader', 'svc'].every((id) => closed.has(id)), 'the three clients to be disconnected')
    const gone = (id: string): any => lines.find((l) => l.msg === 'client disconnected' && l.clientId === id)
    await waitFor(() => ['ops', 'reader', 'svc'].every((id) => gone(id) !== undefined), 'their disconnect lines')
    for (const id of ['ops', 'reader', 'svc']) expect(gone(id).reason).toBe('revoked')
    expect(gone('ops').detail).toContain('#, $SYS/#')
    expect(gone('reader').detail).toContain('secret/#')
    expect(tv.connected).toBe(true)

    // After the wills would have gone (aedes publishes one before it takes the client out of its table): a marker.
    await root.publishAsync('secret/x', 'after the reload', { qos: 1 })
    await root.publishAsync('matches/m1/state', '{"after":true}', { qos: 1 })
    await waitFor(() => tvGot.length > 0, 'tv to get the state') // still subscribed and served
    tv.stream.destroy() // lost: its will is due
    await waitFor(() => gone('tv') !== undefined, 'tv to be gone')
    await root.publishAsync('marker', 'end', { qos: 1 })
    await waitFor(() => rootGot.some((m) => m.topic === 'marker'), 'the marker')
    expect(rootGot.map((m) => m.topic)).toEqual(['matches/m1/state', 'tv/will', 'marker'])
    expect(tvGot.map((m) => m.topic)).toEqual(['matches/m1/state'])
    expect(opsGot.filter((m) => !m.topic.startsWith('$SYS')).map((m) => m.topic)).toEqual([])

    // Back, each gets 0x80 for what it may no longer hold.
    const ops2 = await connect(node.tcpUrl, { ...key('ops'), clientId: 'ops' })
    expect(JSON.stringify(await ops2.subscribeAsync('#', { qos: 1 }).catch((err: Error) => err))).toContain('128')
    const reader2 = await connect(node.tcpUrl, { ...key('reader'), clientId: 'reader' })
    expect(JSON.stringify(await reader2.subscribeAsync('secret/#', { qos: 1 }).catch((err: Error) => err))).toContain('128')
  })
})
