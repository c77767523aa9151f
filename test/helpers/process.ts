/**
 * Test plumbing: `tribune broker` as a child process (for what an in-process broker cannot show: kill -9, a node's
 * own event loop, its exit code), on free ports, killed after the test.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { onCleanup } from './broker.js'
import { waitFor } from './mqtt.js'

const BIN = join(import.meta.dirname, '../../bin/tribune.js')

export interface BrokerProcess {
  child: ChildProcess
  /** stdout and stderr so far. */
  out: () => string
  /** The JSON log lines so far. */
  lines: () => any[]
  /** Resolves with the exit code. */
  exited: Promise<number | null>
  /** ms from spawn to the `broker listening` line, once it came. */
  startedMs: () => number | undefined
}

/**
 * Spawns `tribune broker` with `args` after `--port 0 --ws-port 0 --data-dir :memory: --log-level info` (later flags
 * win); SIGKILLed after the test if still running.
 */
export function spawnBroker (args: string[]): BrokerProcess {
  const spawned = Date.now()
  const child = spawn(process.execPath, [BIN, 'broker', '--port', '0', '--ws-port', '0', '--data-dir', ':memory:', '--log-level', 'info', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  onCleanup(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let out = ''
  let listeningAt: number | undefined
  const onData = (d: Buffer): void => {
    out += d.toString()
    if (listeningAt === undefined && out.includes('"broker listening"')) listeningAt = Date.now()
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const lines = (): any[] => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  return { child, out: () => out, lines, exited, startedMs: () => listeningAt === undefined ? undefined : listeningAt - spawned }
}

/**
 * Waits for `run` to listen.
 * @returns its MQTT and WebSocket ports
 * @throws when it exits first (with its output) or does not listen within `ms`
 */
export async function listening (run: BrokerProcess, what: string, ms = 10_000): Promise<{ tcp: number, ws: number }> {
  await waitFor(() => run.startedMs() !== undefined || run.child.exitCode !== null, what, ms)
  const line = run.lines().find((l) => l.msg === 'broker listening')
  if (line === undefined) throw new Error(`${what}: exited with ${String(run.child.exitCode)}: ${run.out()}`)
  return { tcp: line.tcpPort, ws: line.wsPort }
}
