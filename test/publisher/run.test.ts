/**
 * runReplay against an in-memory sink: what goes where, in which order, and stopping. No broker needed.
 */
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runReplay, scheduledState, stateAfter, type ReplaySink } from '../../publisher/src/replay/run.js'
import { readWorldCupFile } from '../../publisher/src/replay/worldcup.js'

const FILE_2022 = fileURLToPath(new URL('../../publisher/data/worldcup-2022.json', import.meta.url))

interface Sent { kind: 'event' | 'state', topic: string, body: any }

/** Records what would be published; each publish resolves after a microtask, like a fast broker. */
function memorySink (onSend?: (sent: Sent[]) => void): ReplaySink & { sent: Sent[] } {
  const sent: Sent[] = []
  const record = async (kind: Sent['kind'], topic: string, body: object): Promise<void> => {
    sent.push({ kind, topic, body: structuredClone(body) })
    onSend?.(sent)
    await Promise.resolve()
  }
  return {
    sent,
    publishEvent: async (topic, event) => { await record('event', topic, event) },
    setState: async (topic, state) => { await record('state', topic, state) }
  }
}

describe('runReplay', () => {
  it('replays the 2022 World Cup: states and events on the contract topics', async () => {
    const wc = await readWorldCupFile(FILE_2022)
    const sink = memorySink()
    const summary = await runReplay(sink, wc.matches, { speed: 0 })
    const goals = wc.matches.reduce((n, m) => n + m.final[0] + m.final[1], 0)
    const events = wc.matches.reduce((n, m) => n + m.events.length, 0)
    expect(summary).toEqual({ matches: 64, events, states: 64 * 3 + goals, aborted: false })
    expect(sink.sent.slice(0, 64).every((s) => s.kind === 'state' && s.body.status === 'scheduled')).toBe(true)

    for (const m of wc.matches) {
      const mine = sink.sent.filter((s) => s.topic.startsWith(`matches/${m.id}/`))
      const evs = mine.filter((s) => s.kind === 'event')
      expect(evs.every((s) => s.topic === `matches/${m.id}/events`)).toBe(true)
      expect(evs.map((s) => s.body)).toEqual(m.events.map((e) => e.event))
      const states = mine.filter((s) => s.kind === 'state').map((s) => s.body)
      expect(states.map((s) => s.status)).toEqual(['scheduled', 'live', ...Array(m.final[0] + m.final[1]).fill('live'), 'finished'])
      const last = states[states.length - 1]
      expect(last.score).toEqual(m.score.et ?? m.score.ft)
      if (m.score.p !== undefined) expect(last.penalties).toEqual(m.score.p)
      else expect(last).not.toHaveProperty('penalties')
      expect(last).toMatchObject({ id: m.id, team1: m.team1, team2: m.team2, date: m.date })
    }
    // Kickoff of the opener (2022-11-20 19:00) is the first event.
    expect(sink.sent[64]).toMatchObject({ kind: 'event', topic: 'matches/2022-11-20-qatar-ecuador/events', body: { type: 'kickoff' } })
  })

  it('stops on abort, between and during publishes', async () => {
    const wc = await readWorldCupFile(FILE_2022)
    const controller = new AbortController()
    const sink = memorySink((sent) => { if (sent.length === 100) controller.abort() })
    const summary = await runReplay(sink, wc.matches, { speed: 0, signal: controller.signal })
    expect(summary.aborted).toBe(true)
    expect(sink.sent).toHaveLength(100)

    // A publish that never completes (broker away) does not hold up the abort.
    const stuck = new AbortController()
    const never: ReplaySink = {
      publishEvent: async () => await new Promise<void>(() => {}),
      setState: async () => {}
    }
    setTimeout(() => { stuck.abort() }, 50)
    const s2 = await runReplay(never, wc.matches, { speed: 0, signal: stuck.signal })
    expect(s2).toEqual({ matches: 0, events: 0, states: 64, aborted: true })

    // Abort while waiting for the next event at a slow speed.
    const slow = new AbortController()
    setTimeout(() => { slow.abort() }, 50)
    const started = Date.now()
    const s3 = await runReplay(memorySink(), wc.matches, { speed: 0.001, signal: slow.signal })
    expect(Date.now() - started).toBeLessThan(2000)
    expect(s3).toMatchObject({ events: 1, aborted: true })
  })

  it('reports progress and finished matches', async () => {
    const wc = await readWorldCupFile(FILE_2022)
    const finished: string[] = []
    let calls = 0
    let lastSim = 0
    await runReplay(memorySink(), wc.matches.slice(0, 3), {
      onProgress: (p, entry) => {
        calls++
        expect(p.simTime).toBe(entry.at)
        expect(p.simTime).toBeGreaterThanOrEqual(lastSim)
        lastSim = p.simTime
      },
      onMatchFinished: (m, p) => { finished.push(`${p.matchesDone}:${m.id}`) }
    })
    expect(calls).toBe(wc.matches.slice(0, 3).reduce((n, m) => n + m.events.length, 0))
    expect(finished).toEqual(['1:2022-11-20-qatar-ecuador', '2:2022-11-21-senegal-netherlands', '3:2022-11-25-qatar-senegal'])
  })

  it('rejects a negative speed', async () => {
    await expect(runReplay(memorySink(), [], { speed: -1 })).rejects.toThrow(RangeError)
  })

  it('builds states from events', async () => {
    const wc = await readWorldCupFile(FILE_2022)
    const final = wc.matches[63]
    expect(scheduledState(final)).toEqual({
      id: '2022-12-18-argentina-france', team1: 'Argentina', team2: 'France', date: '2022-12-18',
      kickoff: '2022-12-18T18:00:00.000Z', round: 'Final', ground: 'Lusail Iconic Stadium, Lusail', status: 'scheduled', score: [0, 0]
    })
    const byType = (t: string): any => final.events.find((e) => e.event.type === t)?.event
    expect(stateAfter(final, byType('halftime'))).toBeUndefined()
    expect(stateAfter(final, byType('end'))).toMatchObject({ status: 'finished', score: [3, 3], penalties: [4, 2] })
  })
})
