// Tests whether the scoreboard page works against a 2-node cluster (Redis started by the test) configured by
// examples/secure.json, through its WebSocket listener with the sample API key: the page given a wrong key in its
// address is refused and asks (the form), takes the sample key in the form, is served as that key's viewer, and
// follows a replay published on the other node (every match's score, the final's feed exactly as the broker holds it).
import { describe, it, expect } from 'vitest'
import { onCleanup } from '../helpers/broker.js'
import { connect } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest, type TestNode } from '../helpers/cluster.js'
import { secureConfig, SAMPLE } from '../helpers/auth.js'
import { HAS_CHROMIUM, launchBrowser, newPage, pagesBuilt, rendered, screenshot } from '../helpers/browser.js'
import { Publisher } from '../../publisher/src/index.js'
import { runReplay } from '../../publisher/src/replay/run.js'
import { askNodes } from '../../client/src/admin/request.js'
import { TimedSink, brokerFeed, expectRows, feedLines, matchesByKickoff } from './world-cup.js'

/** The port of a node's first listener of `protocol` (examples/secure.json: ws is the public WebSocket listener). */
const portOf = (node: TestNode, protocol: string): number => node.ports[Object.keys(node.ports).find((n) => n.startsWith(`${protocol}:`)) ?? '']

describe.skipIf(!HAS_CHROMIUM)('the scoreboard page on a cluster with examples/secure.json', () => {
  it('signs in with the sample API key (form, after a wrong key in the address) and follows a replay published on the other node', async () => {
    await pagesBuilt()
    const redis = await redisForTest()
    const [a, b] = await clusterForTest(redis.url, 2, secureConfig())
    const matches = await matchesByKickoff()
    const final = matches[matches.length - 1]
    const publisher = await Publisher.connect(`mqtt://127.0.0.1:${portOf(b, 'mqtt')}`, { ...SAMPLE.publisher })
    onCleanup(async () => await publisher.close())
    const sink = new TimedSink(publisher)
    await runReplay(sink, matches.slice(0, 63), { speed: 0 })

    const browser = await launchBrowser()
    const { page, errors } = await newPage(browser)
    const brokers = [a, b].map((n) => `ws://127.0.0.1:${portOf(n, 'ws')}/mqtt`).join(',')
    await page.goto(`http://127.0.0.1:${portOf(a, 'ws')}/?apikey=not-a-key&broker=${brokers}&match=${final.id}`)
    // The key left the address bar at once; the broker refused it (CONNACK 4): the form asks for another.
    expect(page.url()).not.toContain('apikey')
    await expect.poll(async () => await page.getAttribute('#link', 'data-state'), { timeout: 10_000 }).toBe('refused')
    expect(await page.isVisible('#signin-dialog')).toBe(true)
    expect(await page.textContent('#signin-error')).toContain('did not accept these credentials')
    await page.fill('#signin-secret', SAMPLE.apiKey)
    await page.click('#signin-form button[type="submit"]')
    await expect.poll(async () => await page.getAttribute('#link', 'data-state'), { timeout: 10_000 }).toBe('live')
    expect(await page.textContent('#who')).toBe('API key')
    await expectRows(page, () => sink.states)

    // Served as the API key's viewer, over WebSocket, on one node of the two.
    const operator = await connect(`mqtt://127.0.0.1:${portOf(a, 'mqtt')}`, { ...SAMPLE.operator })
    const listed = await askNodes(operator, { target: 'all', command: 'clients.list', fields: { identity: 'apikey:tv-app' }, timeoutMs: 5000 })
    const viewers = listed.answers.flatMap((answer) => (answer.result as { clients: Array<{ role: string, transport: string }> }).clients)
    expect(viewers).toEqual([expect.objectContaining({ role: 'viewer', transport: 'ws' })])

    // The final, published on node b at 30 match-minutes a second: every event live on the page, once, in order.
    const replay = await runReplay(sink, [final], { speed: 30 })
    expect(replay.aborted).toBe(false)
    const reference = await connect(`mqtt://127.0.0.1:${portOf(a, 'mqtt')}`, { username: 'apikey', password: SAMPLE.apiKey })
    const feed = await brokerFeed(reference, final.id, final.events.length)
    expect(feed.map((l) => l.id)).toEqual(final.events.map((t) => t.event.id))
    await expect.poll(async () => await feedLines(page), { timeout: 10_000 }).toEqual(feed)
    expect((await rendered(page)).map((r) => r.seq)).toEqual(feed.map((l) => l.seq))
    await expectRows(page, () => sink.states)
    await screenshot(page, 'scoreboard-cluster-end')
    expect(errors).toEqual([])
  })
})
