/**
 * The Publisher with several broker URLs, against plain aedes listeners that can be taken down and real refusing
 * servers: the first connect goes through the list once (a dead URL skipped, a refused login fatal); after that, a
 * lost connection moves it to the next URL, a refusal (CONNACK 3, or HTTP 503 + Retry-After to a WebSocket upgrade)
 * makes it wait at least refusedMinMs or Retry-After, and the unacknowledged publishes settle after the reconnect,
 * nothing lost. (Two nodes of a real cluster: test/client/cluster-failover.test.ts.)
 */
import { describe, expect, it } from 'vitest'
import { Publisher, ServerUnavailableError, type ReconnectInfo } from '../../publisher/src/index.js'
import { closedPort, closer as acceptCloser, connackRefuser, upgradeRefuser } from '../client/refusers.js'
import { SAMPLE, secureConfig } from '../helpers/auth.js'
import { brokerForTest } from '../helpers/broker.js'
import { collect, connect } from '../helpers/mqtt.js'
import { connectPublisher, settledWithin, startBroker, subscriber, waitFor } from './aedes.js'

const keepOrder = (): number => 0.999 // the URLs are tried in the order given

describe('Publisher with several broker URLs', () => {
  it('first connect: skips a dead URL and publishes through the live one', async () => {
    const { listeners: [l] } = await startBroker()
    const dead = `mqtt://127.0.0.1:${await closedPort()}`
    const sub = await subscriber(l.url)
    const pub = await connectPublisher([dead, l.url], { random: keepOrder })
    expect(pub.urls).toEqual([dead, l.url])
    expect(pub.url).toBe(l.url)
    await pub.publishEvent('matches/m/events', { id: 'e1' })
    await waitFor(() => sub.got.length === 1, 'the event')
  })

  it('first connect: rejects with every URL\'s error when none accepts, at once on a refused login', async () => {
    const [a, b] = [`mqtt://127.0.0.1:${await closedPort()}`, `ws://127.0.0.1:${await closedPort()}/mqtt`]
    const err = await Publisher.connect([a, b], { random: keepOrder }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AggregateError)
    expect((err as AggregateError).errors).toHaveLength(2)
    expect((err as Error).message).toMatch(new RegExp(`^no broker accepted the connection: ${a}: .*ECONNREFUSED.*; ${b}: .*ECONNREFUSED`))

    const busy = await connackRefuser(3)
    const notAuthorized = await connackRefuser(5)
    const other = await connackRefuser(3)
    const refused = await Publisher.connect([busy.url, notAuthorized.url, other.url], { random: keepOrder }).catch((e: unknown) => e)
    expect((refused as AggregateError).errors.map((e) => e.message)).toEqual([
      `server unavailable: ${busy.url} refused the connection (CONNACK 3)`, 'Connection refused: Not authorized'
    ])
    expect(other.arrivals).toEqual([]) // another node would refuse the same login: not tried
    await expect(Publisher.connect('mqtt://u:SeCrEt@127.0.0.1:1', {})).rejects.toThrow(/ECONNREFUSED/)
    await expect(Publisher.connect(['mqtt://u:SeCrEt@h', 'http://u:SeCrEt@h'])).rejects.toThrow(/^unsupported protocol "http:" in "http:\/\/u:\*\*\*@h\/"/)
    await expect(Publisher.connect([])).rejects.toThrow(RangeError)
  })

  it('over TLS closed before the handshake (a refusal, moved past in the first pass), then a WebSocket to Tribune, with a URL\'s credentials', async () => {
    const node = await brokerForTest()
    const closer = await acceptCloser('mqtts')
    const errors: Error[] = []
    const pub = await connectPublisher([closer.url, node.wsUrl], { random: keepOrder, onError: (e) => errors.push(e) })
    expect(closer.arrivals).toHaveLength(1)
    expect(pub.url).toBe(node.wsUrl)
    await pub.publishEvent('matches/ws/events', { id: 'e1' })
    const viewer = await connect(node.tcpUrl)
    const got = collect(viewer)
    await viewer.subscribeAsync('$replay/all/matches/ws/events', { qos: 1 })
    await waitFor(() => got.length === 1, 'the event over ws')
    expect(got[0].json).toMatchObject({ seq: 1, data: { id: 'e1' } })

    const secure = await brokerForTest(secureConfig())
    const port = secure.ports[Object.keys(secure.ports).find((n) => n.startsWith('mqtt:')) ?? '']
    const { username, password } = SAMPLE.publisher
    const withLogin = await connectPublisher(`mqtt://${username}:${encodeURIComponent(password)}@127.0.0.1:${port}`)
    await withLogin.setState('matches/ws/state', { status: 'live' })
    await expect(Publisher.connect(`mqtt://${username}:wrong@127.0.0.1:${port}`)).rejects.toThrow('Connection refused: Bad username or password')
    expect(errors).toEqual([])
  })

  it('moves to the next URL when the connection is lost; unacknowledged publishes settle there', async () => {
    const { listeners: [a, b] } = await startBroker(2)
    const sub = await subscriber(b.url)
    const moves: ReconnectInfo[] = []
    const changes: boolean[] = []
    const pub = await connectPublisher([a.url, b.url], { random: keepOrder, onReconnecting: (i) => moves.push(i), onConnectionChange: (up) => changes.push(up) })
    await pub.publishEvent('matches/m/events', { id: 'e1' })
    await a.down()
    const inFlight = [pub.publishEvent('matches/m/events', { id: 'e2' }), pub.setState('matches/m/state', { id: 'm' })]
    await Promise.all(inFlight)
    expect(pub.url).toBe(b.url)
    expect(moves).toEqual([{ attempt: 1, delayMs: 100, url: b.url, lastUrl: a.url, refused: false }])
    expect(changes).toEqual([false, true])
    await waitFor(() => sub.got.length === 3, 'three messages')
    expect(sub.got.map((m) => m.json.id)).toEqual(['e1', 'e2', 'm'])
  })

  it.each([
    ['CONNACK 3', async () => ({ ...await connackRefuser(3), minMs: 600, retryAfterMs: undefined })],
    ['HTTP 503 + Retry-After: 1 to the WebSocket upgrade', async () => ({ ...await upgradeRefuser('1'), minMs: 1000, retryAfterMs: 1000 })]
  ])('after a refusal (%s), waits at least refusedMinMs / Retry-After before the next attempt; nothing lost', async (_, refuser) => {
    const { listeners: [l, other] } = await startBroker(2)
    const busy = await refuser()
    const sub = await subscriber(other.url)
    const moves: Array<ReconnectInfo & { at: number }> = []
    const errors: Error[] = []
    const pub = await connectPublisher([l.url, busy.url], {
      random: keepOrder, refusedMinMs: 600, onReconnecting: (i) => moves.push({ ...i, at: Date.now() }), onError: (e) => errors.push(e)
    })
    await pub.publishEvent('matches/m/events', { id: 'e1' })
    await l.down()
    const e2 = pub.publishEvent('matches/m/events', { id: 'e2' })
    await waitFor(() => busy.arrivals.length === 1, 'the refusal')
    await l.up()
    expect(await settledWithin(e2, busy.minMs - 200)).toBe(false) // still waiting out the refusal
    await e2
    const back = Date.now()
    expect(back - busy.arrivals[0]).toBeGreaterThanOrEqual(busy.minMs)
    expect(moves.map(({ attempt, url, lastUrl, refused, retryAfterMs }) => ({ attempt, url, lastUrl, refused, retryAfterMs }))).toEqual([
      { attempt: 1, url: busy.url, lastUrl: l.url, refused: false, retryAfterMs: undefined },
      { attempt: 2, url: l.url, lastUrl: busy.url, refused: true, retryAfterMs: busy.retryAfterMs }
    ])
    expect(moves[1].delayMs).toBeGreaterThanOrEqual(busy.minMs)
    expect(moves[1].delayMs).toBeLessThan(busy.minMs + 100) // plus random(0, reconnectPeriod)
    expect(errors.filter((e) => e instanceof ServerUnavailableError)).toHaveLength(1)
    await waitFor(() => sub.got.length === 2, 'both events')
    expect(sub.got.map((m) => m.json.id)).toEqual(['e1', 'e2'])
  })
})
