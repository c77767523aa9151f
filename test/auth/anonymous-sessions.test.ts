// Tests whether anonymous clients get persistent sessions (clean session off) only when the config says so
// (`auth.anonymous.persistentSessions`; CONNACK 5 otherwise, and a reload that turns it off disconnects them), and
// whether the config the Paho interoperability test needs works: anonymous clients may publish and subscribe to
// everything, `$TopicA/#` by name, except subscribing to `test/nosubscribe` (a deny rule: SUBACK 0x80).
import { describe, it, expect } from 'vitest'
import mqtt from 'mqtt'
import type { BrokerOptions } from '../../broker/src/config.js'
import { brokerForTest } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'

/** The auth section of the Paho interoperability config (README, Auth, "Deny rules"). */
const PAHO_AUTH = {
  anonymous: { role: 'publisher', persistentSessions: true },
  roles: {
    publisher: {
      publish: ['#', '$TopicA/#'],
      subscribe: ['#', '$TopicA/#'],
      deny: { subscribe: ['test/nosubscribe'] }
    }
  }
}

async function code (url: string, opts: mqtt.IClientOptions): Promise<number> {
  try {
    const c = await connect(url, opts)
    await c.endAsync()
    return 0
  } catch (err) {
    return (err as { code?: number }).code ?? -1
  }
}

describe('anonymous persistent sessions', () => {
  it('are refused with CONNACK 5 unless auth.anonymous.persistentSessions is on', async () => {
    const off = await brokerForTest({ auth: { anonymous: { role: 'viewer' } } } as BrokerOptions)
    expect(await code(off.tcpUrl, { clientId: 'anon-1', clean: false })).toBe(5)
    expect(await code(off.tcpUrl, { clientId: 'anon-1', clean: true })).toBe(0)
    const on = await brokerForTest({ auth: { anonymous: { role: 'viewer', persistentSessions: true } } } as BrokerOptions)
    expect(await code(on.tcpUrl, { clientId: 'anon-1', clean: false })).toBe(0)
  })

  it('with the Paho interoperability config: queued messages after a reconnect, test/nosubscribe refused, $TopicA by name', async () => {
    const node = await brokerForTest({ auth: PAHO_AUTH } as BrokerOptions)
    const session = { clientId: 'myclientid2', clean: false }
    const first = await connect(node.tcpUrl, session)
    const granted = await first.subscribeAsync({ '#': { qos: 2 }, '$TopicA/#': { qos: 2 } })
    expect(granted.map((g) => [g.topic, g.qos])).toEqual([['#', 2], ['$TopicA/#', 2]])
    const refused = await first.subscribeAsync('test/nosubscribe', { qos: 2 }).catch((err: { granted?: Array<{ qos: number }> }) => err)
    expect(JSON.stringify(refused)).toContain('128')
    expect(first.connected).toBe(true)
    await first.endAsync()

    const pub = await connect(node.tcpUrl)
    for (const topic of ['TopicA/B', 'test/nosubscribe', '$TopicA/B', 'TopicA/C']) await pub.publishAsync(topic, topic, { qos: 1 })
    const second = mqtt.connect(node.tcpUrl, { reconnectPeriod: 0, ...session })
    const got = collect(second)
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => { second.once('connect', resolve); second.once('error', reject) })
    expect(connack.sessionPresent).toBe(true)
    await waitFor(() => got.some((m) => m.topic === 'TopicA/C'), 'the last queued message')
    await second.endAsync(true)
    // test/nosubscribe reaches no one through `#` (a deny rule is checked per message), $TopicA/B only by name.
    expect(got.map((m) => m.topic)).toEqual(['TopicA/B', '$TopicA/B', 'TopicA/C'])
  })

  it('are disconnected by a reload that turns the option off; clean sessions stay', async () => {
    const options = { auth: { anonymous: { role: 'viewer', persistentSessions: true } } } as BrokerOptions
    const node = await brokerForTest(options)
    const persistent = await connect(node.tcpUrl, { clientId: 'anon-p', clean: false })
    const clean = await connect(node.tcpUrl, { clientId: 'anon-c' })
    const closed = new Promise((resolve) => persistent.once('close', resolve))
    const base = { host: '127.0.0.1', port: 0, wsPort: 0, dataDir: ':memory:', logLevel: 'silent', overloadLagMs: 0 }
    expect(await node.reload({ ...base, auth: { anonymous: { role: 'viewer' } } } as BrokerOptions)).toBe(1)
    await closed
    expect(clean.connected).toBe(true)
  })
})
