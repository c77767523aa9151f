// Tests whether a node's metrics are right: GET /metrics (on the WebSocket listener's HTTP server and on
// --metrics-port) parses as Prometheus text (parsed by a library), with tribune_ names and bounded labels only; its
// counters move by the right amounts while a World Cup replay runs (messages in = messages published, feed messages
// stored = events, deliveries = events x viewers, plain and $replay viewers); refusals are counted by reason;
// `$SYS/<node-id>/stats` and the values that changed come every --sys-interval, to operators only; and --metrics off
// serves and publishes nothing.
import { join } from 'node:path'
import { describe, it, expect } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startBroker } from '../../broker/src/main.js'
import { METRICS } from '../../broker/src/metrics/registry.js'
import { Publisher } from '../../publisher/src/index.js'
import { readWorldCupFile } from '../../publisher/src/replay/worldcup.js'
import { runReplay } from '../../publisher/src/replay/run.js'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { secureConfig, SAMPLE } from '../helpers/auth.js'
import { scrape, value, type Scrape } from '../helpers/metrics.js'

const WORLD_CUP = join(import.meta.dirname, '../../publisher/data/worldcup-2022.json')
/** The only label names a metric may carry: each has a bounded set of values (never a client id or a topic). */
const LABELS = new Set(['node_id', 'version', 'store', 'transport', 'role', 'reason', 'return_code'])

/** Counts the PUBLISH packets a client receives, and their payload bytes. */
function count (c: MqttClient): { messages: number, bytes: number } {
  const seen = { messages: 0, bytes: 0 }
  c.on('message', (_topic, payload) => {
    seen.messages++
    seen.bytes += payload.length
  })
  return seen
}

