/**
 * `tribune demo`: the main job on one machine. Starts a broker node (embedded store, default ports) and replays a
 * World Cup file into it as live match events, prints the addresses of the pages (the scoreboard and the operations
 * page), then keeps serving until SIGINT/SIGTERM.
 */
import { parseFlags } from '../../client/src/flags.js'
import { fileURLToPath } from 'node:url'
import { basename, isAbsolute, relative } from 'node:path'
import { ConfigError, loadConfig, options } from './config.js'
import { startBroker } from './main.js'
import { Publisher } from '../../publisher/src/index.js'
import { readWorldCupFile } from '../../publisher/src/replay/worldcup.js'
import { runReplay } from '../../publisher/src/replay/run.js'

const DEFAULT_FILE = fileURLToPath(new URL('../../../publisher/data/worldcup-2022.json', import.meta.url))

const USAGE = `Usage: tribune demo [--file worldcup.json] [--speed F] [broker options]

Starts a broker and replays a World Cup into it (default: the 2022 World Cup shipped in publisher/data,
at 10 match-minutes per second; --speed 0 as fast as acknowledged), and prints the addresses of the pages:
the scoreboard (http://127.0.0.1:8080/) and the operations page (/ops). Broker options as for \`tribune broker\`
(e.g. --port 1884 --ws-port 8081, --no-ui); the demo keeps its store in memory unless --data-dir is given, and
publishes its $SYS statistics every 2 s (--sys-interval), so the operations page moves.
`

/**
 * Runs `tribune demo`.
 * @returns 0 after a clean stop, 2 for a bad option, 1 when the broker or the file cannot be used
 */
export async function demoMain (argv: string[]): Promise<number> {
  let flags: Record<string, string | boolean | undefined>
  try {
    const spec: Record<string, { type: 'string' | 'boolean' }> = { config: { type: 'string' }, help: { type: 'boolean' }, file: { type: 'string' }, speed: { type: 'string' } }
    for (const o of options) spec[o.flag] = { type: o.boolean === true ? 'boolean' : 'string' }
    flags = parseFlags({ args: argv, options: spec }).values
  } catch (err) {
    console.error(`tribune demo: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (flags.help === true) {
    console.log(USAGE)
    return 0
  }
  const speed = Number(flags.speed ?? '10')
  if (!Number.isFinite(speed) || speed < 0) {
    console.error(`tribune demo: --speed: expected a number >= 0 (got ${String(flags.speed)})`)
    return 2
  }
  let config
  try {
    // The demo plays the tournament from the start each time, so by default it keeps nothing between runs
    // (a kept store would hold finished feeds while the replay sets every state back to "scheduled").
    const env = { TRIBUNE_DATA_DIR: ':memory:', TRIBUNE_SYS_INTERVAL: '2', ...process.env }
    config = loadConfig(flags, env)
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`tribune demo: ${err.message}`)
      return 2
    }
    throw err
  }
  const file = typeof flags.file === 'string' ? flags.file : DEFAULT_FILE
  let worldCup
  try {
    worldCup = await readWorldCupFile(file)
  } catch (err) {
    console.error(`tribune demo: ${file}: ${(err as Error).message}`)
    return 1
  }
  let node
  try {
    node = await startBroker(config)
  } catch (err) {
    console.error(`tribune demo: cannot start the broker: ${(err as Error).message}`)
    return 1
  }
  const log = node.log
  const publisher = await Publisher.connect(`mqtt://127.0.0.1:${node.tcpPort}`)
  const example = worldCup.matches[worldCup.matches.length - 1]
  log.info({ file, matches: worldCup.matches.length, speed }, 'replay starting')
  const page = pagesAddress(config.host, node.wsPort)
  if (config.ui && page !== null) {
    log.info(`scoreboard: ${page}/  (the final: ${page}/?match=${example.id})`)
    log.info(`operations: ${page}/ops`)
  }
  log.info(`watch a match: ${selfCommand()} watch matches/${example.id}/events --url ws://127.0.0.1:${node.wsPort}${config.wsPath}`)
  const controller = new AbortController()
  const replay = runReplay(publisher, worldCup.matches, {
    speed,
    signal: controller.signal,
    onMatchFinished: (m, p) => log.info({ match: m.id, score: m.final, penalties: m.penalties, done: `${p.matchesDone}/${p.matchesTotal}` }, 'match finished')
  }).then((summary) => {
    log.info(summary, summary.aborted ? 'replay stopped' : 'replay finished; the broker keeps serving (Ctrl-C to stop)')
  }, (err: Error) => log.error({ err }, 'replay failed'))
  return await new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'stopping')
      controller.abort()
      void replay.then(async () => await publisher.close()).then(async () => await node.close()).then(() => resolve(0), (err: Error) => {
        console.error(`tribune demo: error while stopping: ${err.message}`)
        resolve(1)
      })
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
  })
}

/** `http://<host>:<port>` of the pages on the first WebSocket listener (loopback for a wildcard host), or null when
 * there is none. */
function pagesAddress (host: string, port: number): string | null {
  if (port === 0) return null
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  return `http://${shown}:${port}`
}

/**
 * How the user ran this command, to repeat in hints: `tribune` when installed (the bin on PATH), else
 * `node <path of bin/tribune.js, relative to the working directory>`.
 */
function selfCommand (): string {
  const script = process.argv[1] ?? 'bin/tribune.js'
  if (basename(script) === 'tribune') return 'tribune'
  const rel = relative(process.cwd(), script)
  return `node ${rel.startsWith('..') || isAbsolute(rel) ? script : rel}`
}
