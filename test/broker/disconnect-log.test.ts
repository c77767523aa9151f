/**
 * The log of who left and who was refused (issue 14, item 7). Tests whether each disconnect is a line at info naming
 * why (a DISCONNECT, a lost connection, a keep alive timeout, a takeover, a kick, a revoked credential, a slow
 * consumer, a packet too large, a broken frame, an idle keep alive 0 client, a refused PUBLISH, an error, a drain, the
 * node stopping), whether every refusal (CONNECT, SUBSCRIBE 0x80, PUBLISH, the admission summary) carries the same
 * field names (clientId, identity, role, transport, listener, peer, reason, returnCode), and whether errors are
 * logged as `err` with their stack.
 */
import net from 'node:net'
import { createHash } from 'node:crypto'
import { Writable } from 'node:stream'
import { describe, it, expect } from 'vitest'
import { pino } from 'pino'
import mqttPacket from 'mqtt-packet'
import WebSocket from 'ws'
import { brokerForTest } from '../helpers/broker.js'
import { redisForTest } from '../helpers/redis.js'
import { connect, waitFor } from '../helpers/mqtt.js'
import { connectedClients } from '../../broker/src/aedes-internals.js'
import { closeClient, DISCONNECT_REASONS } from '../../broker/src/disconnect-reason.js'
import type { BrokerOptions } from '../../broker/src/config.js'

const KEY = 'tv-key-for-the-disconnect-log-test'
const auth = (revoked = false): NonNullable<BrokerOptions['auth']> => ({
  anonymous: { role: 'publisher' },
  apiKeys: [{ id: 'tv', sha256: createHash('sha256').update(KEY).digest('hex'), role: 'viewer', revoked }]
})
const gen = (p: object): Buffer => mqttPacket.generate(p as never)
const CONNECT = (clientId: string, keepalive = 60): Buffer => gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive })

/** A node with an auth section whose log lines are kept (parsed) in `lines`. */
async function loggedNode (options: Partial<BrokerOptions> = {}): Promise<{ node: Awaited<ReturnType<typeof brokerForTest>>, lines: any[], gone: (clientId: string) => any }> {
  const lines: any[] = []
  const sink = new Writable({ write (chunk, _e, cb) { lines.push(JSON.parse(chunk.toString())); cb() } })
  const node = await brokerForTest({ auth: auth(), ...options }, pino({ level: 'debug' }, sink))
  return { node, lines, gone: (clientId) => lines.find((l) => l.msg === 'client disconnected' && l.clientId === clientId) }
}

