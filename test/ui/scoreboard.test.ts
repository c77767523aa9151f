// Tests whether the scoreboard page (served by the broker at `/`) shows a World Cup replay as it happens, in headless
// Chromium: at kickoff, mid-tournament (a row clicked: its history) and opened during the final, it shows every
// match's current score and the selected match's feed, history then live, each event once; the next goal of the final
// is on screen within a second of its publish (measured: the replay notes when it hands the event to the publisher,
// the page when the line is painted); at the end the final shows extra time, the shoot-out and the penalties marked.
// Screenshots of the three moments go to test/artifacts/.
import { describe, it, expect } from 'vitest'
import type { Page } from 'playwright-core'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect } from '../helpers/mqtt.js'
import { HAS_CHROMIUM, launchBrowser, newPage, pagesBuilt, rendered, screenshot } from '../helpers/browser.js'
import { Publisher } from '../../publisher/src/index.js'
import { runReplay } from '../../publisher/src/replay/run.js'
import { TimedSink, brokerFeed, expectRows, feedLines, matchRows, matchesByKickoff } from './world-cup.js'

const linkState = async (page: Page): Promise<string | null> => await page.getAttribute('#link', 'data-state')

describe.skipIf(!HAS_CHROMIUM)('the scoreboard page', () => {
  it('shows every match and the selected feed at kickoff, mid-tournament and opened during the final; the next goal within a second of its publish', async () => {
    await pagesBuilt()
    const matches = await matchesByKickoff()
    const first = matches[0]
    const final = matches[matches.length - 1]
    const node = await brokerForTest()
    const publisher = await Publisher.connect(node.tcpUrl)
    onCleanup(async () => await publisher.close())
    const sink = new TimedSink(publisher)
    const reference = await connect(node.tcpUrl)
    const browser = await launchBrowser()
    const base = `http://127.0.0.1:${node.wsPort}/`

    // Kickoff: every match scheduled, the first one under way and its first goal in (Enner Valencia's penalty, 16').
    const kickoff = new AbortController()
    await runReplay(sink, matches, { speed: 0, signal: kickoff.signal, onProgress: (_p, e) => { if (e.event.type === 'goal') kickoff.abort() } })
    const { page: early, errors: earlyErrors } = await newPage(browser)
    await early.goto(`${base}?match=${first.id}`)
    await expectRows(early, () => sink.states)
    expect(await matchRows(early)).toHaveLength(64)
    expect((await matchRows(early)).find((r) => r.id === first.id)).toMatchObject({ status: 'live', score: '0–1', text: "1st half 16'" })
    await expect.poll(async () => await feedLines(early)).toEqual([{ seq: 1, id: 'kickoff', type: 'kickoff' }, { seq: 2, id: 'goal-1', type: 'goal' }])
    expect(await early.textContent('#feed li[data-id="goal-1"]')).toContain('Enner Valencia — Ecuador')
    expect(await early.textContent('#feed li[data-id="goal-1"] .mark')).toBe('pen.')
    expect(await linkState(early)).toBe('live')
    expect(await early.textContent('#position')).toMatch(/^Feed: live · seq 2 · epoch [0-9a-f]+$/)
    await screenshot(early, 'scoreboard-kickoff')

    // Mid-tournament, the same page still open: the first 31 matches played, the 32nd stopped at half-time.
    const half = matches.slice(0, 32)
    const halftime = new AbortController()
    await runReplay(sink, half, { speed: 0, signal: halftime.signal, onProgress: (_p, e) => { if (e.match.id === half[31].id && e.event.type === 'halftime') halftime.abort() } })
    await expectRows(early, () => sink.states)
    // The first match's feed went on live, its kickoff and first goal sent again by this replay but not shown twice.
    const firstFeed = await brokerFeed(reference, first.id, first.events.length)
    expect(await feedLines(early)).toEqual(firstFeed)
    // A click on the match at half-time shows its history.
    const mid = half[31]
    await early.click(`.row[data-match="${mid.id}"]`)
    expect(new URL(early.url()).searchParams.get('match')).toBe(mid.id)
    const midFeed = await brokerFeed(reference, mid.id, 2)
    expect(midFeed.at(-1)?.type).toBe('halftime')
    await expect.poll(async () => await feedLines(early)).toEqual(midFeed)
    expect((await matchRows(early)).find((r) => r.id === mid.id)?.text).toBe('HT')
    await early.locator(`.row[data-match="${mid.id}"]`).scrollIntoViewIfNeeded()
    await screenshot(early, 'scoreboard-mid-tournament')

    // The rest at once, then the final at 20 match-minutes a second; a new page opens once the final's first goal is in.
    await runReplay(sink, matches.slice(31, 63), { speed: 0 })
    let firstGoal = (): void => {}
    const scored = new Promise<void>((resolve) => { firstGoal = resolve })
    const replay = runReplay(sink, [final], { speed: 20, onProgress: (_p, e) => { if (e.event.type === 'goal') firstGoal() } })
    await scored
    const { page, errors } = await newPage(browser)
    await page.goto(`${base}?match=${final.id}`)
    await expectRows(page, () => sink.states)
    // History: what was acknowledged so far, in order.
    const finalSent = (): string[] => sink.sent.filter((s) => s.match === final.id && sink.ackedAt.has(`${final.id}/${s.id}`)).map((s) => s.id)
    await expect.poll(async () => (await feedLines(page)).map((l) => l.id).join() === finalSent().join(), { timeout: 10_000, interval: 50 }).toBe(true)
    const loadedAt = Date.now()
    const shownAtLoad = new Set((await feedLines(page)).map((l) => l.id))
    expect(shownAtLoad.has('goal-1')).toBe(true)

    // The next goal, live: painted within a second of the moment the replay handed it to the publisher.
    const nextGoal = final.events.map((t) => t.event).find((e) => e.type === 'goal' && !shownAtLoad.has(e.id))
    expect(nextGoal).toBeDefined()
    const key = `${final.id}/${nextGoal?.id ?? ''}`
    await expect.poll(async () => (await rendered(page)).find((r) => r.id === nextGoal?.id && r.paintedAt > 0), { timeout: 20_000, interval: 50 }).toBeDefined()
    const line = (await rendered(page)).find((r) => r.id === nextGoal?.id)
    const sentAt = sink.sentAt.get(key) ?? NaN
    expect(sentAt).toBeGreaterThan(loadedAt)
    const publishToRender = (line?.paintedAt ?? NaN) - sentAt
    console.log(`publish to render of ${key}: ${publishToRender} ms (in the DOM after ${(line?.at ?? NaN) - sentAt} ms)`)
    expect(publishToRender).toBeLessThan(1000)

    // The end: 3–3 after extra time, 4–2 on penalties; every event of the feed once, in order.
    expect((await replay).aborted).toBe(false)
    await expectRows(page, () => sink.states)
    expect((await matchRows(page)).find((r) => r.id === final.id)).toMatchObject({ status: 'finished', score: '3–3 (4–2 pens)', text: 'Pens 4–2' })
    const finalFeed = await brokerFeed(reference, final.id, final.events.length)
    await expect.poll(async () => await feedLines(page)).toEqual(finalFeed)
    expect(finalFeed.map((l) => l.type)).toEqual(expect.arrayContaining(['extratime', 'extratime_end', 'shootout', 'end']))
    expect(await page.$$eval('#feed li.goal .mark', (marks) => marks.map((m) => m.textContent))).toEqual(['pen.', 'pen.', 'pen.'])
    expect(await page.textContent('#feed li[data-type="shootout"]')).toContain('Penalty shoot-out: 4–2')
    expect(await page.textContent('#feed li[data-type="end"]')).toContain('after extra time')
    expect(await page.textContent('#match .match-head h2')).toBe('Argentina3–3France')
    expect(await page.textContent('#match .match-head .status')).toBe('Pens 4–2')
    // Each line added once: no event rendered twice on either page (the early one showed two feeds, the second to
    // its end since).
    const midFeedEnd = await brokerFeed(reference, mid.id, mid.events.length)
    expect(await feedLines(early)).toEqual(midFeedEnd)
    expect((await rendered(early)).length).toBe(firstFeed.length + midFeedEnd.length)
    expect((await rendered(page)).map((r) => r.seq)).toEqual(finalFeed.map((l) => l.seq))
    await screenshot(page, 'scoreboard-end')
    expect(earlyErrors).toEqual([])
    expect(errors).toEqual([])
  })
})
