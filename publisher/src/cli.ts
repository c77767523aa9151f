/**
 * `tribune replay <file> [options]`: replays a World Cup JSON file into a broker as live match events
 * (dispatched from bin/tribune.js). Exit codes: 0 done, 1 unreadable or malformed file / connection or publish
 * failure, 2 bad command line, 130 interrupted (SIGINT/SIGTERM).
 *
 * `--url` repeated gives the nodes of one cluster, as it always did (a publisher moves between them with its session);
 * `--region URL[,URL...]` repeated gives one region each (independent clusters, every message published to each). Two
 * flags rather than a new meaning for `--url`: a node list read as regions would publish every message once per node
 * into the same cluster, and the cluster tests and scripts that give `--url` twice mean nodes.
 */
import { parseFlags } from '../../client/src/flags.js'
import { withoutPassword } from '../../client/src/targets.js'
import { Publisher } from './index.js'
import { runReplay, type ReplayProgress } from './replay/run.js'
import { buildTimeline, replayDurationMs } from './replay/timeline.js'
import { readWorldCupFile, WorldCupFormatError, type WorldCup } from './replay/worldcup.js'

/** Where replayMain writes; defaults to the process streams. Progress goes to stderr, the summary to stdout. */
export interface ReplayIo {
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown, isTTY?: boolean }
}

/** Default broker URL. */
export const DEFAULT_URL = 'mqtt://127.0.0.1:1883'
/** Default speed, match-minutes per wall second. */
export const DEFAULT_SPEED = 10

const USAGE = `Usage: tribune replay <file> [options]

Replays a World Cup JSON file (openfootball worldcup.json format) into a Tribune broker:
retained matches/<id>/state and QoS 1 events on matches/<id>/events.

Options:
  --url URL          broker URL (default ${DEFAULT_URL}; mqtt, mqtts, ws, wss); repeat it for
                     several brokers (the nodes of a cluster): tried in a random order, the
                     replay moves to the next one when one fails, its unacknowledged events resent
  --region URL[,URL...]
                     one region (an independent cluster, its own Redis): its nodes' URLs, comma-
                     separated; repeat it for each region. Every event and state goes to every
                     region, each over its own connection and queue: a region that is down does
                     not hold up the others and gets what it missed, in order, when it is back.
                     At the end the replay waits until every region has acknowledged everything
                     (Ctrl-C gives up). Not with --url
  --speed F          match-minutes per second of wall time (default ${DEFAULT_SPEED});
                     0 = as fast as the broker acknowledges; idle gaps between matches are skipped
  --username U       MQTT user name
  --password P       MQTT password
  --client-id ID     MQTT client id (default: random per run)
  -h, --help         show this help

Exit codes: 0 done, 1 bad file or broker failure, 2 bad command line, 130 interrupted.
`

const PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'])

/** Validated command line. */
interface ReplayArgs {
  file: string
  /** One URL list per region (one region for --url). */
  regions: string[][]
  speed: number
  username?: string
  password?: string
  clientId?: string
}

class UsageError extends Error {}

/**
 * Parses the replay command line (client/src/flags.ts: node:util parseArgs, strict).
 * @returns the arguments, or 'help'
 * @throws UsageError naming the unknown flag or the bad value
 */
