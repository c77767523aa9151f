/**
 * `tribune broker`: reads flags, environment and config file, starts a node, and stops it cleanly on SIGINT/SIGTERM.
 */
import { parseFlags } from '../../client/src/flags.js'
import { ConfigError, helpText, loadConfig, options } from './config.js'
import { startBroker } from './main.js'

/**
 * Runs `tribune broker [options]`.
 * @returns the exit code: 0 after a clean stop, 2 for a bad option, 1 when the node cannot start
 */
export async function brokerMain (argv: string[]): Promise<number> {
  let flags: Record<string, string | boolean | undefined>
  try {
    const spec: Record<string, { type: 'string' | 'boolean' }> = { config: { type: 'string' }, help: { type: 'boolean' } }
    for (const o of options) spec[o.flag] = { type: o.boolean === true ? 'boolean' : 'string' }
    flags = parseFlags({ args: argv, options: spec, allowPositionals: false }).values
  } catch (err) {
    console.error(`tribune broker: ${(err as Error).message}\nRun \`tribune broker --help\` for the options.`)
    return 2
  }
  if (flags.help === true) {
    console.log(helpText())
    return 0
  }
  let config
  try {
    config = loadConfig(flags, process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`tribune broker: ${err.message}`)
      return 2
    }
    throw err
  }
  // A library's fire-and-forget command that fails (a Redis connection closing) must not take the node down.
  process.on('unhandledRejection', (reason) => {
    const err = reason instanceof Error ? { type: reason.name, message: reason.message, stack: reason.stack } : { message: String(reason) }
    console.error(JSON.stringify({ level: 50, time: Date.now(), msg: 'unhandled rejection (kept running)', err }))
  })
  // SIGINT and SIGTERM have one listener each for the whole run, routed by the node's state: removing a signal's
  // last listener and adding another loses a signal that arrives in between (libuv drops one caught for a handle
  // that has since closed), and between the two the signal's default action kills the process.
  // - While the node starts (it may wait seconds for Redis or its id's lease, and it logs `broker listening` just
  //   before it is handed back), a signal is kept and acted on once it runs: the node then stops cleanly (its lease
  //   given back) instead of dying half started. A second one ends the process at once.
  // - Once it runs: SIGTERM drains first with --drain-seconds (drain.ts); a SIGTERM or SIGINT during a drain, SIGINT
  //   at any time, and SIGTERM without --drain-seconds stop at once.
  // - A signal after the stop has begun ends the process at once (as when a clean stop hangs).
  let early: NodeJS.Signals | null = null
  let onSignal = (signal: NodeJS.Signals): void => {
    if (early !== null) dieOf(signal)
    early = signal
  }
  const listener = (signal: NodeJS.Signals): void => onSignal(signal)
  process.on('SIGINT', listener)
  process.on('SIGTERM', listener)
  const dieOf = (signal: NodeJS.Signals): void => {
    process.off('SIGINT', listener)
    process.off('SIGTERM', listener)
    process.kill(process.pid, signal) // now with the default action: the process ends as killed by it
  }
  let node
  try {
    node = await startBroker(config)
  } catch (err) {
    console.error(`tribune broker: cannot start: ${(err as Error).message}`)
    process.off('SIGINT', listener)
    process.off('SIGTERM', listener)
    return 1
  }
  // Forked by `tribune cluster`: tell the primary this node listens.
  process.send?.({ tribune: 'listening', id: node.aedes.id, ports: node.ports })
  const drainSeconds = config.drainSeconds
  return await new Promise<number>((resolve) => {
    const failed = (err: Error): void => {
      console.error(`tribune broker: error while stopping: ${err.message}`)
      resolve(1)
    }
    let stopping = false
    const stop = (signal: string): void => {
      stopping = true
      onSignal = dieOf
      node.log.info({ signal }, 'stopping')
      node.close().then(() => resolve(0), failed)
    }
    onSignal = (signal) => {
      if (signal === 'SIGINT' || drainSeconds === 0 || node.draining) {
        stop(signal)
        return
      }
      node.log.info({ signal: 'SIGTERM', drainSeconds }, 'draining before stopping (a second SIGTERM stops at once)')
      node.drain(drainSeconds, { exit: true }).then(() => {
        // Closed after the drain; unless the drain was stopped first (node.undrain: the node goes on) or a second
        // signal stopped the node (resolved there).
        if (!stopping && node.aedes.closed) resolve(0)
      }, failed)
    }
    if (early !== null) onSignal(early)
    // SIGHUP re-reads flags, environment and config file and applies the auth section (e.g. a revoked API key).
    process.on('SIGHUP', () => {
      let next
      try {
        next = loadConfig(flags, process.env)
      } catch (err) {
        node.log.error({ err }, 'reload refused: the configuration is invalid; the old one stays in force')
        return
      }
      node.reload(next).catch((err: Error) => node.log.error({ err }, 'reload refused; the old configuration stays in force'))
    })
  })
}
