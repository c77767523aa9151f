/**
 * Clients that try to break the cluster's guarantees (found by an attack run on the cluster):
 *  - a topic filter with Redis pattern characters would have become a Redis pattern, or taken the place of another
 *    filter's PSUBSCRIBE and blinded that node's subscribers: refused with 0x80;
 *  - a QoS 1 feed PUBLISH whose connection closes before the PUBACK was stored but never went out live;
 *  - PUBREL and a new QoS 2 PUBLISH with the same packet id in one write put an unstamped (forged) payload on a feed;
 *  - two clusters with the same prefix in two databases of one Redis heard each other (pub/sub ignores databases).
 */
import { connect as tcpConnect } from 'node:net'
import { test, expect } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { brokerForTest } from '../helpers/broker.js'
import { clusterForTest } from '../helpers/cluster.js'

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** A raw MQTT connection: write packets, read what comes back. */
async function raw (port: number, clientId: string): Promise<{ write: (...p: object[]) => void, inbox: any[], end: (p?: object) => void }> {
  const socket = tcpConnect({ host: '127.0.0.1', port })
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  const parser = mqttPacket.parser()
  const inbox: any[] = []
  parser.on('packet', (p) => inbox.push(p))
  socket.on('data', (d) => parser.parse(d))
  const gen = (p: object): Buffer => mqttPacket.generate(p as never)
  socket.write(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 60 }))
  await waitFor(() => inbox.some((p) => p.cmd === 'connack'), 'CONNACK')
  return {
    inbox,
    write: (...packets) => socket.write(Buffer.concat(packets.map(gen))),
    end: (p) => socket.end(p !== undefined ? gen(p) : undefined)
  }
}

test('a filter with * ? [ ] or \\ is refused with 0x80, and cannot blind a node\'s wildcard subscribers', async () => {
  const redis = await redisForTest()
  const [a, b] = await clusterForTest(redis.url, 2)
  const attacker = await raw(a.tcpPort, 'attacker')
  const filters = ['matches/*/state', 'a/?', '[m]*/#', 'x/\\y', 'matches/+/state']
  attacker.write({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos: 0 })) })
  await waitFor(() => attacker.inbox.some((p) => p.cmd === 'suback'), 'SUBACK')
  expect(attacker.inbox.find((p) => p.cmd === 'suback').granted).toEqual([128, 128, 128, 128, 0])
  const victim = await connect(a.wsUrl)
  const got = collect(victim)
  await victim.subscribeAsync('matches/+/state')
  const pub = await connect(b.tcpUrl)
  for (let i = 0; i < 3; i++) await pub.publishAsync(`matches/${i}/state`, `{"i":${i}}`, { qos: 1 })
  await waitFor(() => got.length === 3, '3 states on the victim\'s node')
  expect(await redis.client().call('PUBSUB', 'NUMPAT')).toBeGreaterThan(0)
})

