// Tests whether bad input gets a clear refusal while the broker keeps serving everyone else:
// oversized packets (TCP and WebSocket), garbage bytes, a malformed packet, PUBLISH to the broker's $replay topics.
import net from 'node:net'
import { describe, it, expect } from 'vitest'
import WebSocket from 'ws'
import mqttPacket from 'mqtt-packet'
import { brokerForTest } from '../helpers/broker.js'
import { connect, collect, waitFor, rawMqtt } from '../helpers/mqtt.js'

const FEED = 'matches/x/events'

async function honestViewer (url: string): Promise<ReturnType<typeof collect>> {
  const v = await connect(url)
  const got = collect(v)
  await v.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
  return got
}

/** Opens a raw TCP socket, writes `bytes`, resolves with what came back when the broker closes it (or after ms). */
async function rawTcp (port: number, chunks: Buffer[], ms = 3000): Promise<{ closed: boolean, data: Buffer }> {
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    const data: Buffer[] = []
    const timer = setTimeout(() => { s.destroy(); resolve({ closed: false, data: Buffer.concat(data) }) }, ms)
    s.on('data', (d) => data.push(d))
    s.on('error', () => {})
    s.on('close', () => { clearTimeout(timer); resolve({ closed: true, data: Buffer.concat(data) }) })
    s.on('connect', () => { for (const c of chunks) s.write(c) })
  })
}

const connectPacket = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'raw', keepalive: 30 })

