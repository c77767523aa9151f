/**
 * The reconnect herd (issue: a node that takes everyone at once while delivering never recovers). One node in its own
 * process, with limits low enough to matter on this machine; 1,500 client-library viewers of one feed, half over TCP
 * and half over WebSocket, all dropped at once and reconnecting within 0.5 s (the viewer's first retry waits
 * random(0, 500) ms) while a publisher sends 10 events a second. Tests whether every viewer is back with its feed
 * exact (each seq once, in order), and whether /healthz answers throughout.
 */
import { test, expect } from 'vitest'
import { onCleanup } from '../helpers/broker.js'
import { waitFor } from '../helpers/mqtt.js'
import { Viewer } from '../../client/src/index.js'
import { Publisher } from '../../publisher/src/index.js'
import { spawnBroker, listening } from '../helpers/process.js'

const VIEWERS = 1500
const RATE = 300

test(`${VIEWERS} viewers dropped at once come back within the rate limit's bound, every feed exact, /healthz answering throughout`, async () => {
  const { tcp: tcpPort, ws: wsPort } = await listening(spawnBroker(['--max-conn-rate', String(RATE), '--max-conn-burst', String(RATE / 2)]), 'the node listening')
  const feed = 'matches/herd/events'
  const publisher = await Publisher.connect(`mqtt://127.0.0.1:${tcpPort}`)
  onCleanup(async () => { await publisher.close() })
  let published = 0
  const publish = async (): Promise<void> => { await publisher.publishEvent(feed, { type: 'tick', id: `e${++published}` }) }
  for (let i = 0; i < 10; i++) await publish()

  const viewers: Array<{ viewer: Viewer, seqs: number[] }> = []
  for (let i = 0; i < VIEWERS; i++) {
    const url = i % 2 === 0 ? `mqtt://127.0.0.1:${tcpPort}` : `ws://127.0.0.1:${wsPort}/mqtt`
    const viewer = Viewer.connect(url, { reconnect: { baseMs: 500, capMs: 8000 } })
    onCleanup(async () => { await viewer.close() })
    viewer.on('error', () => {})
    const entry = { viewer, seqs: [] as number[] }
    viewer.watchFeed(feed, { from: 'all' }, (m) => entry.seqs.push(m.seq))
    viewers.push(entry)
  }
  await waitFor(() => viewers.every((v) => v.seqs.length >= 10), 'every viewer live', 60_000)

  // From now on: 10 events a second, and /healthz polled every 200 ms (each must answer within 2 s).
  let publishing = true
  const publishing$ = (async () => {
    while (publishing) {
      await publish()
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  })()
  const health: Array<{ ms: number, status: number }> = []
  let polling = true
  const polling$ = (async () => {
    while (polling) {
      const start = Date.now()
      const status = await fetch(`http://127.0.0.1:${wsPort}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0)
      health.push({ ms: Date.now() - start, status })
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  })()
  await new Promise((resolve) => setTimeout(resolve, 500))

  // The herd: every connection dropped at once.
  const dropped = Date.now()
  for (const { viewer } of viewers) viewer.mqttClient.stream.destroy()
  await waitFor(() => viewers.every((v) => !v.viewer.connected), 'every viewer to notice the drop', 10_000)
  await waitFor(() => viewers.every((v) => v.viewer.connected && v.seqs.length >= published - 1), 'every viewer back and caught up', 90_000)
  const backMs = Date.now() - dropped
  publishing = false
  await publishing$
  await waitFor(() => viewers.every((v) => v.seqs.length === published), 'the last events', 20_000)
  polling = false
  await polling$

  const expected = Array.from({ length: published }, (_, i) => i + 1)
  for (const v of viewers) expect(v.seqs).toEqual(expected)
  expect(health.every((h) => h.status === 200)).toBe(true)
  const healthBody = await (await fetch(`http://127.0.0.1:${wsPort}/healthz`)).json() as { clients: number, admission: { refused: Record<string, number> } }
  expect(healthBody.clients).toBe(VIEWERS + 1)
  const worst = Math.max(...health.map((h) => h.ms))
  console.log(`${VIEWERS} viewers back in ${backMs} ms (bound from the rate: ${Math.round(VIEWERS / RATE * 1000)} ms + backoff), ${published} events each, exact; ` +
    `refused ${JSON.stringify(healthBody.admission.refused)}; /healthz answered ${health.length} times, slowest ${worst} ms`)
}, 180_000)
