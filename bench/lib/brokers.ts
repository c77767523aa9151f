/**
 * The brokers a benchmark compares, each started as its own process on free ports, so the load generator never
 * shares an event loop with the broker it measures: Tribune (`tribune broker`, embedded store in memory, or
 * `tribune cluster --nodes N`) and Mosquitto (Debian's `mosquitto`, with a generated config: MQTT and websockets
 * listeners, anonymous, no queue limits that would drop messages before the clients do).
 * Tribune runs with admission control off ({@link ADMISSION_OFF}) unless asked otherwise: Mosquitto has no such limits,
 * and the fan-out, joins, memory and cluster scenarios measure raw capacity (bench/storm.ts measures the limits).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../broker/src/cluster/redis-server.js'

const BIN = fileURLToPath(new URL('../../../bin/tribune.js', import.meta.url))

/** Tribune's options that turn admission control off (broker/src/admission/): no rate, no lag threshold, no count, no shedding. */
export const ADMISSION_OFF = ['--max-conn-rate', '0', '--overload-lag-ms', '0', '--max-connections', '0', '--max-refusal-rate', '0'] as const

export interface StartOptions {
  /** Options for Tribune's node process (e.g. `--cpu-prof`); ignored for Mosquitto. */
  nodeArgs?: string[]
  /** More options for `tribune broker` (e.g. `--config <file>`, admission limits), after the bench's own. */
  brokerArgs?: string[]
  /** Tribune's admission control: off (default, {@link ADMISSION_OFF}) or as its defaults and `brokerArgs` say. */
  admission?: 'off' | 'on'
}

export interface RunningBroker {
  name: string
  tcpUrl: string
  wsUrl: string
  /** `GET /healthz` of the (first) node: Tribune's on its --metrics-port (never shed, no queue of WebSocket clients
   * before it), Mosquitto's WebSocket port (it has no /healthz: the round trip still measures its accept queue). */
  healthUrl: string
  /** The broker's (or the cluster's primary) process id. */
  pid: number
  /** Resident memory of the broker's processes, in bytes (Linux /proc). */
  rss: () => number
  /** CPU time used so far by the broker's processes (user + system, Linux /proc), in ms. */
  cpuMs: () => number
  stop: () => Promise<void>
}

export type BrokerKind = 'tribune' | 'mosquitto' | `tribune-cluster-${number}`

/**
 * Starts a broker of `kind` and waits until it accepts MQTT connections.
 * @param nodeArgs options for Tribune's node process (e.g. `--cpu-prof`); ignored for Mosquitto
 * @param opts more options for Tribune (see {@link StartOptions}; admission control off unless `admission: 'on'`)
 */
export async function startBrokerProcess (kind: BrokerKind, nodeArgs: string[] = [], opts: StartOptions = {}): Promise<RunningBroker> {
  const port = await freePort()
  const wsPort = await freePort()
  const metricsPort = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'tribune-bench-broker-'))
  let child: ChildProcess
  if (kind === 'mosquitto') {
    const conf = join(dir, 'mosquitto.conf')
    writeFileSync(conf, [
      'allow_anonymous true', 'persistence false', 'max_queued_messages 0', 'max_inflight_messages 0',
      'log_dest none', `listener ${port} 127.0.0.1`, `listener ${wsPort} 127.0.0.1`, 'protocol websockets', ''
    ].join('\n'))
    child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  } else {
    const cluster = kind.startsWith('tribune-cluster-') ? Number(kind.slice('tribune-cluster-'.length)) : 0
    const args = ['--host', '127.0.0.1', '--port', String(port), '--ws-port', String(wsPort), '--metrics-port', String(metricsPort), '--data-dir', cluster > 0 ? dir : ':memory:',
      '--log-level', 'warn', '--max-queued-bytes', String(64 * 1024 * 1024), '--max-keepalive', '65535',
      ...(opts.admission === 'on' ? [] : ADMISSION_OFF), ...(opts.brokerArgs ?? [])]
    child = spawn(process.execPath, [...nodeArgs, ...(opts.nodeArgs ?? []), BIN, ...(cluster > 0 ? ['cluster', '--nodes', String(cluster)] : ['broker']), ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  }
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const deadline = Date.now() + 20_000
  while (!(await accepts(port))) {
    if (child.exitCode !== null) throw new Error(`${kind} exited: ${stderr.trim()}`)
    if (Date.now() > deadline) throw new Error(`${kind} did not listen within 20 s: ${stderr.trim()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  if (kind.startsWith('tribune-cluster-')) await new Promise((resolve) => setTimeout(resolve, 1500)) // every node up
  return {
    name: kind,
    tcpUrl: `mqtt://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${wsPort}/mqtt`,
    healthUrl: `http://127.0.0.1:${kind === 'mosquitto' ? wsPort : metricsPort}/healthz`,
    pid: child.pid ?? 0,
    rss: () => treeSum(child.pid ?? 0, rssOf),
    cpuMs: () => treeSum(child.pid ?? 0, cpuOf),
    stop: async () => {
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
          child.once('exit', () => { clearTimeout(timer); resolve() })
          child.kill('SIGTERM')
        })
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

async function accepts (port: number): Promise<boolean> {
  const { connect } = await import('node:net')
  return await new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}

/** A figure summed over a process and its children (a cluster's nodes, and its redis-server). */
function treeSum (pid: number, of: (pid: number) => number): number {
  let total = 0
  const visit = (p: number): void => {
    try {
      total += of(p)
      const children = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim()
      for (const c of children.split(/\s+/).filter(Boolean)) visit(Number(c))
    } catch {}
  }
  visit(pid)
  return total
}

/** Resident memory of one process, bytes (VmRSS). */
function rssOf (pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024
}

/** CPU time of one process, ms: utime + stime of /proc/<pid>/stat, in clock ticks of 10 ms. */
function cpuOf (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}