function parseReplayArgs (argv: string[]): ReplayArgs | 'help' {
  let parsed
  try {
    parsed = parseFlags({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string', multiple: true },
        region: { type: 'string', multiple: true },
        speed: { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
        'client-id': { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help === true) return 'help'
  if (positionals.length === 0) throw new UsageError('missing <file> (a World Cup JSON file)')
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}" (only one <file>)`)
  if (values.url !== undefined && values.region !== undefined) {
    throw new UsageError('--url and --region do not go together: --url gives the nodes of one cluster, --region URL[,URL...] one region each (give every region with --region)')
  }
  const regions = values.region !== undefined
    ? values.region.map((list) => list.split(',').map((url) => url.trim()).filter((url) => url !== ''))
    : [values.url ?? [DEFAULT_URL]]
  const flag = values.region !== undefined ? '--region' : '--url'
  const seen = new Set<string>()
  for (const [index, urls] of regions.entries()) {
    if (urls.length === 0) throw new UsageError(`--region: region ${index} has no URL (give --region URL[,URL...])`)
    for (const url of urls) {
      let protocol: string
      try {
        protocol = new URL(url).protocol
      } catch {
        throw new UsageError(`${flag}: not a URL: "${withoutPassword(url)}"`)
      }
      if (!PROTOCOLS.has(protocol)) throw new UsageError(`${flag}: unsupported protocol "${protocol}" in "${withoutPassword(url)}" (use mqtt, mqtts, ws or wss)`)
      if (values.region !== undefined && seen.has(url)) throw new UsageError(`--region: "${withoutPassword(url)}" is in two regions (a node belongs to one region)`)
      seen.add(url)
    }
  }
  const speedText = values.speed ?? String(DEFAULT_SPEED)
  const speed = /^\s*\d*\.?\d+(e[+-]?\d+)?\s*$/i.test(speedText) ? Number(speedText) : NaN
  if (!Number.isFinite(speed) || speed < 0) throw new UsageError(`--speed: expected a number >= 0, got "${speedText}"`)
  const args: ReplayArgs = { file: positionals[0], regions, speed }
  if (values.username !== undefined) args.username = values.username
  if (values.password !== undefined) args.password = values.password
  if (values['client-id'] !== undefined) {
    if (values['client-id'] === '') throw new UsageError('--client-id: must not be empty')
    args.clientId = values['client-id']
  }
  return args
}

/** Names a region and its URLs for messages: `region 1 (mqtt://b1, mqtt://b2)`, passwords hidden. */
function regionName (index: number, urls: readonly string[]): string {
  return `region ${index} (${urls.map(withoutPassword).join(', ')})`
}

/** "2022-11-20 19:47Z" */
function simClock (ms: number): string {
  return Number.isNaN(ms) ? '--' : new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + 'Z'
}

/** "1m 23s" / "4.2s" */
function duration (ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  const s = Math.round(ms / 1000)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`
}

/**
 * After the last message: waits until every region has acknowledged everything (a region that is down gets it when it
 * is back), saying which regions it waits for; stops waiting when `signal` aborts.
 * @returns how many messages were still not acknowledged by every region when it stopped (0: all delivered)
 */
async function waitForRegions (publisher: Publisher, signal: AbortSignal, err: (line: string) => void): Promise<number> {
  const waiting = publisher.regions.filter((r) => r.queued > 0)
  if (waiting.length === 0) return 0
  if (signal.aborted) return Math.max(...waiting.map((r) => r.queued))
  for (const r of waiting) err(`tribune replay: waiting for ${regionName(r.index, r.urls)} to acknowledge ${r.queued} messages (Ctrl-C gives up)`)
  let onAbort = (): void => {}
  const aborted = new Promise<void>((resolve) => {
    onAbort = () => { resolve() }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    await Promise.race([publisher.drain(), aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
  return Math.max(0, ...publisher.regions.map((r) => r.queued))
}

/**
 * Runs `tribune replay` (see USAGE): validates the file, connects a Publisher, replays the matches, prints
 * progress to stderr (one updating line on a terminal, otherwise a line per finished match) and a summary line
 * to stdout.
 * @param argv the arguments after `replay`
 * @param io output streams (tests pass their own)
 * @returns the exit code: 0 done, 1 bad file or broker failure, 2 bad command line, 130 interrupted
 */
export async function replayMain (argv: string[], io: ReplayIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const err = (line: string): void => { io.stderr.write(`${line}\n`) }
  let args: ReplayArgs
  try {
    const parsed = parseReplayArgs(argv)
    if (parsed === 'help') {
      io.stdout.write(USAGE)
      return 0
    }
    args = parsed
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    err(`tribune replay: ${e.message}`)
    err('Run `tribune replay --help` for usage.')
    return 2
  }

  let worldCup: WorldCup
  try {
    worldCup = await readWorldCupFile(args.file)
  } catch (e) {
    if (e instanceof WorldCupFormatError) err(`tribune replay: ${args.file}: ${e.message}`)
    else err(`tribune replay: cannot read ${args.file}: ${(e as Error).message}`)
    return 1
  }

  const tty = io.stderr.isTTY === true
  const several = args.regions.length > 1
  const where = several
    ? args.regions.map((urls, i) => regionName(i, urls)).join(' and ')
    : args.regions[0].map(withoutPassword).join(', ')
  /** "region 1: " with several regions, else nothing. */
  const inRegion = (region: number): string => several ? `region ${region}: ` : ''
  let publisher: Publisher | undefined
  try {
    publisher = await Publisher.connect(several ? { regions: args.regions } : args.regions[0], {
      clientId: args.clientId,
      username: args.username,
      password: args.password,
      onConnectionChange: (up, region) => {
        const url = withoutPassword(publisher?.regions[region]?.url ?? '')
        err(`${tty ? '\r\x1b[2K' : ''}tribune replay: ${inRegion(region)}${up ? `reconnected to ${url}` : `connection lost to ${url}, retrying`}`)
      },
      onReconnecting: ({ url, delayMs, refused, region }) => {
        if (refused || (args.regions[region ?? 0]?.length ?? 0) > 1) err(`${tty ? '\r\x1b[2K' : ''}tribune replay: ${inRegion(region ?? 0)}${refused ? 'the broker is busy; ' : ''}next attempt on ${withoutPassword(url)} in ${delayMs} ms`)
      },
      onError: (e, region) => {
        if (several) err(`${tty ? '\r\x1b[2K' : ''}tribune replay: ${inRegion(region)}${e.message}`)
      }
    })
  } catch (e) {
    err(`tribune replay: cannot connect to ${where}: ${(e as Error).message}`)
    return 1
  }

  const total = worldCup.matches.length
  const timeline = buildTimeline(worldCup.matches)
  const eventCount = timeline.entries.length
  const planned = args.speed > 0 ? `, about ${duration(replayDurationMs(timeline, args.speed))} at speed ${args.speed}` : ', as fast as acknowledged'
  err(`tribune replay: ${total} matches, ${eventCount} events${planned}` +
    (timeline.gaps.length > 0 ? ` (${timeline.gaps.length} idle gaps skipped)` : ''))

  const controller = new AbortController()
  const stop = (): void => { controller.abort() }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  let lastDraw = 0
  const draw = (p: Readonly<ReplayProgress>, force = false): void => {
    const now = Date.now()
    if (!force && now - lastDraw < 100) return
    lastDraw = now
    io.stderr.write(`\r\x1b[2Kmatches ${p.matchesDone}/${p.matchesTotal} done, ${p.events}/${eventCount} events published, sim ${simClock(p.simTime)}`)
  }
  const started = performance.now()
  let code = 0
  try {
    const summary = await runReplay(publisher, worldCup.matches, {
      speed: args.speed,
      signal: controller.signal,
      onProgress: tty ? (p) => { draw(p) } : undefined,
      onMatchFinished: (match, p) => {
        if (tty) {
          draw(p, true)
          return
        }
        const pens = match.penalties !== undefined ? ` (${match.penalties[0]}-${match.penalties[1]} pens)` : ''
        err(`finished ${p.matchesDone}/${p.matchesTotal}: ${match.id} ${match.team1} ${match.final[0]}-${match.final[1]} ${match.team2}${pens}`)
      }
    })
    if (tty) io.stderr.write('\n')
    const behind = several && !summary.aborted ? await waitForRegions(publisher, controller.signal, err) : 0
    const elapsed = duration(performance.now() - started)
    const counts = `${summary.matches}/${total} matches, ${summary.events} events, ${summary.states} states to ${where} in ${elapsed}`
    if (behind > 0) {
      io.stdout.write(`replay interrupted: ${counts}; ${behind} messages never reached every region\n`)
      code = 130
    } else if (summary.aborted) {
      io.stdout.write(`replay interrupted: ${counts}\n`)
      code = 130
    } else {
      io.stdout.write(`replayed ${counts}\n`)
    }
  } catch (e) {
    if (tty) io.stderr.write('\n')
    err(`tribune replay: publish failed: ${(e as Error).message}`)
    code = 1
  } finally {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
    await publisher.close()
  }
  return code
}