test('a QoS 1 feed PUBLISH whose connection closes before the PUBACK still goes out live, on every node', async () => {
  const redis = await redisForTest()
  const [a, b] = await clusterForTest(redis.url, 2)
  const viewer = await connect(b.tcpUrl)
  const got = collect(viewer)
  await viewer.subscribeAsync('$replay/all/matches/q1/events', { qos: 1 })
  for (let i = 0; i < 10; i++) {
    const p = await raw(a.tcpPort, `gone-${i}`)
    p.end({ cmd: 'publish', topic: 'matches/q1/events', payload: `{"i":${i}}`, qos: 1, messageId: 1, dup: false, retain: false })
    await sleep(20)
  }
  await waitFor(() => got.length === 10, '10 live messages', 5000)
  expect(got.map((m) => m.json.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
})

test('PUBREL and a new QoS 2 PUBLISH with the same packet id in one write never put an unstamped payload on a feed', async () => {
  const node = await brokerForTest()
  const viewer = await connect(node.tcpUrl)
  const got = collect(viewer)
  await viewer.subscribeAsync('$replay/all/matches/q2/events', { qos: 1 })
  const p = await raw(node.tcpPort, 'forger')
  for (let round = 0; round < 3; round++) {
    p.write({ cmd: 'publish', topic: 'matches/q2/events', payload: `{"real":${round}}`, qos: 2, messageId: 7, dup: false, retain: false })
    await waitFor(() => p.inbox.some((x) => x.cmd === 'pubrec'), 'PUBREC')
    p.inbox.length = 0
    const forged = `{"seq":${round * 2 + 2},"epoch":"${String(got[0]?.json.epoch ?? 'x')}","ts":1,"data":"FORGED"}`
    p.write({ cmd: 'pubrel', messageId: 7 }, { cmd: 'publish', topic: 'matches/q2/events', payload: forged, qos: 2, messageId: 7, dup: false, retain: false })
    await sleep(100)
    p.write({ cmd: 'pubrel', messageId: 7 })
    await sleep(100)
  }
  await sleep(300)
  for (const m of got) expect(JSON.stringify(m.json.data), JSON.stringify(m.json)).not.toContain('FORGED')
  const seqs = got.map((m) => m.json.seq)
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, k) => k + 1))
  expect(got.map((m) => m.json.data.real)).toEqual([0, 1, 2].slice(0, got.length))
})

test('two clusters with the same prefix in two databases of one Redis never hear each other', async () => {
  const redis = await redisForTest()
  const zero = await brokerForTest({ redis: `${redis.url}/0`, nodeId: 'z0' })
  const one = await brokerForTest({ redis: `${redis.url}/1`, nodeId: 'o1' })
  const onOne = await connect(one.tcpUrl)
  const got = collect(onOne)
  await onOne.subscribeAsync(['#', '$replay/all/matches/1/events'])
  const pub = await connect(zero.tcpUrl)
  await pub.publishAsync('matches/1/state', '{"score":"1-0"}', { qos: 1, retain: true })
  await pub.publishAsync('matches/1/events', '{"id":"zero"}', { qos: 1 })
  await sleep(300)
  expect(got).toEqual([])
  const late = await connect(one.wsUrl)
  const lateGot = collect(late)
  await late.subscribeAsync('matches/1/state')
  await sleep(200)
  expect(lateGot).toEqual([])
})

test('a QoS 2 DUP with a packet id and payload just used on another feed is stamped for its own feed', async () => {
  const node = await brokerForTest()
  const viewer = await connect(node.tcpUrl)
  const got = collect(viewer)
  await viewer.subscribeAsync(['$replay/all/matches/g/events', '$replay/all/matches/f/events'], { qos: 1 })
  const p = await raw(node.tcpPort, 'mixer')
  const payload = '{"goal":1}'
  p.write({ cmd: 'publish', topic: 'matches/g/events', payload, qos: 2, messageId: 5, dup: false, retain: false },
    { cmd: 'publish', topic: 'matches/f/events', payload, qos: 2, messageId: 5, dup: true, retain: false })
  await sleep(300)
  p.write({ cmd: 'pubrel', messageId: 5 })
  p.write({ cmd: 'publish', topic: 'matches/f/events', payload: '{"goal":2}', qos: 1, messageId: 6, dup: false, retain: false })
  await waitFor(() => got.some((m) => m.topic.endsWith('/f/events') && m.json.data?.goal === 2), 'the next message of f')
  const f = got.filter((m) => m.topic === '$replay/all/matches/f/events')
  const g = got.filter((m) => m.topic === '$replay/all/matches/g/events')
  for (const m of f) expect(m.json.reset, JSON.stringify(m.json)).toBeUndefined()
  expect(new Set(f.map((m) => m.json.epoch)).size).toBe(1)
  expect(f[0].json.epoch).not.toBe(g[0].json.epoch)
  expect(f.map((m) => m.json.seq)).toEqual(Array.from({ length: f.length }, (_, k) => k + 1))
})
