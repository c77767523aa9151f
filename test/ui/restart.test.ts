// Tests whether the scoreboard page rides out a broker restart under it: the final replayed at 12 match-minutes a
// second into a node keeping its store on disk, the node stopped mid-match and started again on the same ports and
// data 1.5 s later (the replay's messages wait in the publisher meanwhile). The page must show reconnecting, then
// caught up, and end with the broker's feed exactly: no event missing, none shown twice.
import { describe, it, expect } from 'vitest'
import { brokerForTest, onCleanup, tempDir } from '../helpers/broker.js'
import { connect } from '../helpers/mqtt.js'
import { HAS_CHROMIUM, launchBrowser, linkStates, newPage, pagesBuilt, rendered } from '../helpers/browser.js'
import { Publisher } from '../../publisher/src/index.js'
import { runReplay } from '../../publisher/src/replay/run.js'
import { TimedSink, brokerFeed, expectRows, feedLines, matchesByKickoff } from './world-cup.js'

describe.skipIf(!HAS_CHROMIUM)('the scoreboard page across a broker restart', () => {
  it('shows reconnecting, then catches up, with no event missing or repeated', async () => {
    await pagesBuilt()
    const matches = await matchesByKickoff()
    const final = matches[matches.length - 1]
    const dataDir = tempDir()
    const first = await brokerForTest({ dataDir })
    const ports = { port: first.tcpPort, wsPort: first.wsPort }
    const publisher = await Publisher.connect(first.tcpUrl, { reconnectPeriod: 200 })
    onCleanup(async () => await publisher.close())
    const sink = new TimedSink(publisher)
    await runReplay(sink, matches.slice(0, 63), { speed: 0 })

    const browser = await launchBrowser()
    const { page, errors } = await newPage(browser)
    await page.goto(`http://127.0.0.1:${ports.wsPort}/?match=${final.id}`)
    await expectRows(page, () => sink.states)
    let secondGoal = (): void => {}
    const scored = new Promise<void>((resolve) => { secondGoal = resolve })
    const replay = runReplay(sink, [final], { speed: 12, onProgress: (_p, e) => { if (e.event.id === 'goal-2') secondGoal() } })
    await scored
    await expect.poll(async () => (await feedLines(page)).map((l) => l.id), { timeout: 5000 }).toContain('goal-2')

    await first.close()
    await expect.poll(async () => await page.getAttribute('#link', 'data-state'), { timeout: 5000 }).toBe('reconnecting')
    const shownWhenLost = (await feedLines(page)).length
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const second = await brokerForTest({ dataDir, ...ports })
    await expect.poll(async () => await page.getAttribute('#link', 'data-state'), { timeout: 15_000 }).toBe('caught-up')
    expect(await page.textContent('#link')).toMatch(/^Caught up after \d+\.\d s away: resumed after seq \d+$/)

    expect((await replay).aborted).toBe(false)
    const reference = await connect(second.tcpUrl)
    const feed = await brokerFeed(reference, final.id, final.events.length)
    // The broker lost nothing either: every event of the final, in order, once.
    expect(feed.map((l) => l.id)).toEqual(final.events.map((t) => t.event.id))
    expect(feed.map((l) => l.seq)).toEqual(feed.map((_l, i) => i + 1))
    await expect.poll(async () => await feedLines(page), { timeout: 10_000 }).toEqual(feed)
    expect(shownWhenLost).toBeLessThan(feed.length)
    expect((await rendered(page)).map((r) => r.seq)).toEqual(feed.map((l) => l.seq))
    await expectRows(page, () => sink.states)
    const states = await linkStates(page)
    expect(states.slice(0, 2)).toEqual(['connecting', 'live'])
    expect(states.indexOf('caught-up')).toBeGreaterThan(states.indexOf('reconnecting'))
    expect(errors.filter((e) => !/WebSocket connection to .* failed/.test(e))).toEqual([])
  })
})
