/**
 * The process's own figures: event-loop delay (Node's perf_hooks monitor, in windows of {@link WINDOW_MS}) and memory
 * (heap used, resident set). Read when the statistics are, never per message.
 */
import { getHeapStatistics } from 'node:v8'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { micro } from './timings.js'

/** The event-loop delay figures describe the last complete window of this length, ms. */
export const WINDOW_MS = 10_000
/** The monitor's timer period, ms: what it measures is the time between its ticks, less this. */
const RESOLUTION_MS = 10

/** Event-loop delay over the last window, seconds: how much later than due a timer ran (0 on an idle loop). */
export interface EventLoopDelay {
  delayP50Seconds: number
  delayP99Seconds: number
  delayMaxSeconds: number
}

export interface MemoryFigures {
  heapUsedBytes: number
  rssBytes: number
}

/**
 * The process's memory now. The heap alone when the RSS cannot be read: `process.memoryUsage()` opens /proc and
 * throws EMFILE when the process is out of file descriptors (a connection storm), which must not stop the node.
 */
export function memoryFigures (): MemoryFigures {
  try {
    const m = process.memoryUsage()
    return { heapUsedBytes: m.heapUsed, rssBytes: m.rss }
  } catch {
    return { heapUsedBytes: getHeapStatistics().used_heap_size, rssBytes: 0 }
  }
}

/** The event-loop delay monitor. */
export class ProcessFigures {
  readonly #monitor: IntervalHistogram
  readonly #timer: NodeJS.Timeout
  #last: EventLoopDelay | null = null

  constructor () {
    this.#monitor = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
    this.#monitor.enable()
    this.#timer = setInterval(() => {
      this.#last = this.#read()
      this.#monitor.reset()
    }, WINDOW_MS)
    this.#timer.unref()
  }

  /** The last complete window's delay (before the first: what was seen so far). */
  eventLoop (): EventLoopDelay {
    return this.#last ?? this.#read()
  }

  close (): void {
    clearInterval(this.#timer)
    this.#monitor.disable()
  }

  #read (): EventLoopDelay {
    const m = this.#monitor
    // Nanoseconds between ticks, the period included; a histogram that saw nothing yet reports NaN: then 0.
    const s = (ns: number): number => (Number.isFinite(ns) && m.count > 0 ? micro(Math.max(0, ns / 1e6 - RESOLUTION_MS) / 1000) : 0)
    return { delayP50Seconds: s(m.percentile(50)), delayP99Seconds: s(m.percentile(99)), delayMaxSeconds: s(m.max) }
  }
}
