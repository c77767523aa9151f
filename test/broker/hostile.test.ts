// Tests whether hostile or careless clients found by an attack run are handled while honest viewers keep receiving:
// a subscriber that stops reading, text WebSocket frames, UNSUBSCRIBE+SUBSCRIBE races, session takeover,
// QoS 2 retransmissions, too many $replay subscriptions, oversized envelopes, U+0000 in topics.
import net from 'node:net'
import { describe, it, expect } from 'vitest'
import WebSocket from 'ws'
import mqttPacket from 'mqtt-packet'
import { brokerForTest } from '../helpers/broker.js'
import { connect, collect, waitFor, rawMqtt } from '../helpers/mqtt.js'

const FEED = 'matches/h/events'
const gen = (p: object): Buffer => mqttPacket.generate(p as never)
const CONNECT = (clientId: string): Buffer => gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 60 })

/** A raw TCP MQTT client that writes packets and records whether the broker closed it. */
async function raw (port: number): Promise<{ socket: net.Socket, closed: () => boolean, write: (b: Buffer) => void }> {
  const socket = net.connect(port, '127.0.0.1')
  let closed = false
  socket.on('close', () => { closed = true })
  socket.on('error', () => {})
  socket.on('data', () => {}) // flowing, so that 'close' is seen
  await new Promise((resolve) => socket.once('connect', resolve))
  return { socket, closed: () => closed, write: (b) => socket.write(b) }
}

