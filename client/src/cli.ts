// `tribune watch <topic> [options]`: print one JSON line per message of a feed or a topic (Node only).
// Dispatched by bin/tribune.js (contract: export `watchMain(argv: string[]): Promise<number>`).

import process from 'node:process'
import { parseFlags } from './flags.js'
import type { FeedEnvelope, ResetNotice } from './envelope.js'
import { assertFeedTopic, isFeedLikeTopic, isValidTopicFilter, parseFeedStart, type FeedStart } from './replay.js'
import { withoutPassword } from './targets.js'
import { Viewer, SubscriptionRefusedError, DEFAULT_REGION_TIMEOUT_MS, type StateMessage, type ViewerOptions } from './viewer.js'

export { withoutPassword }

/** Default broker URL: the broker's WebSocket listener on this machine. */
export const DEFAULT_WATCH_URL = 'ws://127.0.0.1:8080/mqtt'

const SUPPORTED_PROTOCOLS = new Set(['ws:', 'wss:', 'mqtt:', 'mqtts:', 'tcp:', 'ssl:'])

const USAGE = `Usage: tribune watch <topic> [options]

Watch a topic or a feed and print one JSON line per message on stdout (status and errors go to stderr).
A topic ending in /events (or any topic with --feed) is a feed, watched through the broker's $replay
subscriptions, each message printed once and in seq order as {"seq","epoch","ts","data"}, plus a
{"reset":true,"epoch","reason"} line when the feed restarts. Other topics (filters with + and # allowed)
are subscribed plainly and printed as {"topic","payload","retain"} (payload: parsed JSON, else the text).

Options:
  --url <url>      broker URL (default ${DEFAULT_WATCH_URL}; mqtt://host:1883 works too);
                   credentials go in it: mqtt://<user>:<password>@host:1883 (never printed).
                   Repeat it to give several brokers (e.g. the nodes of a cluster): they are tried
                   in a random order, and the watch moves to the next one when one fails or is busy
  --region <url>[,<url>...]
                   one region (an independent cluster) given by its nodes' URLs, comma-separated;
                   repeat it for each region, your own first. The watch stays in a region while it
                   can connect there; after --region-timeout without a connection it moves to the
                   next region, where a feed resumes by event id (its recent history replayed, only
                   the events not printed yet printed, in order). Not with --url
  --region-timeout <ms>
                   time without a connection before moving region (default ${DEFAULT_REGION_TIMEOUT_MS})
  --from <start>   feeds only: all (default), last-<n>, or after-<seq>@<epoch>
  --feed           watch <topic> as a feed even if it does not end in /events
  --count <n>      exit after n messages (reset lines are not counted)
  -h, --help       show this help

Runs until SIGINT or SIGTERM (exit 0). Exit 2 on bad arguments, 1 if the broker refuses the login
(CONNACK 4 or 5) or the subscription (SUBACK 0x80).`

/** Output and stop hooks of {@link watchMain}; defaults write to process.stdout / stderr and stop on signals. */
export interface WatchIO {
  /** Writes one line (without the newline) to the data output. */
  readonly out: (line: string) => void
  /** Writes one line (without the newline) to the status/error output. */
  readonly err: (line: string) => void
  /** Stops watching (exit 0) when aborted, in addition to SIGINT/SIGTERM. */
  readonly signal?: AbortSignal
  /** Extra Viewer options (tests: backoff, client id). */
  readonly viewer?: ViewerOptions
}

interface WatchArgs {
  readonly topic: string
  /** One URL list per region (one region for --url). */
  readonly regions: ReadonlyArray<readonly string[]>
  readonly regionTimeoutMs: number | undefined
  readonly feed: boolean
  readonly from: FeedStart
  readonly count: number | undefined
}

class UsageError extends Error {}

