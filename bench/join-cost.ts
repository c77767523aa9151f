/**
 * Join storm: what a viewer's join costs Redis in a cluster. Starts a redis-server and N broker nodes linked by it,
 * publishes a match's history and state, then lets V viewers connect over WebSocket (spread over the nodes), each
 * subscribing to the feed with `$replay/all/...` and to the retained state topic in one SUBSCRIBE, waits until every
 * viewer has the whole history and the state, disconnects them all, and reads Redis `INFO commandstats` before and
 * after. Redis counts the commands a script runs inside itself too; none run for joins.
 *
 * Usage: npm run bench:join-cost -- [--viewers 5000] [--nodes 2] [--history 20] [--json]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import mqtt from 'mqtt'
import { startBroker, type BrokerNode } from '../broker/src/main.js'
import { spawnRedisServer, freePort } from '../broker/src/cluster/redis-server.js'
import { startViewer, type Viewer } from './lib/viewer.js'
import { countFlag } from './lib/args.js'

export interface JoinStormOptions {
  viewers: number
  nodes: number
  /** Feed messages published before the storm (each viewer receives all of them, then the state). */
  history: number
  /** Joins started at once at most (default 500). */
  concurrency?: number
}

export interface JoinStormResult {
  viewers: number
  nodes: number
  history: number
  /** Redis commands counted during the storm (connect, subscribe, history, state, disconnect), by command. */
  commands: Record<string, number>
  totalCommands: number
  commandsPerJoin: number
  /** Joins per second: viewers divided by the time until the last one had its state. */
  joinsPerSecond: number
  lastJoinMs: number
  p50JoinMs: number
  p99JoinMs: number
  /** True when every viewer received seq 1..history in order and then the state. */
  allExact: boolean
}

/** Runs one join storm; starts and stops its own redis-server and nodes. */
export async function joinStorm (opts: JoinStormOptions): Promise<JoinStormResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tribune-bench-'))
  const redis = await spawnRedisServer({ port: await freePort(), dir })
  const nodes: BrokerNode[] = []
  const stats = new Redis(redis.url)
  try {
    for (let i = 0; i < opts.nodes; i++) {
      nodes.push(await startBroker({ host: '127.0.0.1', port: 0, wsPort: 0, redis: redis.url, nodeId: `bench-${i}`, logLevel: 'warn', maxQueuedBytes: 64 * 1024 * 1024, maxConnRate: 0, overloadLagMs: 0, maxConnections: 0 }))
    }
    const publisher = await mqtt.connectAsync(`mqtt://127.0.0.1:${nodes[0].tcpPort}`, { clientId: 'bench-publisher', reconnectPeriod: 0 })
    for (let i = 1; i <= opts.history; i++) {
      await publisher.publishAsync('matches/1/events', JSON.stringify({ id: `e${i}`, minute: i, type: 'shot' }), { qos: 1 })
    }
    await publisher.publishAsync('matches/1/state', JSON.stringify({ score: '2-1', status: 'live' }), { qos: 1, retain: true })
    await publisher.endAsync()
    await new Promise((resolve) => setTimeout(resolve, 300))

    const before = await commandStats(stats)
    const started = Date.now()
    const viewers: Viewer[] = []
    const times: number[] = []
    const concurrency = opts.concurrency ?? 500
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < opts.viewers) {
        const i = next++
        const node = nodes[i % nodes.length]
        const v = startViewer({ url: `ws://127.0.0.1:${node.wsPort}/mqtt`, clientId: `viewer-${i}`, topics: ['$replay/all/matches/1/events', 'matches/1/state'], expect: opts.history + 1 })
        viewers.push(v)
        times.push(await v.joined)
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, opts.viewers) }, worker))
    const lastJoinMs = Date.now() - started
    await Promise.all(viewers.map(async (v) => await v.close()))
    const deadline = Date.now() + 10_000
    while (nodes.some((n) => Object.keys((n.aedes as unknown as { clients: object }).clients).length > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
    const after = await commandStats(stats)

    const commands: Record<string, number> = {}
    for (const [cmd, n] of Object.entries(after)) {
      const d = n - (before[cmd] ?? 0)
      if (d > 0 && cmd !== 'info') commands[cmd] = d
    }
    const totalCommands = Object.values(commands).reduce((a, b) => a + b, 0)
    times.sort((a, b) => a - b)
    return {
      viewers: opts.viewers,
      nodes: opts.nodes,
      history: opts.history,
      commands,
      totalCommands,
      commandsPerJoin: totalCommands / opts.viewers,
      joinsPerSecond: opts.viewers / (lastJoinMs / 1000),
      lastJoinMs,
      p50JoinMs: times[Math.floor(times.length * 0.5)],
      p99JoinMs: times[Math.min(times.length - 1, Math.floor(times.length * 0.99))],
      allExact: viewers.every((v) => isExact(v.received, opts.history))
    }
  } finally {
    stats.disconnect()
    for (const n of nodes) await n.close()
    await redis.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** seq 1..history in order on the feed, then the state (the order of the two subscriptions' first messages may vary). */
function isExact (received: Buffer[], history: number): boolean {
  const parsed = received.map((b) => JSON.parse(b.toString()) as { seq?: number, score?: string })
  const seqs = parsed.filter((p) => p.seq !== undefined).map((p) => p.seq)
  const states = parsed.filter((p) => p.score !== undefined)
  return states.length === 1 && seqs.length === history && seqs.every((s, i) => s === i + 1)
}

async function commandStats (redis: Redis): Promise<Record<string, number>> {
  const text = await redis.info('commandstats')
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2])
  return out
}

/** The command line: prints a table, or JSON with --json. */
export async function main (args: string[]): Promise<void> {
  const result = await joinStorm({ viewers: countFlag(args, 'viewers', 5000), nodes: countFlag(args, 'nodes', 2), history: countFlag(args, 'history', 20) })
  if (args.includes('--json')) {
    console.log(JSON.stringify(result, null, 2))
    return
  }
  console.log(`join storm: ${result.viewers} WebSocket viewers over ${result.nodes} nodes, ${result.history} feed messages + 1 retained state each`)
  console.log(`  Redis commands during the storm: ${result.totalCommands} (${Object.entries(result.commands).map(([c, n]) => `${c} ${n}`).join(', ') || 'none'})`)
  console.log(`  Redis commands per viewer join:  ${result.commandsPerJoin.toFixed(4)} (target at most 0.01; stock aedes with Redis: 9)`)
  console.log(`  joins per second:                ${result.joinsPerSecond.toFixed(0)} (last viewer had its state after ${result.lastJoinMs} ms; join p50 ${result.p50JoinMs} ms, p99 ${result.p99JoinMs} ms)`)
  console.log(`  every viewer exact:              ${result.allExact ? 'yes' : 'NO'}`)
  if (!result.allExact || result.commandsPerJoin > 0.01) process.exitCode = 1
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(`bench:join-cost: ${err.message}`)
    process.exitCode = 1
  })
}