/** A raw TCP connection that sends what it is given. */
async function raw (port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.on('data', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  return socket
}

describe('disconnect lines', () => {
  it('say why the client or its connection ended it', async () => {
    const { node, gone } = await loggedNode({ idleTimeoutMs: 1000 })
    const expected: Record<string, string> = {}
    const bye = await connect(node.tcpUrl, { clientId: 'bye' })
    await bye.endAsync() // DISCONNECT
    expected.bye = 'client-disconnect'
    const lost = await connect(node.wsUrl, { clientId: 'lost' })
    lost.stream.destroy()
    expected.lost = 'connection-lost'
    const silent = await raw(node.tcpPort)
    silent.write(CONNECT('silent', 1)) // keep alive 1 s, then nothing: aedes times it out after 1.5 s
    expected.silent = 'keepalive-timeout'
    const idle = await raw(node.tcpPort)
    idle.write(CONNECT('idle', 0)) // keep alive 0, then nothing: --idle-timeout
    expected.idle = 'idle'
    const connected = async (id: string): Promise<void> => { await waitFor(() => connectedClients(node.aedes)[id] !== undefined, `${id} connected`) }
    const big = await raw(node.tcpPort)
    big.write(CONNECT('big'))
    await connected('big')
    big.write(Buffer.from([0x30, 0xff, 0xff, 0x7f])) // a PUBLISH announcing 2 MB (2,097,151 bytes after its 4-byte header), over the 256 KiB limit
    expected.big = 'packet-too-large'
    const broken = await raw(node.tcpPort)
    broken.write(CONNECT('broken'))
    await connected('broken')
    broken.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])) // a Remaining Length of 5 bytes
    expected.broken = 'protocol-error'
    const text = new WebSocket(node.wsUrl, 'mqtt')
    text.on('error', () => {})
    await new Promise((resolve) => text.once('open', resolve))
    text.send(CONNECT('texter'))
    await connected('texter')
    text.send('a text frame')
    expected.texter = 'protocol-error'
    const qos3 = await raw(node.tcpPort)
    qos3.write(CONNECT('qos3'))
    await connected('qos3')
    qos3.write(Buffer.from([0x36, 0x00])) // a PUBLISH with both QoS bits set: mqtt-packet's parser fails
    expected.qos3 = 'error'
    const sys = await connect(node.tcpUrl, { clientId: 'sys' })
    sys.publish('$SYS/forged', 'x', { qos: 1 })
    expected.sys = 'publish-refused'

    await waitFor(() => Object.keys(expected).every((id) => gone(id) !== undefined), 'a disconnect line for each client', 8000)
      .catch((err: Error) => { throw new Error(`${err.message}: none for ${Object.keys(expected).filter((id) => gone(id) === undefined).join(', ')}`) })
    expect(Object.fromEntries(Object.keys(expected).map((id) => [id, gone(id).reason]))).toEqual(expected)
    for (const id of Object.keys(expected)) {
      expect(gone(id)).toMatchObject({ level: 30, clientId: id, identity: 'anonymous', role: 'publisher', method: 'anonymous', transport: id === 'lost' || id === 'texter' ? 'ws' : 'mqtt' })
      expect(gone(id).peer).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(Object.keys(DISCONNECT_REASONS)).toContain(gone(id).reason)
    }
    expect(gone('big').detail).toBe('packet of 2097155 bytes exceeds the maximum packet size of 262144 bytes')
    expect(gone('sys').detail).toContain('$SYS topics belong to the broker')
    // An error keeps its stack: pino's err serializer.
    expect(gone('qos3').err).toMatchObject({ type: 'Error', message: expect.stringContaining('QoS') })
    expect(gone('qos3').err.stack).toContain('at ')
  })

  it('say why the node ended it: a takeover, a kick, a revoked credential, a slow consumer, a drain, the node stopping', async () => {
    const { node, gone } = await loggedNode({ maxQueuedBytes: 1024 })
    await connect(node.tcpUrl, { clientId: 'twin' })
    await connect(node.tcpUrl, { clientId: 'twin' }) // the first connection is taken over
    await waitFor(() => gone('twin') !== undefined, 'the first twin to go')
    expect(gone('twin')).toMatchObject({ reason: 'takeover', detail: 'by a new connection on this node' })

    await connect(node.tcpUrl, { clientId: 'rude' })
    closeClient(connectedClients(node.aedes).rude, 'kicked', 'by an operator')
    await waitFor(() => gone('rude') !== undefined, 'the kicked client to go')
    expect(gone('rude')).toMatchObject({ reason: 'kicked', detail: 'by an operator' })

    await connect(node.tcpUrl, { clientId: 'kiosk', username: 'apikey', password: KEY })
    await node.reload({ host: '127.0.0.1', port: 0, wsPort: 0, dataDir: ':memory:', auth: auth(true) })
    await waitFor(() => gone('kiosk') !== undefined, 'the revoked key to go')
    expect(gone('kiosk')).toMatchObject({ reason: 'revoked', identity: 'apikey:tv', role: 'viewer' })
    await node.reload({ host: '127.0.0.1', port: 0, wsPort: 0, dataDir: ':memory:', auth: auth() })

    const slow = await raw(node.tcpPort)
    slow.write(CONNECT('slow'))
    slow.write(gen({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'matches/+/state', qos: 0 }] }))
    await waitFor(() => connectedClients(node.aedes).slow !== undefined, 'the slow subscriber')
    await new Promise((resolve) => setTimeout(resolve, 100))
    slow.pause() // reads nothing more: the kernel's buffers fill, then the broker's queue for it
    const pub = await connect(node.tcpUrl, { clientId: 'pub' })
    const body = 'x'.repeat(4000)
    for (let i = 0; i < 50 && gone('slow') === undefined; i++) {
      await Promise.all(Array.from({ length: 100 }, async () => await pub.publishAsync('matches/slow/state', body, { qos: 1 })))
    }
    await waitFor(() => gone('slow') !== undefined, 'the slow consumer to go')
    expect(gone('slow').reason).toBe('slow-consumer')
    expect(gone('slow').detail).toMatch(/^slow consumer: \d+ bytes waiting to be sent/)

    await connect(node.tcpUrl, { clientId: 'drained' })
    await node.drain(0)
    await waitFor(() => gone('drained') !== undefined, 'the drained client to go')
    expect(gone('drained').reason).toBe('drain')
    node.undrain()
    await connect(node.wsUrl, { clientId: 'last' })
    await node.close()
    expect(gone('last').reason).toBe('shutdown')
    expect(gone('pub').reason).toBe('drain')
  })

  it('say which node took a persistent session over, in a cluster', async () => {
    const redis = await redisForTest()
    const a = await loggedNode({ redis: redis.url, nodeId: 'log-a' })
    const b = await loggedNode({ redis: redis.url, nodeId: 'log-b' })
    const tv = { clientId: 'tv-box', clean: false, username: 'apikey', password: KEY }
    await connect(a.node.tcpUrl, tv)
    await connect(b.node.wsUrl, tv)
    await waitFor(() => a.gone('tv-box') !== undefined, 'the session to leave node log-a')
    expect(a.gone('tv-box')).toMatchObject({ reason: 'takeover', detail: 'by a new connection on node log-b', identity: 'apikey:tv', clean: false })
  })
})

