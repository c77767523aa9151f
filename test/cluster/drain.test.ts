/**
 * Draining a node of a cluster (issue 14, "Done when"): two `tribune broker` processes on one Redis, 1,000
 * client-library viewers (half over TCP, half over WebSocket) given both nodes' URLs and all on the first node, and a
 * publisher on that node publishing 10 events a second throughout. The first node gets SIGTERM with
 * `--drain-seconds 5`. Tests whether its /readyz answers 503 within 100 ms, whether its viewers are disconnected at an
 * even rate (no second sees more than twice the average, 200 a second), whether every viewer resumes its feed on the
 * other node with no gap and no duplicate (each seq once, in order, no gap or reset notice), and whether the node then
 * exits 0, every disconnect logged as `drain`.
 */
import { spawn } from 'node:child_process'
import { test, expect } from 'vitest'
import { onCleanup } from '../helpers/broker.js'
import { waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { spawnBroker, listening } from '../helpers/process.js'
import { Viewer } from '../../client/src/index.js'
import { Publisher } from '../../publisher/src/index.js'

const VIEWERS = 1000
const DRAIN_S = 5
const FEED = 'matches/drain/events'
const keepOrder = (): number => 0.999 // the URLs are tried in the order given: everyone starts on the first node

/**
 * Sends SIGTERM to the process `argv[1]` (after a first request, which loads Node's fetch), then polls /readyz on port `argv[2]` until it answers 503; prints
 * `{readyMs, polls}`: ms from the signal to that answer, and each poll as `start-end:status` (ms from the signal).
 */
const POLL_READYZ = `
const [pid, port] = process.argv.slice(1)
await fetch('http://127.0.0.1:' + port + '/readyz') // Node loads its fetch on first use: not after the signal
const t0 = performance.now()
process.kill(Number(pid), 'SIGTERM')
const polls = []
let status = 0
let readyMs = 0
while (status !== 503 && performance.now() - t0 < 2000) {
  const start = performance.now() - t0
  status = await fetch('http://127.0.0.1:' + port + '/readyz').then((r) => r.status, () => 0)
  readyMs = performance.now() - t0
  polls.push(Math.round(start) + '-' + Math.round(readyMs) + ':' + status)
}
console.log(JSON.stringify({ readyMs, polls }))
`

test(`${VIEWERS} viewers of a node drained over ${DRAIN_S} s move to the other node at an even rate, every feed exact`, async () => {
  const redis = await redisForTest()
  // Every viewer joins the first node at once: a burst that big (the default takes 1,000 at once), and no overload
  // refusal while this machine's 2 cores take them (admission control is tested in test/admission/).
  const joinAtOnce = ['--max-conn-burst', '2000', '--overload-lag-ms', '0']
  const draining = spawnBroker(['--redis', redis.url, '--node-id', 'drain-0', '--drain-seconds', String(DRAIN_S), '--metrics-port', '0', ...joinAtOnce])
  const staying = spawnBroker(['--redis', redis.url, '--node-id', 'drain-1', ...joinAtOnce])
  const [p0, p1] = await Promise.all([listening(draining, 'node drain-0'), listening(staying, 'node drain-1')])
  const metricsPort = draining.lines().find((l) => l.msg === 'broker listening').ports.metrics as number
  const tcp = [`mqtt://127.0.0.1:${p0.tcp}`, `mqtt://127.0.0.1:${p1.tcp}`]
  const ws = [`ws://127.0.0.1:${p0.ws}/mqtt`, `ws://127.0.0.1:${p1.ws}/mqtt`]

  const publisher = await Publisher.connect(tcp, { random: keepOrder, reconnectPeriod: 100 })
  onCleanup(async () => { await publisher.close() })
  let published = 0
  const publish = async (): Promise<void> => { await publisher.publishEvent(FEED, { type: 'tick', id: `e${++published}` }) }
  for (let i = 0; i < 5; i++) await publish()

  const viewers = Array.from({ length: VIEWERS }, (_, i) => {
    const urls = i % 2 === 0 ? tcp : ws
    const viewer = Viewer.connect(urls, { random: keepOrder, reconnect: { baseMs: 500, capMs: 4000 } })
    onCleanup(async () => { await viewer.close() })
    viewer.on('error', () => {})
    const v = { viewer, urls, seqs: [] as number[], anomalies: [] as string[], disconnectedAt: 0 }
    viewer.on('disconnect', () => { if (v.disconnectedAt === 0) v.disconnectedAt = Date.now() })
    const sub = viewer.watchFeed(FEED, { from: 'all' }, (m) => v.seqs.push(m.seq))
    sub.on('gap', (g) => v.anomalies.push(`gap ${JSON.stringify(g)}`))
    sub.on('reset', (r) => v.anomalies.push(`reset ${JSON.stringify(r)}`))
    return v
  })
  await waitFor(() => viewers.every((v) => v.viewer.connected && v.seqs.length >= published), 'every viewer live on the first node', 60_000)
  const health = await (await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).json() as { admission: unknown }
  expect(viewers.filter((v) => v.viewer.url !== v.urls[0]).length, JSON.stringify(health.admission)).toBe(0)
  expect((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status).toBe(200)

  let publishing = true
  const publishing$ = (async () => {
    while (publishing) {
      await publish()
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  })()
  await new Promise((resolve) => setTimeout(resolve, 300))

  // The signal is sent, and /readyz polled, by a process of its own: this one is busy with its 1,000 viewers, and its
  // own delays must not count against the node.
  const poller = spawn(process.execPath, ['--input-type=module', '-e', POLL_READYZ, String(draining.child.pid), String(metricsPort)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let pollOut = ''
  poller.stdout.on('data', (d) => { pollOut += String(d) })
  await new Promise((resolve) => poller.once('close', resolve))
  const { readyMs, polls } = JSON.parse(pollOut) as { readyMs: number, polls: string[] }
  expect(polls[polls.length - 1]).toMatch(/:503$/)
  expect(readyMs, polls.join(' ')).toBeLessThan(100)

  await waitFor(() => viewers.every((v) => v.viewer.connected && v.viewer.url === v.urls[1]), 'every viewer on the other node', 30_000)
  const movedAt = Date.now()
  expect(await draining.exited).toBe(0)
  await new Promise((resolve) => setTimeout(resolve, 500))
  publishing = false
  await publishing$
  await waitFor(() => viewers.every((v) => v.seqs.length >= published), 'the last events', 20_000)

  // Even: the disconnects of each second since the drain began, as the viewers saw them (through this busy process' event
  // loop) and as the node logged them, against the average of VIEWERS / DRAIN_S a second.
  const gone = draining.lines().filter((l) => l.msg === 'client disconnected')
  const started = draining.lines().find((l) => typeof l.msg === 'string' && l.msg.startsWith('draining:')).time as number
  const perSecond = (times: number[], from: number): number[] => Array.from({ length: DRAIN_S + 1 }, (_, s) => times.filter((t) => t - from >= s * 1000 && t - from < (s + 1) * 1000).length)
  const seen = perSecond(viewers.map((v) => v.disconnectedAt), started)
  const logged = perSecond(gone.map((l) => l.time as number), started)
  const average = VIEWERS / DRAIN_S
  expect(seen.reduce((a, b) => a + b, 0)).toBe(VIEWERS)
  expect(Math.max(...seen)).toBeLessThanOrEqual(2 * average)
  expect(Math.max(...logged)).toBeLessThanOrEqual(2 * average)

  const expected = Array.from({ length: published }, (_, i) => i + 1)
  const wrong = viewers.filter((v) => v.anomalies.length > 0 || v.seqs.length !== published || v.seqs.some((seq, i) => seq !== expected[i]))
  expect(wrong.map((v) => ({ url: v.urls[0], anomalies: v.anomalies, seqs: v.seqs.length }))).toEqual([])
  expect(publisher.url).toBe(tcp[1])

  expect(gone.length).toBe(VIEWERS + 1) // and the publisher
  expect(gone.every((l) => l.reason === 'drain')).toBe(true)
  console.log(`drain of ${VIEWERS} viewers over ${DRAIN_S} s: /readyz 503 after ${Math.round(readyMs)} ms; disconnects a second ${JSON.stringify(seen)} seen by the viewers, ${JSON.stringify(logged)} logged by the node ` +
    `(average ${average}); everyone on the other node after ${movedAt - started} ms; ${published} events each, exact`)
}, 120_000)
