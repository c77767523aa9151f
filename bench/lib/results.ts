/**
 * The shape of a benchmark run's results: what `npm run bench -- --json` prints and what bench/lib/report.ts turns
 * into bench/RESULTS.md and its chart. Units are in the names: ms, bytes, per second.
 */

/** One broker's figures in one scenario; a figure a scenario does not measure is absent. */
export interface BrokerFigures {
  /** `mosquitto`, `tribune`, or `tribune-cluster-N` (N node processes sharing the ports). */
  broker: string
  /** Messages received by all viewers together per second, at saturation (fan-out, cluster). */
  deliveriesPerSecond?: number
  /** The fixed publish rate of the latency run, messages per second (fan-out, cluster). */
  rate?: number
  /** Publish-to-viewer latency at `rate` (fan-out, cluster), or the time from connect to the last message of a join (joins), ms. */
  p50Ms?: number
  p99Ms?: number
  maxMs?: number
  /** Share (0..1) of the messages sent at `rate` that reached every viewer within the run plus 1 s. */
  deliveredShare?: number
  /** Viewer joins per second: viewers / time until the last one had its state (joins). */
  joinsPerSecond?: number
  /** Time from the first connect until the last viewer had its state, ms (joins). */
  lastJoinMs?: number
  /** Messages each viewer received on joining (joins: Tribune's history plus state; Mosquitto's state only). */
  messagesPerJoin?: number
  /**
   * CPU time of the broker's processes (user + system, /proc) per delivery during the saturation run, µs: what a
   * delivery costs the broker, whoever (broker or load generator) limits the rate on this machine.
   */
  cpuUsPerDelivery?: number
  /** CPU time of the broker's processes per join during the storm, µs. */
  cpuUsPerJoin?: number
  /** CPU time of the load generator (the benchmark's process, all its threads) per join during the storm, µs. */
  generatorCpuUsPerJoin?: number
  /** Joins per second of the first storm, on the fresh broker process (joins; the measured storm comes second). */
  coldJoinsPerSecond?: number
  /** Broker CPU per join in that first storm, µs. */
  coldCpuUsPerJoin?: number
  /** Joins per second of every measured round, in order (joins). */
  joinsRounds?: number[]
  /** Resident memory per connected idle viewer, bytes: (RSS with the viewers - RSS before) / viewers (memory). */
  bytesPerViewer?: number
  /** Resident memory of the broker's processes at the end of the connect phase, bytes. */
  rssBytes?: number
}

/** A target of issue 5, and whether this run met it. */
export interface TargetCheck {
  /** What is measured, e.g. "deliveries/s at 1,000 WS viewers vs Mosquitto". */
  what: string
  /** The target, e.g. ">= 1.00 x Mosquitto". */
  target: string
  /** The figure reached, e.g. "1.83 x". */
  reached: string
  met: boolean
}

/** One scenario with fixed parameters, run against each broker in turn. */
export interface ScenarioResult {
  /** `fanout`, `joins`, `memory` or `cluster`. */
  kind: 'fanout' | 'joins' | 'memory' | 'cluster'
  /** A short title, e.g. "fan-out, 1,000 WS viewers, QoS 0". */
  title: string
  /** The scenario's parameters (viewers, qos, transport, seconds, payload bytes, history, ...). */
  params: Record<string, number | string>
  brokers: BrokerFigures[]
  /** Tribune's figure divided by Mosquitto's (or 2 nodes' by 1 node's: `of`) for the scenario's main metric, when both ran. */
  ratio?: { metric: string, value: number, of?: string }
  targets: TargetCheck[]
  /** Why a scenario could not run here (e.g. more connections than the open-file limit allows), instead of figures. */
  skipped?: string
}

/** A whole run. */
export interface BenchRun {
  /** ISO 8601 time the run started. */
  date: string
  quick: boolean
  machine: { cpus: number, cpuModel: string, memoryGiB: number, os: string, node: string, openFileLimit: number }
  versions: Record<string, string>
  scenarios: ScenarioResult[]
  /** Seconds the whole run took. */
  seconds: number
}
