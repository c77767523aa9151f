/**
 * Joins: N viewers connect over WebSocket (or TCP), subscribe and receive what a viewer needs on arrival, as fast as they
 * can (at most `concurrency` joins in progress at once), against one broker process started here:
 *  - Tribune: `$replay/all/matches/1/events` (the match's history, `history` messages, then live) and the retained
 *    `matches/1/state`, in one SUBSCRIBE; a join is complete at its history + 1-th PUBLISH;
 *  - Mosquitto: `matches/1/events` and `matches/1/state`; it has no history, so a join is complete at the state.
 * Two storms of `viewers` each hit the same broker process: the first on a fresh process (the cold figures: a node
 * just restarted, meeting a reconnect herd), whose viewers then disconnect; the second, measured, on a broker whose
 * code the first has warmed (V8 compiles hot functions with its optimizing compiler only after they have run a while;
 * a broker has been up for hours when the viewers come before kick-off). The second storm's viewers use the same
 * client ids, as reconnecting viewers do.
 * Results: joins per second (viewers / time until the last viewer had everything) and join time p50/p99, broker and
 * generator CPU per join. Viewers stay connected, as at kick-off.
 */
import mqtt from 'mqtt'
import { startBrokerProcess, type BrokerKind } from './lib/brokers.js'
import { startLoad, type Load } from './lib/load.js'

export interface JoinsOptions {
  broker: BrokerKind
  viewers: number
  /** Feed messages published before the storm. */
  history: number
  /** Joins in progress at once, over all worker threads. */
  concurrency: number
  transport?: 'ws' | 'tcp'
  /** Options for Tribune's node process (e.g. `--cpu-prof`). */
  nodeArgs?: string[]
}

export interface JoinsResult {
  broker: string
  viewers: number
  joinsPerSecond: number
  lastJoinMs: number
  p50JoinMs: number
  p99JoinMs: number
  messagesPerJoin: number
  /** Broker CPU time per join during the storm, µs. */
  cpuUsPerJoin: number
  /** The load generator's CPU time per join during the storm (this process, all threads), µs. */
  generatorCpuUsPerJoin: number
  /** Joins per second of the first storm, on the fresh broker process. */
  coldJoinsPerSecond: number
  /** Broker CPU time per join in the first storm, µs. */
  coldCpuUsPerJoin: number
  rssBytes: number
}

/** Runs a cold and a measured join storm against a freshly started broker of `opts.broker` (see above). */
export async function joins (opts: JoinsOptions): Promise<JoinsResult> {
  const broker = await startBrokerProcess(opts.broker, opts.nodeArgs)
  let load: Load | undefined
  try {
    const publisher = await mqtt.connectAsync(broker.tcpUrl, { clientId: 'bench-joins-publisher', reconnectPeriod: 0 })
    for (let i = 1; i <= opts.history; i++) {
      await publisher.publishAsync('matches/1/events', JSON.stringify({ id: `e${i}`, minute: i, type: 'shot' }), { qos: 1 })
    }
    await publisher.publishAsync('matches/1/state', JSON.stringify({ score: '2-1', status: 'live' }), { qos: 1, retain: true })
    await publisher.endAsync()
    const tribune = opts.broker !== 'mosquitto'
    const expect = tribune ? opts.history + 1 : 1
    const topics = tribune ? ['$replay/all/matches/1/events', 'matches/1/state'] : ['matches/1/events', 'matches/1/state']
    const job = { url: opts.transport === 'tcp' ? broker.tcpUrl : broker.wsUrl, topics, qos: 0 as const, mode: 'join' as const, expect, concurrency: Math.ceil(opts.concurrency / 2) }
    let cpu = broker.cpuMs()
    const cold = startLoad(job, opts.viewers, 2)
    let coldMs: number
    let coldCpuUsPerJoin: number
    try {
      coldMs = await cold.done
      coldCpuUsPerJoin = (broker.cpuMs() - cpu) * 1000 / opts.viewers
    } finally {
      await cold.stop()
    }
    await settle(broker.cpuMs)
    cpu = broker.cpuMs()
    const own = process.cpuUsage()
    load = startLoad(job, opts.viewers, 2)
    const lastJoinMs = await load.done
    const cpuUsPerJoin = (broker.cpuMs() - cpu) * 1000 / opts.viewers
    const ownUsage = process.cpuUsage(own)
    const generatorCpuUsPerJoin = (ownUsage.user + ownUsage.system) / opts.viewers
    const report = await load.report()
    return {
      broker: opts.broker,
      viewers: opts.viewers,
      joinsPerSecond: opts.viewers / (lastJoinMs / 1000),
      lastJoinMs,
      p50JoinMs: report.histogram.getValueAtPercentile(50) / 1000,
      p99JoinMs: report.histogram.getValueAtPercentile(99) / 1000,
      messagesPerJoin: expect,
      cpuUsPerJoin,
      generatorCpuUsPerJoin,
      coldJoinsPerSecond: opts.viewers / (coldMs / 1000),
      coldCpuUsPerJoin,
      rssBytes: broker.rss()
    }
  } finally {
    await load?.stop()
    await broker.stop()
  }
}

/** Waits until a process uses less than 5% of a core over 200 ms (its disconnects handled), at most 10 s. */
async function settle (cpuMs: () => number): Promise<void> {
  const deadline = Date.now() + 10_000
  let last = cpuMs()
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    const now = cpuMs()
    if (now - last < 10) return
    last = now
  }
}
