/**
 * A node's metrics, in one place: the counters fed where things happen (metrics/counters.ts), the sampled
 * publish-to-delivery latency (metrics/latency.ts), the prom-client registry behind `GET /metrics`
 * (metrics/registry.ts), the statistics document (metrics/stats.ts) and its `$SYS` publication (metrics/sys.ts).
 * Created before the stores (the Redis round trips are timed from the start), given its sources once the node is
 * wired (main.ts).
 *
 * With `--metrics off` nothing is counted on the message path (`observers` is null), `GET /metrics` answers 404 and
 * no `$SYS` statistics are published; `stats()` still answers, with what is known without counting (clients,
 * subscriptions, feeds, retained messages, admission) and 0 for the counters. Meant for measuring what metrics cost.
 */
import { readFileSync } from 'node:fs'
import { newCounters, type Counters } from './counters.js'
import { publishAccepted } from './latency.js'
import { memoryFigures, ProcessFigures } from './process.js'
import { MetricsRegistry } from './registry.js'
import { readStats, type NodeStats, type StatsSnapshot, type StatsSources } from './stats.js'
import { startSysPublisher } from './sys.js'
import type { TimingSummary } from './timings.js'

/** What the message path is given when metrics are on. */
export interface Observers {
  counters: Counters
  /** A PUBLISH accepted now (hooks/publish.ts): a sample of them is timed to delivery. */
  publishAccepted: (payload: Buffer | string | undefined) => void
}

/** The sources of the statistics that main.ts wires in (the rest the metrics keep themselves). */
export type NodeSources = Omit<StatsSources, 'version' | 'counters' | 'eventLoop' | 'memory' | 'publishToDelivery' | 'redisCommand'>

/** Tribune's version: the package.json above this file, in the sources (broker/src/metrics) or compiled (dist/...). */
function tribuneVersion (): string {
  for (const path of ['../../../package.json', '../../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: unknown, version?: unknown }
      if (pkg.name === 'tribune' && typeof pkg.version === 'string') return pkg.version
    } catch {}
  }
  return 'unknown'
}

const VERSION = tribuneVersion()

const NO_TIMINGS: TimingSummary = { count: 0, meanSeconds: 0, p50Seconds: 0, p99Seconds: 0, maxSeconds: 0 }

export class NodeMetrics {
  /** The node's counters (all 0 when metrics are off). */
  readonly counters: Counters = newCounters()
  /** Given to the message path; null when metrics are off. */
  readonly observers: Observers | null
  /** The prom-client registry; null when metrics are off. */
  readonly registry: MetricsRegistry | null
  readonly #process: ProcessFigures | null
  #sources: NodeSources | null = null
  #stopSys: () => void = () => {}

  /** @param enabled `--metrics on` */
  constructor (enabled: boolean) {
    this.registry = enabled ? new MetricsRegistry(() => this.#snapshot()) : null
    this.#process = enabled ? new ProcessFigures() : null
    const latency = this.registry?.publishToDelivery
    this.observers = latency === undefined
      ? null
      : { counters: this.counters, publishAccepted: (payload) => publishAccepted(payload, (s) => latency.observe(s)) }
  }

  get enabled (): boolean {
    return this.registry !== null
  }

  /** Records the round trip of a Redis command, in seconds (cluster/node-lease.ts). */
  redisRoundTrip (seconds: number): void {
    this.registry?.redisCommand.observe(seconds)
  }

  /** Gives the metrics what they read the statistics from; before this, {@link stats} throws. */
  attach (sources: NodeSources): void {
    this.#sources = sources
  }

  /**
   * Starts publishing the `$SYS` statistics (metrics/sys.ts) every `intervalSeconds` (0: never; never with metrics off).
   * @param publish publishes one message as the broker
   */
  startSys (id: string, intervalSeconds: number, publish: (topic: string, payload: Buffer) => void): void {
    if (!this.enabled) return
    this.#stopSys()
    this.#stopSys = startSysPublisher({ id, intervalSeconds, stats: () => this.stats(), publish })
  }

  /** The node's statistics document, read now. @throws Error before {@link attach} */
  stats (): NodeStats {
    return this.#snapshot().stats
  }

  /** Stops the `$SYS` publication and the event-loop monitor. */
  close (): void {
    this.#stopSys()
    this.#process?.close()
  }

  #snapshot (): StatsSnapshot {
    const sources = this.#sources
    if (sources === null) throw new Error('metrics: read before the node was wired (attach)')
    const zero = { delayP50Seconds: 0, delayP99Seconds: 0, delayMaxSeconds: 0 }
    return readStats({
      ...sources,
      version: VERSION,
      counters: this.counters,
      eventLoop: () => this.#process?.eventLoop() ?? zero,
      memory: memoryFigures,
      publishToDelivery: () => this.registry?.publishToDelivery.summary() ?? NO_TIMINGS,
      redisCommand: () => this.registry?.redisCommand.summary() ?? NO_TIMINGS
    })
  }
}