describe('hostile clients', () => {
  it('disconnects a subscriber that stops reading, and nobody else waits for it', async () => {
    const node = await brokerForTest({ maxQueuedBytes: 256 * 1024 })
    const slow = await raw(node.tcpPort)
    slow.write(CONNECT('slow'))
    slow.write(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: FEED, qos: 0 }, { topic: `$replay/all/${FEED}`, qos: 0 }] }))
    await new Promise((resolve) => setTimeout(resolve, 100))
    slow.socket.pause() // reads nothing more: the kernel buffers fill, then the broker's queue for it
    const honest = await connect(node.wsUrl)
    const got = collect(honest)
    await honest.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
    const pub = await connect(node.tcpUrl)
    const N = 2500
    const body = 'x'.repeat(4000)
    await Promise.all(Array.from({ length: N }, async (_, i) => await pub.publishAsync(FEED, JSON.stringify({ i, body }), { qos: 1 })))
    await waitFor(() => got.length === N, `${N} messages to the honest viewer`, 20_000)
    expect(got.map((m) => m.json.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1))
    const clients = (node.aedes as unknown as { clients: Record<string, unknown> }).clients
    await waitFor(() => clients.slow === undefined, 'the broker to drop the slow subscriber')
    expect(node.stats().clients.slowConsumers).toBe(1) // and counted (tribune_slow_consumers_disconnected_total)
  })

  it('lets a viewer that reads take a history bigger than the queue limit in one go, over TCP and WebSocket', async () => {
    // 12 MB of history against the 4 MiB limit: it goes out in one turn and the kernel takes only part of it at once.
    const node = await brokerForTest({ feedHistory: 3000 })
    const pub = await connect(node.tcpUrl)
    const N = 3000
    const body = 'h'.repeat(4000)
    for (let i = 0; i < N; i += 50) {
      await Promise.all(Array.from({ length: 50 }, async (_, k) => await pub.publishAsync(FEED, JSON.stringify({ i: i + k, body }), { qos: 1 })))
    }
    let last = N // the feed keeps the last 3,000 (--feed-history)
    for (const url of [node.tcpUrl, node.wsUrl]) {
      const v = await connect(url)
      const got = collect(v)
      await v.subscribeAsync(`$replay/all/${FEED}`, { qos: 0 })
      await waitFor(() => got.length === N, `${N} messages of history over ${url}`, 20_000)
      await pub.publishAsync(FEED, JSON.stringify({ i: last, body }), { qos: 1 })
      last++
      await waitFor(() => got.length === N + 1, `the live message over ${url}`)
      expect(got.map((m) => m.json.seq)).toEqual(Array.from({ length: N + 1 }, (_, i) => last - N + i))
      expect(v.connected).toBe(true)
    }
  })

  it('takes several packets in one WebSocket frame, together bigger than the packet size limit (MQTT 3.1.1 section 6.0)', async () => {
    const node = await brokerForTest({ maxPacketSize: 16 * 1024 })
    const v = await connect(node.tcpUrl)
    const got = collect(v)
    await v.subscribeAsync('frames/#')
    const packets = Array.from({ length: 6 }, (_, i) => gen({ cmd: 'publish', topic: `frames/${i}`, payload: Buffer.alloc(10_000, 65), qos: 0, retain: false, dup: false }))
    const ws = new WebSocket(node.wsUrl, 'mqtt')
    ws.on('error', () => {})
    await new Promise((resolve) => ws.once('open', resolve))
    ws.send(Buffer.concat([CONNECT('framer'), ...packets])) // 60 KB in one frame, each packet 10 KB, the limit 16 KiB
    await waitFor(() => got.length === 6, '6 packets from one frame')
    expect(got.map((m) => m.topic)).toEqual(Array.from({ length: 6 }, (_, i) => `frames/${i}`))
    ws.close()
  })

  it('closes a WebSocket that sends MQTT in a text frame [MQTT-6.0.0-1]', async () => {
    const node = await brokerForTest()
    const code = await new Promise<number>((resolve) => {
      const ws = new WebSocket(node.wsUrl, 'mqtt')
      ws.on('open', () => ws.send(CONNECT('texty').toString('latin1')))
      ws.on('message', () => resolve(-1))
      ws.on('close', (c) => resolve(c))
      ws.on('error', () => {})
    })
    expect(code).toBe(1003) // unsupported data (RFC 6455 section 7.4.1), not a dropped connection
  })

  it('keeps a $replay subscription that an UNSUBSCRIBE and a SUBSCRIBE in the same write race over', async () => {
    const node = await brokerForTest()
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync(FEED, '"one"', { qos: 1 })
    const v = await connect(node.tcpUrl)
    const got = collect(v)
    await v.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
    await waitFor(() => got.length === 1, 'history')
    for (let round = 0; round < 5; round++) {
      v.unsubscribe(`$replay/all/${FEED}`)
      await v.subscribeAsync(`$replay/last-0/${FEED}`, { qos: 1 })
      v.unsubscribe(`$replay/last-0/${FEED}`)
      v.subscribe(`$replay/last-0/${FEED}`, { qos: 1 })
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
    const before = got.length
    await pub.publishAsync(FEED, '"two"', { qos: 1 })
    await waitFor(() => got.length === before + 1, 'the live message after the races')
    expect(got[got.length - 1].json).toMatchObject({ seq: 2, data: 'two' })
  })

  it('handles SUBSCRIBE and UNSUBSCRIBE of a filter in the order sent, in one write, with or after the CONNECT [MQTT-4.6.0-6]', async () => {
    const node = await brokerForTest()
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync(FEED, '"one"', { qos: 1 })
    let n = 0
    for (const clean of [true, false]) {
      for (const withConnect of [true, false]) {
        for (const filter of ['news/x', `$replay/all/${FEED}`]) {
          for (const steps of ['SU', 'SUS', 'SUSU', 'SUSUS']) {
            const what = `${steps} of ${filter}, clean ${String(clean)}, ${withConnect ? 'with' : 'after'} the CONNECT`
            const { socket, packets } = await rawMqtt(node.tcpPort)
            const hello = gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId: `order-${n++}`, keepalive: 60 })
            const ops = [...steps].map((op, k) => op === 'S'
              ? gen({ cmd: 'subscribe', messageId: k + 1, subscriptions: [{ topic: filter, qos: 1 }] })
              : gen({ cmd: 'unsubscribe', messageId: k + 1, unsubscriptions: [filter] }))
            if (withConnect) socket.write(Buffer.concat([hello, ...ops]))
            else {
              socket.write(hello)
              await waitFor(() => packets.some((p) => p.cmd === 'connack'), `CONNACK (${what})`)
              socket.write(Buffer.concat(ops))
            }
            await waitFor(() => packets.filter((p) => p.cmd === 'suback' || p.cmd === 'unsuback').length === steps.length, `the acks (${what})`)
            const acks = packets.filter((p) => p.cmd === 'suback' || p.cmd === 'unsuback').map((p) => `${p.cmd}#${String((p as { messageId?: number }).messageId)}`)
            expect(acks, what).toEqual([...steps].map((op, k) => `${op === 'S' ? 'suback' : 'unsuback'}#${k + 1}`))
            await new Promise((resolve) => setTimeout(resolve, 50)) // the history of a $replay left subscribed, if any
            const before = packets.length
            await pub.publishAsync(filter.startsWith('$replay') ? FEED : filter, '"after"', { qos: 1 })
            if (steps.endsWith('S')) await waitFor(() => packets.length > before, `the live message (${what})`)
            else await new Promise((resolve) => setTimeout(resolve, 150))
            expect(packets.slice(before).map((p) => p.cmd), what).toEqual(steps.endsWith('S') ? ['publish'] : [])
            socket.destroy()
          }
        }
      }
    }
  }, 60_000)

  it('sends each QoS 1 feed message of a publisher that leaves right after it once, live, to plain and $replay subscribers', async () => {
    const node = await brokerForTest()
    const viewer = await connect(node.tcpUrl)
    const got = collect(viewer)
    await viewer.subscribeAsync({ [FEED]: { qos: 1 }, [`$replay/all/${FEED}`]: { qos: 1 } })
    const rounds = 40
    for (let i = 0; i < rounds; i++) {
      const publish = Buffer.concat([CONNECT(`leaver-${i}`), gen({ cmd: 'publish', topic: FEED, payload: `{"i":${i}}`, qos: 1, messageId: 1, dup: false, retain: false })])
      if (i % 2 === 0) { // a WebSocket closed with a close frame at once
        const ws = new WebSocket(node.wsUrl, 'mqtt')
        ws.on('error', () => {})
        await new Promise((resolve) => ws.once('open', resolve))
        ws.send(publish)
        ws.close()
      } else { // TCP, ended (FIN) in the same write
        const { socket } = await rawMqtt(node.tcpPort)
        socket.end(publish)
      }
    }
    await waitFor(() => got.filter((m) => m.topic === FEED).length >= rounds && got.filter((m) => m.topic !== FEED).length >= rounds, `${rounds} messages on each subscription`)
    await new Promise((resolve) => setTimeout(resolve, 300)) // a second copy, if any, has arrived by now
    for (const plain of [true, false]) {
      const seqs = got.filter((m) => (m.topic === FEED) === plain).map((m) => m.json.seq as number)
      expect([...seqs].sort((x, y) => x - y), plain ? 'plain' : '$replay').toEqual(Array.from({ length: rounds }, (_, k) => k + 1))
    }
  })

  it('resumes a persistent session taken over by a new connection without replaying the history again', async () => {
    const node = await brokerForTest()
    const pub = await connect(node.tcpUrl)
    for (let i = 1; i <= 3; i++) await pub.publishAsync(FEED, String(i), { qos: 1 })
    const opts = { clientId: 'tv-takeover', clean: false }
    const first = await connect(node.tcpUrl, opts)
    const got1 = collect(first)
    await first.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
    await waitFor(() => got1.length === 3, 'history on the first connection')
    await new Promise((resolve) => setTimeout(resolve, 100)) // the PUBACKs reach the broker; unacknowledged ones would be resent
    const second = await connect(node.tcpUrl, opts) // the half-open reconnect: the old connection is still up
    const got2 = collect(second)
    await pub.publishAsync(FEED, '4', { qos: 1 })
    await waitFor(() => got2.length >= 1, 'live on the second connection')
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(got2.map((m) => m.json.seq)).toEqual([4])
  })

  it('gives a QoS 2 retransmission (DUP, same packet id) no new seq', async () => {
    const node = await brokerForTest()
    const v = await connect(node.tcpUrl)
    const got = collect(v)
    await v.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
    const c = await raw(node.tcpPort)
    c.write(CONNECT('q2'))
    const publish = { cmd: 'publish', topic: FEED, payload: Buffer.from('{"goal":1}'), qos: 2, messageId: 7, retain: false }
    // The first copy and a retransmission in the same write (one read), then another one later.
    c.write(Buffer.concat([gen({ ...publish, dup: false }), gen({ ...publish, dup: true })]))
    await new Promise((resolve) => setTimeout(resolve, 50))
    c.write(gen({ ...publish, dup: true }))
    c.write(gen({ ...publish, dup: true }))
    await new Promise((resolve) => setTimeout(resolve, 50))
    c.write(gen({ cmd: 'pubrel', messageId: 7 }))
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync(FEED, '{"goal":2}', { qos: 1 })
    await waitFor(() => got.length >= 2, 'both goals')
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(got.map((m) => [m.json.seq, m.json.data.goal])).toEqual([[1, 1], [2, 2]])
  })

  it('refuses $replay subscriptions past the per-client limit with 0x80', async () => {
    const node = await brokerForTest({ maxReplaysPerClient: 3 })
    const v = await connect(node.tcpUrl)
    for (const n of [1, 2, 3]) await v.subscribeAsync(`$replay/all/matches/m${n}/events`)
    const fourth = await v.subscribeAsync('$replay/all/matches/m4/events').catch((err: Error) => err)
    expect(JSON.stringify(fourth)).toContain('128')
    await v.unsubscribeAsync('$replay/all/matches/m1/events')
    expect(await v.subscribeAsync('$replay/all/matches/m4/events')).toEqual([{ topic: '$replay/all/matches/m4/events', qos: 0 }])
  })

  it('keeps JSON data as published, and refuses an envelope over the maximum packet size', async () => {
    const node = await brokerForTest({ maxPacketSize: 2048 })
    const v = await connect(node.tcpUrl)
    const texts: string[] = []
    v.on('message', (_t, payload) => texts.push(payload.toString()))
    await v.subscribeAsync(`$replay/all/${FEED}`)
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync(FEED, '{"big": 12345678901234567890, "x": 1.10}', { qos: 1 })
    await waitFor(() => texts.length === 1, 'the message')
    expect(texts[0]).toMatch(/,"data":\{"big": 12345678901234567890, "x": 1.10\}\}$/)
    // 1,500 control characters become 9,000 bytes of JSON escapes: refused, not acknowledged, never delivered.
    const closed = new Promise((resolve) => pub.once('close', resolve))
    pub.publish(FEED, Buffer.alloc(1500, 1), { qos: 1 })
    await closed
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(texts).toHaveLength(1)
  })

  it('refuses U+0000 in a PUBLISH topic and in a SUBSCRIBE filter', async () => {
    const node = await brokerForTest()
    const v = await connect(node.tcpUrl)
    const granted = await v.subscribeAsync('matches/a\u0000b/events').catch((err: Error) => err)
    expect(JSON.stringify(granted)).toContain('128')
    const c = await raw(node.tcpPort)
    c.write(CONNECT('nul'))
    c.write(gen({ cmd: 'publish', topic: 'matches/x\u0000evil/events', payload: Buffer.from('1'), qos: 1, messageId: 1, retain: false }))
    await waitFor(() => c.closed(), 'the connection closed')
  })
})

