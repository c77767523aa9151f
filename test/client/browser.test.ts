// Tests whether the viewer library works in a real browser: the client/ sources bundled by Vite for the browser
// (MQTT.js's browser build over WebSocket) run in headless Chromium, given two URLs: a server refusing the WebSocket
// upgrade with 503 (which a browser sees only as a failed WebSocket, close code 1006) tried first, then a real broker;
// it watches a feed (history then live) and a state topic there, and sees the same envelopes as a Node viewer over TCP.
import http from 'node:http'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { describe, it, expect } from 'vitest'
import { build } from 'vite'
import { chromium } from 'playwright-core'
import { brokerForTest, onCleanup, tempDir } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { upgradeRefuser } from './refusers.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ROOT = join(import.meta.dirname, '../..')

/** Bundles client/src/index.ts for the browser into `dir`/viewer.js, exposing the library as `window.Tribune`. */
async function bundle (dir: string): Promise<void> {
  await build({
    root: ROOT,
    logLevel: 'silent',
    configFile: false,
    build: {
      outDir: dir,
      emptyOutDir: false,
      minify: false,
      lib: { entry: join(ROOT, 'client/src/index.ts'), name: 'Tribune', formats: ['iife'], fileName: () => 'viewer.js' }
    }
  })
}

describe.skipIf(!existsSync(CHROMIUM))('the viewer library in a browser', () => {
  it('after a refused WebSocket, watches a feed and a state topic over WebSocket in Chromium, identical to a Node viewer over TCP', async () => {
    const node = await brokerForTest()
    const refuser = await upgradeRefuser('30')
    const dir = tempDir()
    await bundle(dir)
    const js = readFileSync(join(dir, 'viewer.js'), 'utf8')
    expect(js).not.toMatch(/from ['"]node:/)
    writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>viewer</title><script src="viewer.js"></script>')
    const server = http.createServer((req, res) => {
      const file = req.url === '/viewer.js' ? 'viewer.js' : 'index.html'
      res.writeHead(200, { 'content-type': file.endsWith('.js') ? 'text/javascript' : 'text/html' })
      res.end(readFileSync(join(dir, file)))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onCleanup(() => { server.close() })

    const pub = await connect(node.tcpUrl)
    const FEED = 'matches/browser/events'
    for (let i = 1; i <= 3; i++) await pub.publishAsync(FEED, JSON.stringify({ id: `e${i}`, i }), { qos: 1 })
    await pub.publishAsync('matches/browser/state', JSON.stringify({ score: [1, 0] }), { qos: 1, retain: true })

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
    onCleanup(async () => await browser.close())
    const page = await browser.newPage()
    const pageErrors: string[] = []
    page.on('pageerror', (err) => pageErrors.push(err.message))
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)
    await page.evaluate(({ urls, feed }) => {
      const w = window as any
      w.got = []
      w.states = []
      w.reconnects = []
      // random near 1: the URLs are tried in the order given, the refuser first.
      const viewer = w.Tribune.Viewer.connect(urls, { random: () => 0.999, reconnect: { baseMs: 50, capMs: 100 } })
      viewer.on('reconnecting', (info: unknown) => w.reconnects.push(info))
      viewer.watchFeed(feed, { from: 'all' }, (env: unknown) => w.got.push(env))
      viewer.watchState('matches/browser/state', (m: { payload: unknown }) => w.states.push(m.payload))
    }, { urls: [refuser.url, node.wsUrl], feed: FEED })
    const nodeViewer = await connect(node.tcpUrl)
    const nodeGot = collect(nodeViewer)
    await nodeViewer.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })

    const inPage = async (): Promise<{ got: any[], states: any[] }> => await page.evaluate(() => ({ got: (window as any).got, states: (window as any).states }))
    await waitFor(() => nodeGot.length === 3, 'node history')
    await expect.poll(async () => (await inPage()).got.length, { timeout: 15_000 }).toBe(3)
    for (let i = 4; i <= 5; i++) await pub.publishAsync(FEED, JSON.stringify({ id: `e${i}`, i }), { qos: 1 })
    await pub.publishAsync('matches/browser/state', JSON.stringify({ score: [2, 0] }), { qos: 1, retain: true })
    await expect.poll(async () => (await inPage()).got.length, { timeout: 15_000 }).toBe(5)
    await waitFor(() => nodeGot.length === 5, 'node live')
    const { got, states } = await inPage()
    expect(got.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
    expect(got).toEqual(nodeGot.map((m) => m.json))
    await expect.poll(async () => (await inPage()).states, { timeout: 5000 }).toEqual([{ score: [1, 0] }, { score: [2, 0] }])
    expect(states[0]).toEqual({ score: [1, 0] })
    expect(pageErrors).toEqual([])
    // The browser cannot see the 503 nor its Retry-After (30 s): a WebSocket that failed before CONNACK counts as a
    // refusal without Retry-After, so the next URL is tried after the refusal minimum (1 s) plus the jitter.
    expect(refuser.arrivals).toHaveLength(1)
    const reconnects = await page.evaluate(() => (window as any).reconnects)
    expect(reconnects).toEqual([
      { attempt: 1, delayMs: expect.any(Number), url: node.wsUrl, lastUrl: refuser.url, refused: true }
    ])
    expect(reconnects[0].delayMs).toBeGreaterThanOrEqual(1000)
  })
})