describe('GET /metrics', () => {
  it('parses as Prometheus text on the WebSocket port and on --metrics-port, with every metric of the table, tribune_ names and bounded labels', async () => {
    const node = await brokerForTest({ metricsPort: 0, sysInterval: 0 })
    const viewer = await connect(node.wsUrl)
    await viewer.subscribeAsync('matches/+/events')
    const onWs = await scrape(`http://127.0.0.1:${node.wsPort}/metrics`)
    const onPort = await scrape(`http://127.0.0.1:${node.ports.metrics}/metrics`)
    const names = [...METRICS.map((m) => m.name), 'tribune_publish_delivery_seconds', 'tribune_redis_command_seconds'].sort()
    expect([...onWs.keys()].sort()).toEqual(names)
    expect([...onPort.keys()].sort()).toEqual(names)
    for (const family of onWs.values()) {
      expect(family.help, family.name).not.toBe('')
      for (const m of family.metrics) for (const label of Object.keys(m.labels ?? {})) expect(LABELS.has(label), `${family.name}{${label}}`).toBe(true)
      if (family.type === 'COUNTER') expect(family.name, 'counter names end in _total').toMatch(/_total$/)
    }
    expect(onWs.get('tribune_publish_delivery_seconds')?.type).toBe('HISTOGRAM')
    expect(value(onWs, 'tribune_info', { node_id: node.aedes.id, store: 'embedded' })).toBe(1)
    expect(value(onWs, 'tribune_clients_connected', { transport: 'ws', role: 'operator' })).toBe(1) // local mode: operators
    expect(value(onWs, 'tribune_subscriptions')).toBe(1)
    expect(value(onWs, 'tribune_store_reachable')).toBe(1)
    expect(value(onWs, 'tribune_resident_memory_bytes')).toBeGreaterThan(1e6)
    const head = await fetch(`http://127.0.0.1:${node.wsPort}/metrics`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe('')
  })

  it('counts while a World Cup replay runs: messages in = messages published, feed messages stored = events, deliveries = events x viewers', async () => {
    const node = await brokerForTest({ sysInterval: 0 })
    const worldCup = await readWorldCupFile(WORLD_CUP)
    const first = worldCup.matches[0]
    // Plain viewers of every feed (TCP at QoS 1, WebSocket at QoS 0), and `$replay` viewers of the first match's feed
    // (served by the feed hub), all subscribed before the first event: no history.
    const plain = await Promise.all(Array.from({ length: 6 }, async (_, i) => {
      const c = await connect(i % 2 === 0 ? node.tcpUrl : node.wsUrl)
      await c.subscribeAsync('matches/+/events', { qos: i % 2 === 0 ? 1 : 0 })
      return count(c)
    }))
    const replaying = await Promise.all(Array.from({ length: 3 }, async () => {
      const c = await connect(node.tcpUrl)
      await c.subscribeAsync(`$replay/all/matches/${first.id}/events`, { qos: 1 })
      return count(c)
    }))
    const before = await scrape(`http://127.0.0.1:${node.wsPort}/metrics`)

    const publisher = await Publisher.connect(node.tcpUrl)
    onCleanup(async () => await publisher.close())
    const summary = await runReplay(publisher, worldCup.matches, { speed: 0 })
    const events = worldCup.matches.reduce((n, m) => n + m.events.length, 0)
    expect(summary.events).toBe(events)
    await waitFor(() => plain.every((v) => v.messages === events) && replaying.every((v) => v.messages === first.events.length), 'every viewer has every event')
    const after = await scrape(`http://127.0.0.1:${node.wsPort}/metrics`)
    const moved = (name: string, labels: Record<string, string> = {}): number => value(after, name, labels) - value(before, name, labels)

    expect(moved('tribune_messages_received_total')).toBe(summary.events + summary.states)
    expect(moved('tribune_feed_messages_stored_total')).toBe(events)
    expect(moved('tribune_messages_sent_total')).toBe(events * plain.length + first.events.length * replaying.length)
    expect(moved('tribune_publish_refused_total')).toBe(0)
    const payloads = [...plain, ...replaying].reduce((n, v) => n + v.bytes, 0)
    expect(moved('tribune_bytes_sent_total')).toBeGreaterThan(payloads) // each PUBLISH is its payload and a header
    expect(moved('tribune_bytes_received_total')).toBeGreaterThan(0)
    expect(moved('tribune_publish_delivery_seconds')).toBeGreaterThan(0) // sampled, at most one message per 10 ms
    expect(value(after, 'tribune_retained_messages')).toBe(worldCup.matches.length) // every match's state
    expect(value(after, 'tribune_replay_viewers')).toBe(replaying.length)
    expect(value(after, 'tribune_feeds_cached')).toBe(1)
    expect(value(after, 'tribune_clients_connected')).toBe(plain.length + replaying.length + 1)
    expect(value(after, 'tribune_clients_connected', { transport: 'ws' })).toBe(3)
    // The statistics document holds the same figures.
    const stats = node.stats()
    expect(stats.messages.sent).toBe(value(after, 'tribune_messages_sent_total'))
    expect(stats.messages.feedStored).toBe(value(after, 'tribune_feed_messages_stored_total'))
    expect(stats.clients).toMatchObject({ connected: 10, transport: { mqtt: 7, ws: 3 }, role: { operator: 10 } })
    expect(stats.latency.publishToDelivery.count).toBeGreaterThan(0)
    expect(stats.latency.publishToDelivery.maxSeconds).toBeLessThan(10)
  }, 120_000)
})

describe('publish-to-delivery latency', () => {
  it('is not taken from a retained message a viewer gets seconds after its publish, when nobody received the publish', async () => {
    const node = await brokerForTest()
    const publisher = await connect(node.tcpUrl)
    await publisher.publishAsync('matches/m1/state', '{"status":"live"}', { qos: 1, retain: true })
    await new Promise((resolve) => setTimeout(resolve, 2300)) // past the 2 s a timed message waits for a delivery
    const viewer = await connect(node.wsUrl)
    const got = collect(viewer)
    await viewer.subscribeAsync('matches/m1/state')
    await waitFor(() => got.length === 1, 'the retained state')
    await publisher.publishAsync('nobody/listens', 'x', { qos: 1 }) // a flush after the delivery, where a figure would be taken
    expect(node.stats().latency.publishToDelivery.count).toBe(0)
    // A message delivered as it is published is timed (one timing started every 10 ms at most).
    await new Promise((resolve) => setTimeout(resolve, 20))
    await publisher.publishAsync('matches/m1/state', '{"status":"ended"}', { qos: 1, retain: true })
    await waitFor(() => got.length === 2, 'the new state')
    // Timed at the first flush of the connections that carries no new copy of it (here: the PUBACK of another).
    await publisher.publishAsync('nobody/listens', 'x', { qos: 1 })
    await waitFor(() => node.stats().latency.publishToDelivery.count === 1, 'the timing')
    expect(node.stats().latency.publishToDelivery.maxSeconds).toBeLessThan(1)
  })
})

describe('refusals and $SYS, with an auth section', () => {
  async function secureNode (): Promise<{ node: Awaited<ReturnType<typeof startBroker>>, url: (protocol: string) => string }> {
    const cfg = secureConfig()
    cfg.sysInterval = 1
    // Viewers' rules grant $SYS here: still only operators may read it.
    cfg.auth = { ...cfg.auth, roles: { viewer: { subscribe: ['matches/+/events', '$SYS/#'] } } }
    const node = await startBroker(cfg)
    onCleanup(async () => await node.close())
    const url = (protocol: string): string => {
      const port = node.ports[Object.keys(node.ports).find((n) => n.startsWith(`${protocol}:`)) ?? '']
      return protocol === 'ws' ? `ws://127.0.0.1:${port}/mqtt` : `mqtt://127.0.0.1:${port}`
    }
    return { node, url }
  }

  it('counts refused CONNECTs by return code and reason, and refused PUBLISHes by reason', async () => {
    const { node, url } = await secureNode()
    const metrics = async (): Promise<Scrape> => await scrape(`http://127.0.0.1:${node.wsPort}/metrics`)
    const before = await metrics()
    const code = await connect(url('mqtt'), { username: SAMPLE.operator.username, password: 'wrong' }).then(() => 0, (err: { code?: number }) => err.code)
    expect(code).toBe(4)
    const viewer = await connect(url('ws'))
    const closed = new Promise((resolve) => viewer.once('close', resolve))
    viewer.publish('matches/x/events', '{}', { qos: 1 })
    await closed
    await waitFor(() => node.stats().messages.refused['not-authorized'] === 1, 'the refused PUBLISH counted')
    const after = await metrics()
    expect(value(after, 'tribune_connect_refused_total', { return_code: '4', reason: 'bad-credentials' }) - value(before, 'tribune_connect_refused_total', { return_code: '4', reason: 'bad-credentials' })).toBe(1)
    expect(value(after, 'tribune_connect_refused_total') - value(before, 'tribune_connect_refused_total')).toBe(1)
    expect(value(after, 'tribune_publish_refused_total', { reason: 'not-authorized' })).toBe(1)
    expect(value(after, 'tribune_messages_received_total')).toBe(1)
  })

  it('publishes $SYS/<id>/stats and the values that changed every --sys-interval, to operators only', async () => {
    const { node, url } = await secureNode()
    const viewer = await connect(url('ws'))
    // The viewer's rules grant $SYS/#, but it is not an operator: 0x80; its other filter is granted.
    const granted = async (filter: string): Promise<number> => await viewer.subscribeAsync(filter).then((g) => g[0].qos, () => 128)
    expect(await granted('$SYS/#')).toBe(128)
    expect(await granted('$SYS/+/stats')).toBe(128)
    expect(await granted('matches/+/events')).toBe(0)
    const operator = await connect(url('mqtt'), { ...SAMPLE.operator })
    const got: Array<{ topic: string, text: string }> = []
    operator.on('message', (topic, payload) => got.push({ topic, text: payload.toString() }))
    await operator.subscribeAsync(`$SYS/${node.aedes.id}/#`)
    const docs = (): number => got.filter((m) => m.topic.endsWith('/stats')).length
    await waitFor(() => docs() >= 3, 'three statistics documents', 10_000)
    const prefix = `$SYS/${node.aedes.id}/`
    const stats = JSON.parse(got.find((m) => m.topic === `${prefix}stats`)?.text ?? '{}')
    expect(stats).toMatchObject({ id: node.aedes.id, store: { kind: 'embedded', reachable: true }, clients: { connected: 2, role: { viewer: 1, operator: 1 } } })
    // Each document is followed by the values that changed since the one before (the first time: all of them).
    const groups: string[][] = []
    for (const m of got) {
      if (m.topic === `${prefix}stats`) groups.push([])
      else if (groups.length > 0 && !m.topic.startsWith(`${prefix}heartbeat`)) groups[groups.length - 1].push(m.topic.slice(prefix.length))
    }
    const second = groups[1]
    expect(second).toContain('uptimeSeconds')
    expect(second).not.toContain('clients/connected') // nobody came or went
    expect(second).not.toContain('version')
    expect(got.filter((m) => m.topic === `${prefix}clients/connected`).every((m) => m.text === '2')).toBe(true)
  })
})

describe('--metrics off', () => {
  it('answers GET /metrics 404 saying so, publishes no $SYS statistics and counts nothing, while stats() still counts clients', async () => {
    const node = await brokerForTest({ metrics: 'off', sysInterval: 1, heartbeatInterval: 200 })
    const res = await fetch(`http://127.0.0.1:${node.wsPort}/metrics`)
    expect(res.status).toBe(404)
    expect(await res.text()).toContain('--metrics off')
    const operator = await connect(node.tcpUrl)
    const got = collect(operator)
    await operator.subscribeAsync(`$SYS/${node.aedes.id}/#`)
    await operator.subscribeAsync('matches/+/events')
    await operator.publishAsync('matches/x/events', '{"n":1}', { qos: 1 })
    // aedes' heartbeat every 200 ms: 8 of them span more than one --sys-interval.
    await waitFor(() => got.filter((m) => m.topic.endsWith('/heartbeat')).length >= 8, 'eight heartbeats')
    // Only aedes' own notices (heartbeat, new/subscribes) and the message: no statistics.
    const prefix = `$SYS/${node.aedes.id}/`
    expect(got.filter((m) => !/^(heartbeat|new\/|disconnect\/)/.test(m.topic.replace(prefix, ''))).map((m) => m.topic)).toEqual(['matches/x/events'])
    const stats = node.stats()
    expect(stats.clients.connected).toBe(1)
    expect(stats.messages).toMatchObject({ received: 0, sent: 0, feedStored: 0 })
  })
})
