/**
 * The viewer with several broker URLs, against real brokers and real refusing servers: it connects to the URL that
 * works when another is dead, refused (CONNACK 3, HTTP 503 + Retry-After) or closes before the TLS handshake; it waits
 * at least the refusal's Retry-After (or refusedMinMs) plus jitter before its next attempt, counting attempts on until a
 * real CONNACK 0; refused viewers come back spread over time. Every feed ends exact (seq 1..n once, in order, the same
 * envelopes as the broker's own $replay/all).
 */
import { describe, expect, it } from 'vitest'
import { Viewer, ServerUnavailableError, type FeedEnvelope, type ReconnectInfo, type ViewerOptions } from '../../client/src/index.js'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { closedPort, closer, connackRefuser, upgradeRefuser } from './refusers.js'

const FEED = 'matches/failover/events'

/** A random source that keeps the URL order as given (Fisher-Yates with values near 1 swaps nothing). */
const keepOrder = (): number => 0.999

interface Watched {
  viewer: Viewer
  got: FeedEnvelope[]
  reconnects: Array<ReconnectInfo & { at: number }>
  errors: Error[]
  connects: Array<{ url: string, at: number }>
}

/** A viewer on `urls` watching FEED from all, recording what happens; closed after the test. */
function watch (urls: string[], options: ViewerOptions = {}): Watched {
  const viewer = Viewer.connect(urls, { random: keepOrder, reconnect: { baseMs: 50, capMs: 200 }, connectTimeoutMs: 5000, ...options })
  onCleanup(async () => { await viewer.close() })
  const w: Watched = { viewer, got: [], reconnects: [], errors: [], connects: [] }
  viewer.on('reconnecting', (info) => w.reconnects.push({ ...info, at: Date.now() }))
  viewer.on('error', (err) => w.errors.push(err))
  viewer.on('connect', (url) => w.connects.push({ url, at: Date.now() }))
  viewer.watchFeed(FEED, { from: 'all' }, (env) => w.got.push(env))
  return w
}

/** Publishes `ids` to FEED on `url` (QoS 1, each acknowledged). */
async function publish (url: string, ids: string[]): Promise<void> {
  const pub = await connect(url)
  for (const id of ids) await pub.publishAsync(FEED, JSON.stringify({ id }), { qos: 1 })
  await pub.endAsync()
}

/** The feed as the broker at `url` holds it: every envelope of `$replay/all`. */
async function feedOf (url: string, n: number): Promise<FeedEnvelope[]> {
  const c = await connect(url)
  const got = collect(c)
  await c.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
  await waitFor(() => got.length >= n, `${n} envelopes from ${url}`)
  return got.map((m) => m.json)
}

const ids = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, k) => `e${from + k}`)