describe('bad input', () => {
  it('closes only the connection that sends an oversized packet (TCP and WebSocket)', async () => {
    const node = await brokerForTest({ maxPacketSize: 1024 })
    const got = await honestViewer(node.tcpUrl)
    const pub = await connect(node.tcpUrl)
    // TCP: announce a 2 KB PUBLISH; only the header is needed to refuse it.
    const big = mqttPacket.generate({ cmd: 'publish', topic: FEED, payload: Buffer.alloc(2000, 97), qos: 0, retain: false, dup: false })
    const tcp = await rawTcp(node.tcpPort, [connectPacket, big.subarray(0, 10)])
    expect(tcp.closed).toBe(true)
    // MQTT.js over WebSocket: the broker closes it; the publish never reaches viewers.
    const ws = await connect(node.wsUrl)
    const closed = new Promise((resolve) => ws.once('close', resolve))
    ws.publish(FEED, Buffer.alloc(5000, 98))
    await closed
    await pub.publishAsync(FEED, '{"ok":1}', { qos: 1 })
    await waitFor(() => got.length === 1, 'the honest message')
    expect(got.map((m) => m.json.data)).toEqual([{ ok: 1 }])
    expect(got[0].json.seq).toBe(1)
  })

  it('survives garbage bytes, a malformed CONNECT, and a raw WebSocket sending junk', async () => {
    const node = await brokerForTest()
    const got = await honestViewer(node.wsUrl)
    const junk = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n\u00ff\u00fe garbage')
    expect((await rawTcp(node.tcpPort, [junk])).closed).toBe(true)
    expect((await rawTcp(node.tcpPort, [Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01])])).closed).toBe(true) // 5-byte length
    expect((await rawTcp(node.tcpPort, [Buffer.from([0x10, 0x04, 0x00, 0x04, 0x4d, 0x51])])).closed).toBe(true) // truncated CONNECT body
    expect((await rawTcp(node.tcpPort, [connectPacket, Buffer.from([0x30, 0x02, 0x00, 0x09])])).closed).toBe(true) // topic length past end
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(node.wsUrl, 'mqtt')
      ws.on('open', () => ws.send(Buffer.from([0xf0, 0x00, 0x12, 0x34])))
      ws.on('close', () => resolve())
      ws.on('error', () => {})
    })
    const pub = await connect(node.tcpUrl)
    await pub.publishAsync(FEED, '"still here"', { qos: 1 })
    await waitFor(() => got.length === 1, 'the honest message')
    expect(got[0].json.data).toBe('still here')
  })

  it('refuses a PUBLISH to a $replay topic by closing that client, without delivering it', async () => {
    const node = await brokerForTest()
    const spy = await connect(node.tcpUrl)
    const got = collect(spy)
    await spy.subscribeAsync('$replay/all/matches/x/events')
    const bad = await connect(node.tcpUrl)
    const closed = new Promise((resolve) => bad.once('close', resolve))
    bad.publish('$replay/all/matches/x/events', '{"seq":99}', { qos: 1 })
    await closed
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(got).toEqual([])
  })

  it('refuses a will on a $replay topic (CONNACK 5) and a persistent session without client id (CONNACK 2)', async () => {
    const node = await brokerForTest()
    const will = await connect(node.tcpUrl, { will: { topic: '$replay/all/matches/x/events', payload: Buffer.from('{"seq":9}'), qos: 1, retain: false } })
      .catch((err: Error & { code?: number }) => err)
    expect(will).toBeInstanceOf(Error)
    expect((will as { code?: number }).code).toBe(5)
    // MQTT.js and mqtt-packet will not make this CONNECT, so it is written by hand (MQTT 3.1.1 section 3.1):
    // protocol name MQTT, level 4, flags 0 (clean session off), keep alive 30, client id of length 0.
    const noId = Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x00, 0x00, 0x1e, 0x00, 0x00])
    const answer = await rawTcp(node.tcpPort, [noId])
    expect([...answer.data]).toEqual([0x20, 0x02, 0x00, 0x02])
    expect(answer.closed).toBe(true)
    const fine = await connect(node.tcpUrl, { will: { topic: 'matches/x/state', payload: Buffer.from('{}'), qos: 0, retain: false } })
    expect(fine.connected).toBe(true)
  })

  it('closes a client that publishes to a topic name that is not well-formed UTF-8, without delivering it [MQTT-1.5.3-1]', async () => {
    const node = await brokerForTest()
    const viewer = await connect(node.tcpUrl)
    const got = collect(viewer)
    await viewer.subscribeAsync('#')
    const { socket, packets } = await rawMqtt(node.tcpPort)
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'bad-utf8', keepalive: 60 }))
    await waitFor(() => packets.some((p) => p.cmd === 'connack'), 'CONNACK')
    const topic = Buffer.from([0x6d, 0x2f, 0xc3, 0x28]) // "m/" then C3 28: a lead byte without its continuation
    const body = Buffer.concat([Buffer.from([0, topic.length]), topic, Buffer.from('x')])
    socket.write(Buffer.concat([Buffer.from([0x30, body.length]), body]))
    await waitFor(() => socket.destroyed || socket.readableEnded, 'the connection closed')
    await viewer.publishAsync('m/ok', 'fine')
    await waitFor(() => got.length === 1, 'the next message')
    expect(got.map((m) => m.topic)).toEqual(['m/ok']) // nothing on "m/\uFFFD("
  })

  it('answers /healthz, 426 Upgrade Required at the WebSocket path without an upgrade, and 404 elsewhere', async () => {
    const node = await brokerForTest({ wsPath: '/live' })
    const res = await fetch(`http://127.0.0.1:${node.wsPort}/healthz`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ status: 'ok', clients: 0 })
    for (const method of ['GET', 'HEAD', 'POST']) {
      const plain = await fetch(`http://127.0.0.1:${node.wsPort}/live?x=1`, { method })
      expect(plain.status).toBe(426)
      expect(plain.headers.get('upgrade')).toBe('websocket')
      if (method === 'GET') expect(((await plain.json()) as { error: string }).error).toContain('/live takes MQTT over WebSocket only')
    }
    const other = await fetch(`http://127.0.0.1:${node.wsPort}/nope`)
    expect(other.status).toBe(404)
    expect(((await other.json()) as { error: string }).error).toContain('MQTT over WebSocket is at /live')
    // The same path still takes MQTT over WebSocket.
    const viewer = await connect(`ws://127.0.0.1:${node.wsPort}/live`)
    expect(viewer.connected).toBe(true)
  })

  it('reads `//` and `//[::1` as paths (404) and answers a target it cannot read with 400, on the WebSocket port, its upgrade and --metrics-port, and keeps serving', async () => {
    const node = await brokerForTest({ metricsPort: 0 })
    const metricsPort = node.ports.metrics
    /** Sends `head` as is (fetch would normalise the target) and resolves with the status line. */
    const raw = async (port: number, head: string): Promise<string> => await new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(head))
      let got = ''
      socket.on('data', (d) => { got += d.toString() })
      socket.on('close', () => resolve(got.split('\r\n')[0]))
      socket.on('error', reject)
    })
    // These closed the process before (an uncaught "Invalid URL").
    for (const target of ['//', '//[::1', '/\\x', 'http://[bad/']) {
      const expected = target.startsWith('http:') ? /^HTTP\/1\.1 400/ : /^HTTP\/1\.1 404/
      expect(await raw(node.wsPort, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).toMatch(expected)
      expect(await raw(metricsPort, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)).toMatch(expected)
      expect(await raw(node.wsPort, `GET ${target} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`)).toMatch(/^HTTP\/1\.1 404/)
    }
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(200)
    const viewer = await connect(node.wsUrl)
    expect(viewer.connected).toBe(true)
  })

  it('drops at shutdown a WebSocket and a TCP connection that never sent CONNECT, and one that did', async () => {
    const node = await brokerForTest()
    const silent = new WebSocket(node.wsUrl, 'mqtt')
    await new Promise((resolve) => silent.once('open', resolve))
    const { socket: silentTcp } = await rawMqtt(node.tcpPort)
    const viewer = await connect(node.wsUrl)
    const closed = new Promise((resolve) => silent.once('close', resolve))
    const tcpClosed = new Promise((resolve) => silentTcp.once('close', resolve))
    const t0 = Date.now()
    await node.close()
    await closed
    await tcpClosed
    expect(Date.now() - t0).toBeLessThan(5000) // not left to the CONNECT timeout (10 s)
    expect(silent.readyState).toBe(WebSocket.CLOSED)
    await waitFor(() => !viewer.connected, 'the viewer disconnected')
    viewer.end(true)
  })
})
