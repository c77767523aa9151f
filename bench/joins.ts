/**
 * Joins: N viewers connect over WebSocket (or TCP), subscribe and receive what a viewer needs on arrival, as fast as they
 * can (at most `concurrency` joins in progress at once), against one broker process started here:
 *  - Tribune: `$replay/all/matches/1/events` (the match's history, `history` messages, then live) and the retained
 *    `matches/1/state`, in one SUBSCRIBE; a join is complete at its history + 1-th PUBLISH;
 *  - Mosquitto: `matches/1/events` and `matches/1/state`; it has no history, so a join is complete at the state.
 * Results: joins per second (viewers / time until the last viewer had everything) and join time p50/p99. Viewers
 * stay connected, as at kick-off.
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
  rssBytes: number
}

/** Runs one join storm against a freshly started broker of `opts.broker`. */
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
    const cpu = broker.cpuMs()
    const own = process.cpuUsage()
    load = startLoad({ url: opts.transport === 'tcp' ? broker.tcpUrl : broker.wsUrl, topics, qos: 0, mode: 'join', expect, concurrency: Math.ceil(opts.concurrency / 2) }, opts.viewers, 2)
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
      rssBytes: broker.rss()
    }
  } finally {
    await load?.stop()
    await broker.stop()
  }
}