describe('per-client limits', () => {
  it('refuses topics too long or too deep, too many subscriptions, and a keep alive too long', async () => {
    const node = await brokerForTest({ maxTopicLength: 64, maxTopicLevels: 6, maxSubscriptionsPerClient: 3, maxKeepalive: 120 })
    const v = await connect(node.tcpUrl)
    const refused = async (filter: string): Promise<boolean> => JSON.stringify(await v.subscribeAsync(filter).catch((e: Error) => e)).includes('128')
    expect(await refused(`matches/${'x'.repeat(80)}/events`)).toBe(true)
    expect(await refused('a/b/c/d/e/f/g')).toBe(true)
    expect(await refused('$replay/all/matches/a/events/x/y')).toBe(true)
    for (const t of ['a/1', 'a/2', 'a/3']) expect(await refused(t)).toBe(false)
    expect(await refused('a/4')).toBe(true)
    expect(await refused('a/1')).toBe(false) // a subscription it already holds may be renewed
    expect(v.connected).toBe(true)
    const deep = await connect(node.tcpUrl)
    const closed = new Promise((resolve) => deep.once('close', resolve))
    deep.publish('a/b/c/d/e/f/g/h', 'x', { qos: 1 })
    await closed
    const err = await connect(node.tcpUrl, { keepalive: 121 }).catch((e: { code?: number }) => e)
    expect((err as { code?: number }).code).toBe(2)
    expect((await connect(node.tcpUrl, { keepalive: 120 })).connected).toBe(true)
    expect((await connect(node.tcpUrl, { keepalive: 0 })).connected).toBe(true) // no keep alive (test/broker/keepalive.test.ts)
  })
})
