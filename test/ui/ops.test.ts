// Tests whether the operations page (served by the broker at `/ops`) shows a 2-node cluster (Redis started by the
// test, examples/secure.json, statistics every second): the operator logs in with a password on the operators'
// WebSocket listener (after the broker refused no credentials, then a wrong password), the page shows both nodes
// with Redis reachable, and node-1's viewer count follows 5 viewers connecting and leaving while a replay runs (a
// screenshot of the page then goes to test/artifacts/).
import { describe, it, expect } from 'vitest'
import type { Page } from 'playwright-core'
import type { MqttClient } from 'mqtt'
import { onCleanup } from '../helpers/broker.js'
import { connect } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest, type TestNode } from '../helpers/cluster.js'
import { secureConfig, SAMPLE } from '../helpers/auth.js'
import { HAS_CHROMIUM, launchBrowser, newPage, pagesBuilt, screenshot } from '../helpers/browser.js'
import { Publisher } from '../../publisher/src/index.js'
import { runReplay } from '../../publisher/src/replay/run.js'
import { matchesByKickoff } from './world-cup.js'

const portOf = (node: TestNode, protocol: string): number => node.ports[Object.keys(node.ports).find((n) => n.startsWith(`${protocol}:`)) ?? '']
/** examples/secure.json's operators' listener: the WebSocket one that takes passwords (`ws:#<index>` on port 0). */
function opsPort (node: TestNode): number {
  const index = (secureConfig().listeners ?? []).findIndex((l) => l.protocol === 'ws' && (l.auth ?? []).includes('password'))
  return node.ports[`ws:#${index}`]
}
const cell = async (page: Page, node: string, k: string): Promise<string | null> => await page.textContent(`tr[data-node="${node}"] td[data-k="${k}"]`)

describe.skipIf(!HAS_CHROMIUM)('the operations page on a cluster', () => {
  it('logs an operator in, shows both nodes, and its client counts follow viewers connecting and leaving', async () => {
    await pagesBuilt()
    const redis = await redisForTest()
    const [a, b] = await clusterForTest(redis.url, 2, { ...secureConfig(), sysInterval: 1 })
    const browser = await launchBrowser()
    const { page, errors } = await newPage(browser)
    await page.goto(`http://127.0.0.1:${opsPort(a)}/ops`)
    // No credentials: this listener takes none (CONNACK 5); the login form shows.
    await page.waitForSelector('#login', { state: 'visible', timeout: 10_000 })
    expect(await page.getAttribute('#link', 'data-state')).toBe('refused')
    await page.fill('#login-user', SAMPLE.operator.username)
    await page.fill('#login-password', 'not-the-password')
    await page.click('#login button[type="submit"]')
    await expect.poll(async () => await page.textContent('#login-error'), { timeout: 10_000 }).toContain('did not accept these credentials')
    await page.fill('#login-password', SAMPLE.operator.password)
    await page.click('#login button[type="submit"]')
    await page.waitForSelector('#cluster', { state: 'visible', timeout: 10_000 })
    expect(await page.isVisible('#login')).toBe(false)
    await expect.poll(async () => await page.$$eval('tr[data-node]', (rows) => rows.map((r) => (r as HTMLElement).dataset.node)), { timeout: 10_000 }).toEqual(['node-0', 'node-1'])
    await expect.poll(async () => [await cell(page, 'node-0', 'store'), await cell(page, 'node-1', 'store')], { timeout: 10_000 }).toEqual(['Redis up', 'Redis up'])
    // The page itself: an operator on node-0.
    await expect.poll(async () => await cell(page, 'node-0', 'operators'), { timeout: 10_000 }).toBe('1')
    expect(await cell(page, 'node-1', 'viewers')).toBe('0')

    // A replay published on node-0, and 5 viewers joining node-1 to watch the final.
    const matches = await matchesByKickoff()
    const final = matches[matches.length - 1]
    const publisher = await Publisher.connect(`mqtt://127.0.0.1:${portOf(a, 'mqtt')}`, { ...SAMPLE.publisher })
    onCleanup(async () => await publisher.close())
    const replay = runReplay(publisher, matches.slice(0, 63), { speed: 0 }).then(async () => await runReplay(publisher, [final], { speed: 25 }))
    const viewers: MqttClient[] = []
    for (let i = 0; i < 5; i++) {
      const v = await connect(`ws://127.0.0.1:${portOf(b, 'ws')}/mqtt`, { username: 'apikey', password: SAMPLE.apiKey })
      await v.subscribeAsync(`$replay/all/matches/${final.id}/events`, { qos: 1 })
      viewers.push(v)
    }
    await expect.poll(async () => await cell(page, 'node-1', 'viewers'), { timeout: 10_000 }).toBe('5')
    expect(await cell(page, 'node-1', 'transports')).toBe('ws 5')
    await expect.poll(async () => Number(await cell(page, 'node-1', 'joins')), { timeout: 10_000 }).toBeGreaterThan(0)
    await expect.poll(async () => Number(await cell(page, 'node-0', 'in')), { timeout: 10_000 }).toBeGreaterThan(0)
    await expect.poll(async () => Number(await cell(page, 'node-1', 'out')), { timeout: 15_000 }).toBeGreaterThan(0)
    // A chart per figure; the clients' one with a line per node (a latency has no line for a node that delivered
    // nothing timed).
    expect(await page.$$eval('figure.chart', (charts) => charts.map((c) => (c as HTMLElement).dataset.figure))).toEqual(['clients', 'joinsPerSec', 'refusalsPerSec', 'inPerSec', 'outPerSec', 'latencyMs', 'lagP99Ms', 'rssMB'])
    expect(await page.$$eval('figure[data-figure="clients"] polyline', (lines) => lines.map((l) => l.getAttribute('stroke')))).toHaveLength(2)
    await new Promise((resolve) => setTimeout(resolve, 2000)) // a few more points on the charts
    await screenshot(page, 'ops-replay')

    for (const v of viewers) await v.endAsync()
    await expect.poll(async () => await cell(page, 'node-1', 'viewers'), { timeout: 10_000 }).toBe('0')
    expect(await cell(page, 'node-0', 'operators')).toBe('1')
    await replay
    expect(errors).toEqual([])
  })
})
