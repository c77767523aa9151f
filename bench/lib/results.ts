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
  /** `fanout`, `joins`, `memory`, `cluster` or `metrics` (fan-out with Tribune's metrics on against off). */
  kind: 'fanout' | 'joins' | 'memory' | 'cluster' | 'metrics'
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

/**
 * How a cell of a {@link FigureTable} is written: `int` (thousands separators), `one`/`two` (1 or 2 decimals),
 * `percent` (a share 0..1 as % with one decimal), `mib` (bytes as MiB), `text` (as given).
 */
export type FigureFormat = 'int' | 'one' | 'two' | 'percent' | 'mib' | 'text'

/**
 * A table of an admission scenario: a row per case (a node's configuration, a transport, a burst size ...), a column
 * per figure. A cell is a number (written as its column's format says), a string (as is) or null (no figure: "–").
 */
export interface FigureTable {
  /** A line above the table, e.g. "Refusal cost, broker CPU from /proc around a batch". */
  caption?: string
  /** The first column names the rows (its format is ignored); headers carry their units, e.g. "p99 ms". */
  columns: Array<{ header: string, format: FigureFormat }>
  /** One row per case: the label, then one cell per further column. */
  rows: Array<Array<number | string | null>>
}

/**
 * One scenario of the "Admission" section of RESULTS.md (bench/storm.ts and bench/join-capacity.ts; the herd and
 * node-loss scenarios add theirs in the same shape): what a node does beyond its limits, in tables of figures rather
 * than one row per broker. Each entry carries its own date and version, since `--only storm --write` replaces the
 * entries of the kinds it ran and keeps the rest of RESULTS.md from the run before.
 */
export interface AdmissionResult {
  /** `join-capacity` and `refusal-cost` (what the defaults come from), `storm`, `herd`, `node-loss`. */
  kind: 'join-capacity' | 'refusal-cost' | 'storm' | 'herd' | 'node-loss'
  /** A short title, the section's heading, e.g. "join storm, 10 x --max-conn-rate for 20 s". */
  title: string
  /** ISO 8601 time this scenario ran, and the tribune version it measured (e.g. "0.1.0 (6242acf)"). */
  date: string
  tribune: string
  quick: boolean
  /** The scenario's parameters, e.g. `{ viewers: 1000, maxConnRate: 1200, factor: 10 }`. */
  params: Record<string, number | string>
  tables: FigureTable[]
  /** Findings in a sentence each, e.g. "the generator offered 4,100 connections/s of the 12,000 asked". */
  notes: string[]
  targets: TargetCheck[]
  /** Why it could not run here, instead of tables. */
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
  /** The "Admission" section: admission control's scenarios, in order (absent in runs before it). */
  admission?: AdmissionResult[]
  /** Seconds the whole run took. */
  seconds: number
}