describe('a viewer with several broker URLs', () => {
  it.each(['tcp', 'ws'] as const)('given [a closed port, a live broker] (%s), connects to the live one and gets its feed exact', async (kind) => {
    const node = await brokerForTest()
    const live = kind === 'tcp' ? node.tcpUrl : node.wsUrl
    const dead = kind === 'tcp' ? `mqtt://127.0.0.1:${await closedPort()}` : `ws://127.0.0.1:${await closedPort()}/mqtt`
    await publish(node.tcpUrl, ids(1, 5))
    const w = watch([dead, live])
    expect(w.viewer.urls).toEqual([dead, live])
    await waitFor(() => w.got.length === 5, 'history')
    await publish(node.tcpUrl, ids(6, 10))
    await waitFor(() => w.got.length === 10, 'live')
    expect(w.got).toEqual(await feedOf(live, 10))
    expect(w.got.map((e) => e.seq)).toEqual(ids(1, 10).map((_, k) => k + 1))
    expect(w.reconnects.map(({ attempt, url, lastUrl, refused }) => ({ attempt, url, lastUrl, refused }))).toEqual([{ attempt: 1, url: live, lastUrl: dead, refused: false }])
    expect(w.connects.map((c) => c.url)).toEqual([live])
    expect(w.viewer.url).toBe(live)
    expect(w.viewer.mqttClient.connected).toBe(true)
  })

  it('after CONNACK 3, waits at least refusedMinMs plus jitter, then connects to the next URL', async () => {
    const node = await brokerForTest()
    const refuser = await connackRefuser()
    await publish(node.tcpUrl, ids(1, 3))
    const w = watch([refuser.url, node.tcpUrl], { reconnect: { baseMs: 50, capMs: 200, refusedMinMs: 700 } })
    await waitFor(() => w.got.length === 3, 'history after the refusal')
    expect(refuser.arrivals).toHaveLength(1)
    expect(w.connects[0].at - refuser.arrivals[0]).toBeGreaterThanOrEqual(700)
    expect(w.reconnects).toHaveLength(1)
    expect(w.reconnects[0]).toMatchObject({ attempt: 1, url: node.tcpUrl, lastUrl: refuser.url, refused: true })
    expect(w.reconnects[0].retryAfterMs).toBeUndefined()
    expect(w.reconnects[0].delayMs).toBeGreaterThanOrEqual(700)
    expect(w.reconnects[0].delayMs).toBeLessThan(750)
    const refusals = w.errors.filter((e) => e instanceof ServerUnavailableError)
    expect(refusals).toHaveLength(1)
    expect(refusals[0]).toMatchObject({ url: refuser.url, code: 3, status: undefined, retryAfterMs: undefined })
  })

  it('after an HTTP 503 with Retry-After: 2 to the upgrade, waits at least 2 s plus jitter, then connects to the next URL', async () => {
    const node = await brokerForTest()
    const refuser = await upgradeRefuser('2')
    await publish(node.tcpUrl, ids(1, 3))
    const w = watch([refuser.url, node.wsUrl])
    await waitFor(() => w.got.length === 3, 'history after the refusal')
    expect(refuser.arrivals).toHaveLength(1)
    expect(w.connects[0].at - refuser.arrivals[0]).toBeGreaterThanOrEqual(2000)
    expect(w.reconnects).toHaveLength(1)
    expect(w.reconnects[0]).toMatchObject({ attempt: 1, url: node.wsUrl, lastUrl: refuser.url, refused: true, retryAfterMs: 2000 })
    expect(w.reconnects[0].delayMs).toBeGreaterThanOrEqual(2000)
    expect(w.reconnects[0].delayMs).toBeLessThan(2050)
    const refusals = w.errors.filter((e) => e instanceof ServerUnavailableError)
    expect(refusals).toHaveLength(1)
    expect(refusals[0]).toMatchObject({ url: refuser.url, status: 503, retryAfterMs: 2000, code: undefined })
    await publish(node.tcpUrl, ids(4, 6))
    await waitFor(() => w.got.length === 6, 'live')
    expect(w.got).toEqual(await feedOf(node.wsUrl, 6))
  })

  it.each(['mqtts', 'mqtt', 'ws'] as const)('counts a connection closed at accept (%s: before any answer, as a node shedding load or a TLS listener refusing does) as a refusal: waits at least refusedMinMs', async (scheme) => {
    const node = await brokerForTest()
    const shedder = await closer(scheme)
    await publish(node.tcpUrl, ids(1, 2))
    const w = watch([shedder.url, node.tcpUrl], { reconnect: { baseMs: 50, capMs: 200, refusedMinMs: 700 } })
    await waitFor(() => w.got.length === 2, 'history')
    expect(shedder.arrivals).toHaveLength(1)
    expect(w.reconnects.map(({ attempt, url, refused }) => ({ attempt, url, refused }))).toEqual([{ attempt: 1, url: node.tcpUrl, refused: true }])
    expect(w.reconnects[0].delayMs).toBeGreaterThanOrEqual(700)
    expect(w.connects[0].at - shedder.arrivals[0]).toBeGreaterThanOrEqual(700)
    expect(w.errors.some((e) => e instanceof ServerUnavailableError)).toBe(false)
  })

  it('uses a new client id for each connection (so a stale CONNECT cannot take over the live one), unless one is given', async () => {
    const node = await brokerForTest()
    const ids: string[] = []
    node.aedes.on('client', (c) => ids.push(c.id))
    const w = watch([node.tcpUrl])
    for (let i = 1; i <= 3; i++) {
      await waitFor(() => ids.length === i && w.viewer.connected, `connection ${i}`)
      if (i < 3) node.aedes.clients[ids[i - 1]].close()
    }
    expect(new Set(ids).size).toBe(3)
    for (const id of ids) expect(id).toMatch(/^tribune_[0-9a-f]{16}$/)
    const fixed = watch([node.tcpUrl], { clientId: 'my-tv' })
    await waitFor(() => ids.length === 4 && fixed.viewer.connected, 'the fixed id')
    node.aedes.clients['my-tv'].close()
    await waitFor(() => ids.length === 5, 'the fixed id again')
    expect(ids.slice(3)).toEqual(['my-tv', 'my-tv'])
  })

  it('does not reset the attempt count on a refusal: only a CONNACK 0 does', async () => {
    const refuser = await connackRefuser()
    const dead = `mqtt://127.0.0.1:${await closedPort()}`
    const w = watch([refuser.url, dead], { reconnect: { baseMs: 20, capMs: 40, refusedMinMs: 100 } })
    await waitFor(() => w.reconnects.length >= 6, 'six retries')
    await w.viewer.close()
    expect(w.reconnects.slice(0, 6).map((r) => [r.attempt, r.lastUrl === refuser.url, r.refused])).toEqual([
      [1, true, true], [2, false, false], [3, true, true], [4, false, false], [5, true, true], [6, false, false]
    ])
    for (const r of w.reconnects) expect(r.delayMs).toBeGreaterThanOrEqual(r.refused ? 100 : 0)
    for (let i = 1; i < refuser.arrivals.length; i++) expect(refuser.arrivals[i] - refuser.arrivals[i - 1]).toBeGreaterThanOrEqual(100)
  })

  it('refused viewers come back after Retry-After, spread over the jitter window rather than at once', async () => {
    const refuser = await upgradeRefuser('1')
    const delays: number[] = []
    const viewers = Array.from({ length: 20 }, () => {
      const viewer = Viewer.connect(refuser.url, { reconnect: { baseMs: 500, capMs: 500 } })
      viewer.on('reconnecting', (info) => { if (info.attempt === 1) delays.push(info.delayMs) })
      onCleanup(async () => { await viewer.close() })
      return viewer
    })
    await waitFor(() => refuser.arrivals.length >= 40, 'every viewer back once', 5000)
    await Promise.all(viewers.map(async (v) => { await v.close() }))
    expect(delays).toHaveLength(20)
    for (const d of delays) expect(d >= 1000 && d < 1500, `delay ${d}`).toBe(true)
    const [first, second] = [refuser.arrivals.slice(0, 20), refuser.arrivals.slice(20, 40)]
    expect(Math.min(...second) - Math.min(...first)).toBeGreaterThanOrEqual(1000)
    expect(Math.max(...second) - Math.min(...second)).toBeGreaterThan(200) // 20 draws over 500 ms, not one instant
  })
})
