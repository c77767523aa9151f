/**
 * Shared by the page tests: the World Cup shipped in publisher/data replayed in parts (a replay sink that notes when
 * each message went out and what every match's state is), the feed as the broker holds it, and what a scoreboard page
 * shows (its match rows and feed lines, read from the DOM).
 */
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { expect } from 'vitest'
import type { MqttClient } from 'mqtt'
import { readWorldCupFile, type ReplayMatch } from '../../publisher/src/replay/worldcup.js'
import type { ReplaySink } from '../../publisher/src/replay/run.js'
import { waitFor } from '../helpers/mqtt.js'

export const WORLD_CUP = join(import.meta.dirname, '../../publisher/data/worldcup-2022.json')

/** The 64 matches in kickoff order; the last one is the final. */
export async function matchesByKickoff (): Promise<ReplayMatch[]> {
  const { matches } = await readWorldCupFile(WORLD_CUP)
  return [...matches].sort((a, b) => a.kickoff - b.kickoff || a.index - b.index)
}

/** A match's retained state as the test expects the page to show it. */
export interface ExpectedState {
  status: string
  score: [number, number]
  penalties?: [number, number]
}

/**
 * A replay sink around a publisher that notes, for each event, when it was handed to the publisher (before the
 * PUBLISH is sent) and acknowledged, and keeps every match's latest state as acknowledged.
 */
export class TimedSink implements ReplaySink {
  readonly #inner: ReplaySink
  /** `<match id>/<event id>` -> ms since 1970. */
  readonly sentAt = new Map<string, number>()
  readonly ackedAt = new Map<string, number>()
  /** Events in the order they were sent: match id, event id, type. */
  readonly sent: Array<{ match: string, id: string, type: string }> = []
  readonly states = new Map<string, ExpectedState>()

  constructor (inner: ReplaySink) {
    this.#inner = inner
  }

  async publishEvent (feedTopic: string, event: object): Promise<void> {
    const match = feedTopic.split('/')[1]
    const e = event as { id: string, type: string }
    const key = `${match}/${e.id}`
    this.sentAt.set(key, Date.now())
    this.sent.push({ match, id: e.id, type: e.type })
    await this.#inner.publishEvent(feedTopic, event)
    this.ackedAt.set(key, Date.now())
  }

  async setState (topic: string, state: object): Promise<void> {
    await this.#inner.setState(topic, state)
    const s = state as ExpectedState & { id: string }
    this.states.set(s.id, { status: s.status, score: s.score, ...(s.penalties !== undefined ? { penalties: s.penalties } : {}) })
  }
}

/** "2–1", "3–3 (4–2 pens)", "v" before kickoff: the page's score column for an expected state. */
export function shownScore (s: ExpectedState): string {
  if (s.status === 'scheduled') return 'v'
  const main = `${s.score[0]}–${s.score[1]}`
  return s.penalties === undefined ? main : `${main} (${s.penalties[0]}–${s.penalties[1]} pens)`
}

/** The match rows of a scoreboard page: id, status, score column, status text. */
export async function matchRows (page: Page): Promise<Array<{ id: string, status: string, score: string, text: string }>> {
  return await page.$$eval('[data-match].row', (rows) => rows.map((r) => ({
    id: (r as HTMLElement).dataset.match ?? '',
    status: (r as HTMLElement).dataset.status ?? '',
    score: r.querySelector('.score')?.textContent ?? '',
    text: r.querySelector('.status')?.textContent ?? ''
  })))
}

/**
 * Waits until the page's rows show every expected state (read again at each try: a replay may be running), in the
 * page's words: status and score column.
 */
export async function expectRows (page: Page, expected: () => ReadonlyMap<string, ExpectedState>, timeout = 10_000): Promise<void> {
  const want = (): Record<string, { status: string, score: string }> => Object.fromEntries([...expected()].map(([id, s]) => [id, { status: s.status, score: shownScore(s) }]))
  const shown = async (): Promise<Record<string, { status: string, score: string }>> => Object.fromEntries((await matchRows(page)).map((r) => [r.id, { status: r.status, score: r.score }]))
  const until = Date.now() + timeout
  let rows = await shown()
  while (JSON.stringify(sorted(rows)) !== JSON.stringify(sorted(want())) && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    rows = await shown()
  }
  expect(sorted(rows)).toEqual(sorted(want()))
}

const sorted = <T>(o: Record<string, T>): Array<[string, T]> => Object.entries(o).sort(([a], [b]) => a.localeCompare(b))

/** The feed lines of the selected match, oldest first: seq, event id, type. */
export async function feedLines (page: Page): Promise<Array<{ seq: number, id: string, type: string }>> {
  const lines = await page.$$eval('#feed li[data-seq]', (items) => items.map((li) => ({
    seq: Number((li as HTMLElement).dataset.seq),
    id: (li as HTMLElement).dataset.id ?? '',
    type: (li as HTMLElement).dataset.type ?? ''
  })))
  return lines.reverse()
}

/**
 * The whole feed of a match as the broker holds it: a `$replay/all` subscription on `client`, read until the history
 * and live messages stop (a marker: the count is stable over 300 ms after `minCount` arrived).
 * @returns the envelopes as {seq, id, type}, in arrival order
 */
export async function brokerFeed (client: MqttClient, matchId: string, minCount: number): Promise<Array<{ seq: number, id: string, type: string }>> {
  const filter = `$replay/all/matches/${matchId}/events`
  const messages: Array<{ topic: string, json: any }> = []
  client.on('message', (topic, payload) => { if (topic === filter) messages.push({ topic, json: JSON.parse(payload.toString()) }) })
  await client.subscribeAsync(filter, { qos: 1 })
  await waitFor(() => messages.length >= minCount, `${minCount} messages of ${matchId} from the broker`)
  let seen = -1
  while (seen !== messages.length) {
    seen = messages.length
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  await client.unsubscribeAsync(filter)
  return messages.map((m) => ({ seq: m.json.seq, id: m.json.data.id, type: m.json.data.type }))
}
