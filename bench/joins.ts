/**
 * Joins: N viewers connect over WebSocket (or TCP), subscribe and receive what a viewer needs on arrival, as fast as they
 * can (at most `concurrency` joins in progress at once), against broker processes started here:
 *  - Tribune: `$replay/all/matches/1/events` (the match's history, `history` messages, then live) and the retained
 *    `matches/1/state`, in one SUBSCRIBE; a join is complete at its history + 1-th PUBLISH;
 *  - Mosquitto: `matches/1/events` and `matches/1/state`; it has no history, so a join is complete at the state.
 * Every broker process first meets a cold storm (a fresh process: a node just restarted, meeting a reconnect herd),
 * reported apart. Then `rounds` measured storms take turns between the brokers, each on a broker whose code the storms
 * before have warmed (V8 optimises hot functions only after they have run a while; a broker has been up for hours when
 * the viewers come before kick-off). The round with the median joins/s is reported for each broker: this 2-core VM's
 * speed drifts by tens of percent from one storm to the next, for the broker and the generator alike.
 * Between storms the viewers disconnect and the broker settles; the next storm's viewers reuse their client ids, as
 * reconnecting viewers do. Results: joins per second (viewers / time until the last viewer had everything), join time
 * p50/p99, broker and generator CPU per join.
 */
import mqtt from 'mqtt'
import { startBrokerProcess, type BrokerKind, type RunningBroker } from './lib/brokers.js'
import { startLoad } from './lib/load.js'
import type { LoadJob } from './lib/load-worker.js'

export interface JoinsOptions {
  viewers: number
  /** Feed messages published before the storms. */
  history: number
  /** Joins in progress at once, over all worker threads. */
  concurrency: number
  transport?: 'ws' | 'tcp'
  /** Measured storms per broker, after the cold one (default 3). */
  rounds?: number
  /** Options for Tribune's node process (e.g. `--cpu-prof`). */
  nodeArgs?: string[]
}

/** One storm's figures. */
export interface JoinStorm {
  joinsPerSecond: number
  lastJoinMs: number
  p50JoinMs: number
  p99JoinMs: number
  /** Broker CPU time per join during the storm, µs. */
  cpuUsPerJoin: number
  /** The load generator's CPU time per join during the storm (this process, all threads), µs. */
  generatorCpuUsPerJoin: number
}

export interface JoinsResult extends JoinStorm {
  broker: string
  viewers: number
  messagesPerJoin: number
  /** The cold storm's joins per second and broker CPU per join (µs), on the fresh process. */
  coldJoinsPerSecond: number
  coldCpuUsPerJoin: number
  /** Every measured round's joins per second, in order. */
  rounds: number[]
  /** Resident memory of the broker after its last storm, bytes. */
  rssBytes: number
}

/**
 * Runs the cold storm and `opts.rounds` measured storms (see above) against a fresh process of each of `brokers`,
 * the brokers taking turns; resolves with one result per broker, in the order given. Rejects with a viewer's first
 * connection error, or after 180 s for a storm that does not finish.
 */
export async function joins (brokers: BrokerKind[], opts: JoinsOptions): Promise<JoinsResult[]> {
  const running: Array<{ kind: BrokerKind, broker: RunningBroker, job: Omit<LoadJob, 'count' | 'first'>, cold?: JoinStorm, storms: JoinStorm[] }> = []
  try {
    for (const kind of brokers) {
      const broker = await startBrokerProcess(kind, opts.nodeArgs)
      running.push({ kind, broker, job: await prepare(kind, broker, opts), storms: [] })
    }
    for (const r of running) r.cold = await storm(r.broker, r.job, opts)
    for (let round = 0; round < (opts.rounds ?? 3); round++) {
      for (const r of running) r.storms.push(await storm(r.broker, r.job, opts))
    }
    return running.map((r) => {
      const byRate = [...r.storms].sort((a, b) => a.joinsPerSecond - b.joinsPerSecond)
      const median = byRate[Math.floor((byRate.length - 1) / 2)]
      return {
        ...median,
        broker: r.kind,
        viewers: opts.viewers,
        messagesPerJoin: r.job.expect ?? 1,
        coldJoinsPerSecond: r.cold?.joinsPerSecond ?? 0,
        coldCpuUsPerJoin: r.cold?.cpuUsPerJoin ?? 0,
        rounds: r.storms.map((s) => s.joinsPerSecond),
        rssBytes: r.broker.rss()
      }
    })
  } finally {
    for (const r of running) await r.broker.stop()
  }
}

/** Publishes the history and the retained state; returns the viewers' job. */
async function prepare (kind: BrokerKind, broker: RunningBroker, opts: JoinsOptions): Promise<Omit<LoadJob, 'count' | 'first'>> {
  const publisher = await mqtt.connectAsync(broker.tcpUrl, { clientId: 'bench-joins-publisher', reconnectPeriod: 0 })
  for (let i = 1; i <= opts.history; i++) {
    await publisher.publishAsync('matches/1/events', JSON.stringify({ id: `e${i}`, minute: i, type: 'shot' }), { qos: 1 })
  }
  await publisher.publishAsync('matches/1/state', JSON.stringify({ score: '2-1', status: 'live' }), { qos: 1, retain: true })
  await publisher.endAsync()
  const tribune = kind !== 'mosquitto'
  return {
    url: opts.transport === 'tcp' ? broker.tcpUrl : broker.wsUrl,
    topics: tribune ? ['$replay/all/matches/1/events', 'matches/1/state'] : ['matches/1/events', 'matches/1/state'],
    qos: 0,
    mode: 'join',
    expect: tribune ? opts.history + 1 : 1,
    concurrency: Math.ceil(opts.concurrency / 2)
  }
}

/** One storm of `opts.viewers` viewers; they disconnect afterwards and the broker settles. */
async function storm (broker: RunningBroker, job: Omit<LoadJob, 'count' | 'first'>, opts: JoinsOptions): Promise<JoinStorm> {
  await settle(broker.cpuMs)
  const cpu = broker.cpuMs()
  const own = process.cpuUsage()
  const load = startLoad(job, opts.viewers, 2)
  try {
    const lastJoinMs = await load.done
    const cpuUsPerJoin = (broker.cpuMs() - cpu) * 1000 / opts.viewers
    const ownUsage = process.cpuUsage(own)
    const report = await load.report()
    return {
      joinsPerSecond: opts.viewers / (lastJoinMs / 1000),
      lastJoinMs,
      p50JoinMs: report.histogram.getValueAtPercentile(50) / 1000,
      p99JoinMs: report.histogram.getValueAtPercentile(99) / 1000,
      cpuUsPerJoin,
      generatorCpuUsPerJoin: (ownUsage.user + ownUsage.system) / opts.viewers
    }
  } finally {
    await load.stop()
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