describe('refusal lines', () => {
  it('carry clientId, identity, role, transport, listener, peer, reason and returnCode', async () => {
    const { node, lines } = await loggedNode()
    const refusals = (msg: string): any[] => lines.filter((l) => l.msg === msg)

    // CONNECT refused by a hook (a wrong API key), and by aedes itself (MQTT 5: CONNACK 1).
    const wrong = await connect(node.tcpUrl, { clientId: 'wrong-key', username: 'apikey', password: 'nope' }).catch((err: { code?: number }) => err)
    expect((wrong as { code?: number }).code).toBe(4)
    const v5 = await raw(node.tcpPort)
    v5.write(gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: 'five', keepalive: 60 }))
    await waitFor(() => refusals('CONNECT refused').length === 2, 'two CONNECT refusals')
    const [byHook, byAedes] = refusals('CONNECT refused')
    expect(byHook).toMatchObject({ level: 40, clientId: 'wrong-key', transport: 'mqtt', listener: 'mqtt:0', reason: 'unknown API key', returnCode: 4, username: 'apikey' })
    expect(byHook.peer).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(byHook.identity).toBeUndefined()
    expect(byAedes).toMatchObject({ level: 40, transport: 'mqtt', listener: 'mqtt:0', reason: 'unacceptable protocol version', returnCode: 1 })
    expect(byAedes.peer).toMatch(/^127\.0\.0\.1:\d+$/)

    // SUBSCRIBE 0x80: the filter refused, the connection kept.
    const viewer = await connect(node.wsUrl, { clientId: 'tv-1', username: 'apikey', password: KEY })
    const granted = await viewer.subscribeAsync('matches/*/state').catch((err: { granted?: unknown }) => err)
    expect(JSON.stringify(granted)).toContain('128')
    await waitFor(() => refusals('SUBSCRIBE refused (0x80)').length === 1, 'the SUBSCRIBE refusal')
    const sub = refusals('SUBSCRIBE refused (0x80)')[0]
    expect(sub).toMatchObject({ clientId: 'tv-1', identity: 'apikey:tv', role: 'viewer', transport: 'ws', listener: 'ws:0', reason: 'topic filters may not contain * ? [ ] or \\', returnCode: 128, topic: 'matches/*/state' })
    expect(sub.peer).toMatch(/^127\.0\.0\.1:\d+$/)

    // PUBLISH refused: a viewer may not publish; no return code (the connection is closed).
    viewer.publish('matches/x/events', '{}', { qos: 1 })
    await waitFor(() => refusals('PUBLISH refused; connection closed').length === 1, 'the PUBLISH refusal')
    const pub = refusals('PUBLISH refused; connection closed')[0]
    expect(pub).toMatchObject({ level: 40, clientId: 'tv-1', identity: 'apikey:tv', role: 'viewer', transport: 'ws', listener: 'ws:0', topic: 'matches/x/events' })
    expect(pub.reason).toBe('PUBLISH to matches/x/events not authorized for apikey:tv by the topic rules')
    expect(pub.returnCode).toBeUndefined()

    // Admission: one summary line per listener and reason (written at the latest when the node closes).
    void node.drain(0)
    const mqttRefused = await connect(node.tcpUrl).catch((err: { code?: number }) => err)
    expect((mqttRefused as { code?: number }).code).toBe(3)
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(node.wsUrl, 'mqtt')
      ws.on('error', () => {})
      ws.on('unexpected-response', (_req, res) => { res.resume(); ws.terminate(); resolve() })
    })
    await node.close()
    const summaries = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('admission: refused'))
    expect(summaries.map(({ reason, transport, listener, returnCode, status, refused }) => ({ reason, transport, listener, returnCode, status, refused }))).toEqual([
      { reason: 'draining', transport: 'mqtt', listener: 'mqtt:0', returnCode: 3, status: undefined, refused: 1 },
      { reason: 'draining', transport: 'ws', listener: 'ws:0', returnCode: undefined, status: 503, refused: 1 }
    ])
  })
})
