/**
 * Plays a validated World Cup into a broker through a {@link ReplaySink} (normally a Publisher):
 *   1. retained `matches/<id>/state` with status "scheduled", score [0, 0] for every match (file order);
 *   2. the merged timeline (timeline.ts) in order, each event to `matches/<id>/events` (QoS 1), waiting until
 *      it is due at the chosen speed; after `kickoff` the state becomes "live", after each `goal` it carries the
 *      new score, after `end` it is "finished" with the final score and `penalties` when a shoot-out was played.
 * Everything is sent one message at a time, each awaited until acknowledged, so a match's messages reach the
 * broker in order. Topics and payloads: the README's contract section.
 */
import { eventsTopic, stateTopic } from '../topics.js'
import type { MatchEvent, MatchState } from './model.js'
import { buildTimeline, wallDelayMs, type TimelineEntry } from './timeline.js'
import type { ReplayMatch } from './worldcup.js'

/** Where the replay sends messages; {@link Publisher} implements it. Both resolve once acknowledged. */
export interface ReplaySink {
  publishEvent: (feedTopic: string, event: object) => Promise<void>
  setState: (topic: string, state: object) => Promise<void>
}

/** Counters reported while replaying. */
export interface ReplayProgress {
  matchesTotal: number
  /** Matches whose `end` event has been published. */
  matchesDone: number
  /** Events published (acknowledged). */
  events: number
  /** State messages published (acknowledged), including the initial "scheduled" ones. */
  states: number
  /** Simulated real time of the last published event, ms since 1970 UTC (NaN before the first). */
  simTime: number
}

/** Options of {@link runReplay}. */
export interface ReplayOptions {
  /** Match-minutes per wall second; 0 (default) = as fast as acknowledgements allow. See timeline.ts. */
  speed?: number
  /** Stops the replay: no new message is sent and runReplay resolves with `aborted: true`. */
  signal?: AbortSignal
  /** Called after each published event (and its state, if any). */
  onProgress?: (progress: Readonly<ReplayProgress>, entry: TimelineEntry) => void
  /** Called when a match's `end` event (and final state) has been published. */
  onMatchFinished?: (match: ReplayMatch, progress: Readonly<ReplayProgress>) => void
}

/** What a replay did. */
export interface ReplaySummary {
  /** Matches played to their end. */
  matches: number
  /** Events published. */
  events: number
  /** States published. */
  states: number
  /** True when stopped by the abort signal before the end. */
  aborted: boolean
}

/**
 * The retained state of a match before kickoff: status "scheduled", score [0, 0].
 * Extra fields: `kickoff` (ISO UTC), and `round`, `group`, `ground` when the file has them.
 */
export function scheduledState (match: ReplayMatch): MatchState {
  const state: MatchState = {
    id: match.id,
    team1: match.team1,
    team2: match.team2,
    date: match.date,
    kickoff: new Date(match.kickoff).toISOString(),
    status: 'scheduled',
    score: [0, 0]
  }
  if (match.round !== undefined) state.round = match.round
  if (match.group !== undefined) state.group = match.group
  if (match.ground !== undefined) state.ground = match.ground
  return state
}

/**
 * The state to publish after an event, or undefined when the event does not change it.
 * kickoff -> "live" [0, 0]; goal -> "live" with the new score; end -> "finished" with the final score and
 * `penalties` when a shoot-out was played.
 */
export function stateAfter (match: ReplayMatch, event: MatchEvent): MatchState | undefined {
  const base = scheduledState(match)
  switch (event.type) {
    case 'kickoff':
    case 'goal':
      return { ...base, status: 'live', score: [event.score[0], event.score[1]] }
    case 'end': {
      const state: MatchState = { ...base, status: 'finished', score: [event.score[0], event.score[1]] }
      if (event.penalties !== undefined) state.penalties = [event.penalties[0], event.penalties[1]]
      return state
    }
    default:
      return undefined
  }
}

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/**
 * Waits for `work`; returns false instead if `signal` aborts first. A later rejection of `work` is then ignored
 * (the caller is shutting down and closing the publisher rejects what is in flight).
 */
async function unlessAborted (work: Promise<void>, signal?: AbortSignal): Promise<boolean> {
  if (signal === undefined) {
    await work
    return true
  }
  if (signal.aborted) {
    work.catch(() => {})
    return false
  }
  let onAbort = (): void => {}
  const aborted = new Promise<false>((resolve) => {
    onAbort = () => { resolve(false) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    const done = await Promise.race([work.then(() => true as const), aborted])
    if (!done) work.catch(() => {})
    return done
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/**
 * Replays matches into a sink (see the module comment).
 * @param sink usually a connected Publisher
 * @param matches validated matches (from readWorldCupFile / parseWorldCup)
 * @returns counts of what was published; `aborted` when the signal stopped it
 * @throws the first publish error (e.g. PublisherClosedError when the publisher was closed mid-replay)
 */
export async function runReplay (sink: ReplaySink, matches: readonly ReplayMatch[], opts: ReplayOptions = {}): Promise<ReplaySummary> {
  const speed = opts.speed ?? 0
  wallDelayMs(0, speed) // validates speed
  const { signal } = opts
  const timeline = buildTimeline(matches)
  const progress: ReplayProgress = { matchesTotal: matches.length, matchesDone: 0, events: 0, states: 0, simTime: NaN }
  const summary = (aborted: boolean): ReplaySummary =>
    ({ matches: progress.matchesDone, events: progress.events, states: progress.states, aborted })

  for (const match of matches) {
    if (!await unlessAborted(sink.setState(stateTopic(match.id), scheduledState(match)), signal)) return summary(true)
    progress.states++
  }
  const t0 = performance.now()
  for (const entry of timeline.entries) {
    const wait = t0 + wallDelayMs(entry.playMinutes, speed) - performance.now()
    if (wait > 0) await sleep(wait, signal)
    if (signal?.aborted === true) return summary(true)
    const { match, event } = entry
    if (!await unlessAborted(sink.publishEvent(eventsTopic(match.id), event), signal)) return summary(true)
    progress.events++
    progress.simTime = entry.at
    const state = stateAfter(match, event)
    if (state !== undefined) {
      if (!await unlessAborted(sink.setState(stateTopic(match.id), state), signal)) return summary(true)
      progress.states++
    }
    if (event.type === 'end') {
      progress.matchesDone++
      opts.onMatchFinished?.(match, progress)
    }
    opts.onProgress?.(progress, entry)
  }
  return summary(false)
}
