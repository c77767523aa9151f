// Tests whether `$` topics other than the broker's own ($SYS, $replay, $admin) are ordinary topics in local mode (no
// auth section): anyone may publish, subscribe and leave a will on them, and first-level wildcards never match them
// [MQTT-4.7.2-1] (the Paho interoperability test's `test_dollar_topics`); while the broker's own stay refused.
// (With an auth section they must be granted by name: test/auth/matrix.test.ts.)
import { describe, it, expect } from 'vitest'
import { brokerForTest } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'

describe('$ topics in local mode', () => {
  it('delivers $TopicA/B to a subscriber of it by name, never through + or #', async () => {
    const node = await brokerForTest()
    const byName = await connect(node.tcpUrl)
    const named = collect(byName)
    expect(await byName.subscribeAsync('$TopicA/#', { qos: 1 })).toEqual([{ topic: '$TopicA/#', qos: 1 }])
    const wild = await connect(node.wsUrl)
    const wildGot = collect(wild)
    await wild.subscribeAsync({ '+/+': { qos: 1 }, '#': { qos: 1 } })
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync('$TopicA/B', '{"n":1}', { qos: 1 }) // acknowledged: PUBACK, the connection stays
    await pub.publishAsync('$TopicA/B', '{"n":2}', { qos: 1, retain: true })
    await pub.publishAsync('TopicA/B', '{"marker":true}', { qos: 1 }) // after the $ ones: the wildcards' end marker
    expect(pub.connected).toBe(true)
    await waitFor(() => named.length === 2, 'the two $TopicA/B messages')
    await waitFor(() => wildGot.length >= 1, 'the marker')
    await new Promise((resolve) => setTimeout(resolve, 50)) // the same marker through the second matching wildcard
    expect(named.map((m) => m.json)).toEqual([{ n: 1 }, { n: 2 }])
    expect(wildGot.map((m) => m.topic)).toEqual(['TopicA/B']) // one message for overlapping subscriptions
    // The retained one is sent at SUBSCRIBE by name only.
    const late = await connect(node.tcpUrl)
    const lateGot = collect(late)
    await late.subscribeAsync('$TopicA/B', { qos: 1 })
    await waitFor(() => lateGot.length === 1, 'the retained $TopicA/B')
    expect(lateGot[0]).toMatchObject({ topic: '$TopicA/B', json: { n: 2 }, retain: true })
  })

  it('takes and publishes a will on a $ topic', async () => {
    const node = await brokerForTest()
    const watcher = await connect(node.tcpUrl)
    const got = collect(watcher)
    await watcher.subscribeAsync('$TopicA/will', { qos: 1 })
    const dying = await connect(node.tcpUrl, { will: { topic: '$TopicA/will', payload: Buffer.from('{"gone":true}'), qos: 1, retain: false } })
    dying.stream.destroy() // no DISCONNECT: the will is due
    await waitFor(() => got.length === 1, 'the will')
    expect(got[0]).toMatchObject({ topic: '$TopicA/will', json: { gone: true } })
  })

  it('still refuses a PUBLISH to $SYS or $replay, and a will on them (CONNACK 5)', async () => {
    const node = await brokerForTest()
    for (const topic of ['$SYS/fake', '$SYS', '$replay/all/matches/x/events']) {
      const c = await connect(node.tcpUrl)
      const closed = new Promise((resolve) => c.once('close', resolve))
      c.publish(topic, '{}', { qos: 1 })
      await closed
      const will = await connect(node.tcpUrl, { will: { topic, payload: Buffer.from('{}'), qos: 0, retain: false } })
        .catch((err: Error & { code?: number }) => err)
      expect((will as { code?: number }).code).toBe(5)
    }
    // A first level that only starts like a reserved one is an ordinary topic.
    const c = await connect(node.tcpUrl)
    await c.publishAsync('$SYSTEM/x', 'ok', { qos: 1 })
    expect(c.connected).toBe(true)
  })
})