function parseWatchArgs (argv: string[]): WatchArgs | 'help' {
  let parsed
  try {
    parsed = parseFlags({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string', multiple: true },
        region: { type: 'string', multiple: true },
        'region-timeout': { type: 'string' },
        from: { type: 'string' },
        feed: { type: 'boolean' },
        count: { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    })
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err))
  }
  const { values, positionals } = parsed
  if (values.help === true) return 'help'
  if (positionals.length === 0) throw new UsageError('missing <topic>')
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}" (one <topic> only)`)
  const topic = positionals[0]
  if (values.url !== undefined && values.region !== undefined) {
    throw new UsageError('--url and --region do not go together: --url gives the nodes of one cluster, --region <url>[,<url>...] one region each (give every region with --region)')
  }
  const flag = values.region !== undefined ? '--region' : '--url'
  const regions = values.region !== undefined
    ? values.region.map((list) => list.split(',').map((url) => url.trim()).filter((url) => url !== ''))
    : [values.url ?? [DEFAULT_WATCH_URL]]
  const seen = new Set<string>()
  for (const [index, urls] of regions.entries()) {
    if (urls.length === 0) throw new UsageError(`--region: region ${index} has no URL (give --region <url>[,<url>...])`)
    for (const url of urls) {
      let protocol: string
      try {
        protocol = new URL(url).protocol
      } catch {
        throw new UsageError(`${flag}: invalid URL "${withoutPassword(url)}"`)
      }
      if (!SUPPORTED_PROTOCOLS.has(protocol)) {
        throw new UsageError(`${flag}: unsupported protocol "${protocol}" (use ws://, wss://, mqtt:// or mqtts://)`)
      }
      if (values.region !== undefined && seen.has(url)) throw new UsageError(`--region: "${withoutPassword(url)}" is in two regions (a node belongs to one region)`)
      seen.add(url)
    }
  }
  let regionTimeoutMs: number | undefined
  if (values['region-timeout'] !== undefined) {
    const text = values['region-timeout']
    regionTimeoutMs = Number(text)
    if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(regionTimeoutMs) || regionTimeoutMs < 1) {
      throw new UsageError(`--region-timeout must be a positive integer (ms), got "${text}"`)
    }
    if (regions.length < 2) throw new UsageError('--region-timeout needs several regions (--region given twice or more)')
  }
  const feed = values.feed === true || isFeedLikeTopic(topic)
  if (feed) {
    try {
      assertFeedTopic(topic)
    } catch (err) {
      throw new UsageError(`${values.feed === true ? '--feed: ' : ''}${err instanceof Error ? err.message : String(err)}`)
    }
  } else if (!isValidTopicFilter(topic)) {
    throw new UsageError(`invalid topic filter "${topic}"`)
  }
  let from: FeedStart = 'all'
  if (values.from !== undefined) {
    if (!feed) throw new UsageError('--from applies to feeds only (a topic ending in /events, or add --feed)')
    try {
      from = parseFeedStart(values.from)
    } catch (err) {
      throw new UsageError(`--from: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  let count: number | undefined
  if (values.count !== undefined) {
    count = Number(values.count)
    if (!/^[0-9]+$/.test(values.count) || !Number.isSafeInteger(count) || count < 1) {
      throw new UsageError(`--count must be a positive integer, got "${values.count}"`)
    }
  }
  return { topic, regions, regionTimeoutMs, feed, from, count }
}

/** The printed line of a feed envelope, keys in contract order. */
function envelopeLine (envelope: FeedEnvelope): string {
  return JSON.stringify({ seq: envelope.seq, epoch: envelope.epoch, ts: envelope.ts, data: envelope.data })
}

function resetLine (notice: ResetNotice): string {
  return JSON.stringify({ reset: true, epoch: notice.epoch, reason: notice.reason })
}

function stateLine (message: StateMessage): string {
  return JSON.stringify({ topic: message.topic, payload: message.payload, retain: message.retain })
}

function defaultIO (): WatchIO {
  return {
    out: (line) => { process.stdout.write(`${line}\n`) },
    err: (line) => { process.stderr.write(`${line}\n`) }
  }
}

/**
 * `tribune watch <topic> [--url URL]... | [--region URL[,URL...]]... [--region-timeout MS] [--from all|last-<n>|after-<seq>@<epoch>]
 * [--feed] [--count N] [--help]`.
 *
 * Feed-like topics (ending in `/events`, or any topic with `--feed`) are watched with {@link Viewer.watchFeed}
 * (contract "Subscribing": `$replay/...` filters, resumed after reconnects) and printed as one envelope JSON line
 * per message plus one line per reset notice; other topics are subscribed plainly with {@link Viewer.watchState}
 * and printed as `{"topic","payload","retain"}` lines. Reconnects with backoff while the broker is unreachable; with
 * several `--url`s, tries them in a random order and moves to the next when one fails or refuses (busy); with several
 * `--region`s, does so within a region and moves to the next region after `--region-timeout` without a connection.
 * @param argv the arguments after `watch`.
 * @param io output/stop hooks (defaults: process stdout/stderr, SIGINT/SIGTERM).
 * @returns exit code: 0 after SIGINT/SIGTERM/abort or --count messages, 1 if the broker refused the
 *   subscription, 2 on bad arguments (the message names the flag).
 */
export async function watchMain (argv: string[], io: WatchIO = defaultIO()): Promise<number> {
  let args: WatchArgs | 'help'
  try {
    args = parseWatchArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.err(`tribune watch: ${err.message}`)
    io.err('Run `tribune watch --help` for usage.')
    return 2
  }
  if (args === 'help') {
    io.out(USAGE)
    return 0
  }
  const { topic, regions, regionTimeoutMs, feed, from, count } = args
  const several = regions.length > 1
  /** The URLs the watch may use: several means "say which one" in status lines. */
  const urls = regions.flat()

  let viewer: Viewer
  try {
    viewer = Viewer.connect(several ? { regions } : regions[0], {
      ...(regionTimeoutMs !== undefined ? { regionTimeoutMs } : {}),
      ...io.viewer
    })
  } catch (err) {
    io.err(`tribune watch: ${several ? '--region' : '--url'}: ${err instanceof Error ? err.message : String(err)}`)
    return 2
  }

  return await new Promise<number>((resolve) => {
    let printed = 0
    let finished = false
    const onSignal = (): void => { void finish(0) }
    const onAbort = (): void => { void finish(0) }
    const onStdoutError = (err: NodeJS.ErrnoException): void => {
      // A closed pipe (e.g. `| head`) ends the watch quietly.
      if (err.code !== 'EPIPE') io.err(`tribune watch: stdout: ${err.message}`)
      void finish(err.code === 'EPIPE' ? 0 : 1)
    }
    const finish = async (code: number): Promise<void> => {
      if (finished) return
      finished = true
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      process.stdout.off('error', onStdoutError)
      io.signal?.removeEventListener('abort', onAbort)
      await viewer.close()
      resolve(code)
    }
    const counted = (line: string): void => {
      if (finished || (count !== undefined && printed >= count)) return
      io.out(line)
      printed++
      if (count !== undefined && printed >= count) void finish(0)
    }

    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    process.stdout.on('error', onStdoutError)
    if (io.signal?.aborted === true) {
      void finish(0)
      return
    }
    io.signal?.addEventListener('abort', onAbort)

    let everConnected = false
    const hinted = new Set<string>()
    viewer.on('connect', (url) => {
      everConnected = true
      io.err(`tribune watch: connected to ${withoutPassword(url)}`)
    })
    viewer.on('region', ({ index, previous, urls: regionUrls, downMs }) => {
      io.err(`tribune watch: no connection in region ${previous} for ${downMs} ms: moving to region ${index} (${regionUrls.map(withoutPassword).join(', ')})`)
    })
    viewer.on('disconnect', (url) => { io.err(`tribune watch: disconnected${urls.length > 1 ? ` from ${withoutPassword(url)}` : ''}`) })
    viewer.on('reconnecting', ({ attempt, delayMs, url, lastUrl, refused }) => {
      if (!everConnected && !refused && !hinted.has(lastUrl)) {
        // No CONNACK yet: a refused or reset connection, or an HTTP answer other than the WebSocket upgrade.
        hinted.add(lastUrl)
        io.err(`tribune watch: no MQTT connection to ${withoutPassword(lastUrl)}: check the host, the port and, for ws:// or wss://, the path (the broker's default is /mqtt)`)
      }
      const to = urls.length > 1 ? ` to ${withoutPassword(url)}` : ''
      io.err(`tribune watch: reconnecting${to} in ${delayMs} ms (attempt ${attempt}${refused ? ', the broker was busy' : ''})`)
    })
    // Errors after the watch has finished (e.g. MQTT.js acknowledging a message on a closing socket) are not the user's concern.
    viewer.on('error', (err) => {
      if (finished) return
      const code = (err as { code?: unknown }).code
      if (code === 4 || code === 5) {
        // CONNACK 4 (bad user name or password) or 5 (not authorized), MQTT 3.1.1 section 3.2.2.3: retrying cannot help.
        io.err(`tribune watch: the broker refused the login (CONNACK ${code}: ${code === 4 ? 'bad user name or password' : 'not authorized'}); ` +
          'give credentials in the URL (mqtt://<user>:<password>@host:port) or use a listener that takes viewers without them')
        void finish(1)
        return
      }
      io.err(`tribune watch: ${err.message}`)
      if (err instanceof SubscriptionRefusedError) void finish(1)
      // Anything else (a ServerUnavailableError from a busy broker included) is reported; the viewer retries.
    })

    if (feed) {
      const subscription = viewer.watchFeed(topic, { from }, (envelope) => { counted(envelopeLine(envelope)) })
      subscription.on('reset', (notice) => { if (!finished) io.out(resetLine(notice)) })
      subscription.on('error', (err) => { if (!finished) io.err(`tribune watch: ${err.message}`) })
      subscription.on('state', (change) => {
        if (!finished) io.err(`tribune watch: feed ${change.new} (${change.reason})`)
        if (change.new === 'closed' && !finished) void finish(1)
      })
    } else {
      viewer.watchState(topic, (message) => { counted(stateLine(message)) })
    }
  })
}
