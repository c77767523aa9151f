/**
 * Losing a node: 3 nodes (`tribune broker` processes on one Redis), 300 client-library viewers each given all three
 * URLs (each tries them in its own random order), a publisher on a node that survives publishing throughout. The node
 * holding the most viewers is killed with SIGKILL. Tests whether every viewer of the dead node is back on a survivor
 * within the README's bound, viewers / (survivors x --max-conn-rate) plus the backoff's spread, with every feed exact
 * (each seq once, in order), and whether the survivors keep within their limits and keep answering /healthz.
 */
import { test, expect } from 'vitest'
import { onCleanup } from '../helpers/broker.js'
import { waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { spawnBroker, listening } from '../helpers/process.js'
import { Viewer } from '../../client/src/index.js'
import { Publisher } from '../../publisher/src/index.js'

const VIEWERS = 300
/** Each node's --max-conn-rate, low enough that the limit shapes the return. */
const RATE = 40
/** The backoff's spread the README allows on top of the rate's bound, ms. */
const SPREAD_MS = 8000

test(`${VIEWERS} viewers with three nodes' URLs: the viewers of a node killed with SIGKILL are back within the rate's bound, every feed exact`, async () => {
  const redis = await redisForTest()
  const nodes = await Promise.all([0, 1, 2].map(async (i) => {
    const run = spawnBroker(['--redis', redis.url, '--node-id', `loss-${i}`, '--max-conn-rate', String(RATE), '--max-conn-burst', String(RATE)])
    const ports = await listening(run, `node ${i}`)
    return { run, ...ports, tcpUrl: `mqtt://127.0.0.1:${ports.tcp}`, wsUrl: `ws://127.0.0.1:${ports.ws}/mqtt` }
  }))
  const feeds = ['matches/loss-a/events', 'matches/loss-b/events']
  const publisher = await Publisher.connect(nodes[0].tcpUrl)
  onCleanup(async () => { await publisher.close() })
  const published = new Map(feeds.map((f) => [f, 0]))
  const publishBoth = async (): Promise<void> => {
    for (const f of feeds) {
      const n = (published.get(f) ?? 0) + 1
      published.set(f, n)
      await publisher.publishEvent(f, { type: 'tick', id: `${f}-${n}` })
    }
  }
  for (let i = 0; i < 5; i++) await publishBoth()

  // Viewers join over a few seconds (the nodes take 40 a second each), half over TCP, half over WebSocket.
  const viewers: Array<{ viewer: Viewer, seqs: Map<string, number[]> }> = []
  for (let i = 0; i < VIEWERS; i++) {
    const urls = nodes.map((n) => i % 2 === 0 ? n.tcpUrl : n.wsUrl)
    const viewer = Viewer.connect(urls, { reconnect: { baseMs: 500, capMs: 4000 } })
    onCleanup(async () => { await viewer.close() })
    viewer.on('error', () => {})
    const entry = { viewer, seqs: new Map(feeds.map((f) => [f, [] as number[]])) }
    for (const f of feeds) viewer.watchFeed(f, { from: 'all' }, (m) => entry.seqs.get(f)?.push(m.seq))
    viewers.push(entry)
  }
  const caughtUp = (v: typeof viewers[number], slack = 0): boolean => feeds.every((f) => (v.seqs.get(f)?.length ?? 0) >= (published.get(f) ?? 0) - slack)
  await waitFor(() => viewers.every((v) => v.viewer.connected && caughtUp(v)), 'every viewer live', 60_000)

  let publishing = true
  const publishing$ = (async () => {
    while (publishing) {
      await publishBoth()
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  // The node with most viewers dies, not the publisher's.
  const onNode = (n: typeof nodes[number]): typeof viewers => viewers.filter((v) => v.viewer.url === n.tcpUrl || v.viewer.url === n.wsUrl)
  const victim = [nodes[1], nodes[2]].sort((a, b) => onNode(b).length - onNode(a).length)[0]
  const orphans = onNode(victim)
  const survivors = nodes.filter((n) => n !== victim)
  await new Promise((resolve) => setTimeout(resolve, 500))
  // Noticed by the event, not the state: a quick one may be connected again to a survivor before a slow one notices.
  const noticed = new Set<Viewer>()
  for (const v of orphans) v.viewer.once('disconnect', () => noticed.add(v.viewer))
  const killed = Date.now()
  victim.run.child.kill('SIGKILL')
  await waitFor(() => noticed.size === orphans.length, 'the dead node\'s viewers to notice', 10_000)
  const health: number[] = []
  const polling$ = (async () => {
    while (!orphans.every((v) => v.viewer.connected && caughtUp(v, 2))) {
      for (const n of survivors) health.push(await fetch(`http://127.0.0.1:${n.ws}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0))
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  })()
  await waitFor(() => orphans.every((v) => v.viewer.connected && caughtUp(v, 2)), 'the dead node\'s viewers back and caught up', 60_000)
  const backMs = Date.now() - killed
  await polling$
  publishing = false
  await publishing$
  await waitFor(() => viewers.every((v) => caughtUp(v)), 'every viewer to have every event', 20_000)

  for (const v of viewers) {
    for (const f of feeds) expect(v.seqs.get(f)).toEqual(Array.from({ length: published.get(f) ?? 0 }, (_, i) => i + 1))
  }
  const boundMs = orphans.length / (survivors.length * RATE) * 1000 + SPREAD_MS
  expect(health.every((s) => s === 200)).toBe(true)
  for (const n of survivors) {
    const body = await (await fetch(`http://127.0.0.1:${n.ws}/healthz`)).json() as { clients: number, admission: { refused: Record<string, number> } }
    expect(body.admission.refused['max-connections']).toBe(0)
  }
  console.log(`${orphans.length} viewers of the killed node back in ${backMs} ms (bound ${Math.round(boundMs)} ms: ` +
    `${orphans.length} / (${survivors.length} x ${RATE}/s) + ${SPREAD_MS} ms of backoff); every feed exact (${published.get(feeds[0])} events each)`)
  expect(backMs).toBeLessThanOrEqual(boundMs)
}, 180_000)
