/**
 * The viewers a node keeps serving while new ones storm in: `viewers` raw WebSocket viewers in a worker thread of
 * their own (bench/lib/storm-worker.ts, mode `viewers`: refused ones retry as the client library does) on
 * {@link LATENCY_TOPIC}, and a publisher sending a message carrying its send time every `everyMs` (100 ms). Their
 * publish-to-viewer latency is read per window.
 */
import { startStorm, type StormLoad } from './storm-load.js'
import { pacedPublisher, LATENCY_TOPIC, type PacedPublisher, type SecureNode } from './secure-node.js'

export interface LatencyWindow {
  p50Ms: number
  p99Ms: number
  maxMs: number
  /** Messages received by all viewers in the window. */
  received: number
  /** Messages published in the window times the viewers: received / expected is the share delivered. */
  expected: number
}

export interface Audience {
  /** Starts a window: empties the viewers' histogram and notes the messages sent. */
  mark: () => void
  /** The window since the last mark. */
  window: () => Promise<LatencyWindow>
  /** Viewers' connections lost after they were in. */
  dropped: () => number
  stop: () => Promise<void>
}

/**
 * Connects `viewers` viewers over `threads` worker threads (resolves once all are subscribed, at most 120 s), then
 * starts the publisher (a message every `everyMs`).
 */
export async function startAudience (node: SecureNode, viewers: number, everyMs = 100, threads = 1): Promise<Audience> {
  const load: StormLoad = startStorm({ url: node.broker.wsUrl, mode: 'viewers', topics: [LATENCY_TOPIC], expect: 0, count: viewers, retry: true, first: 5_000_000 }, threads)
  let publisher: PacedPublisher | undefined
  try {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([load.done, new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${viewers} viewers not all in after 120 s`)), 120_000) })])
    clearTimeout(timer)
    publisher = await pacedPublisher(node, everyMs)
  } catch (err) {
    await load.stop()
    throw err
  }
  const pub = publisher
  let sentAtMark = 0
  return {
    mark: () => {
      load.reset()
      sentAtMark = pub.sent()
    },
    window: async () => {
      const sent = pub.sent() - sentAtMark
      const { histogram } = await load.report()
      return {
        p50Ms: histogram.getValueAtPercentile(50) / 1000,
        p99Ms: histogram.getValueAtPercentile(99) / 1000,
        maxMs: histogram.maxValue / 1000,
        received: histogram.totalCount,
        expected: sent * viewers
      }
    },
    dropped: () => load.stats().dropped,
    stop: async () => {
      pub.stop()
      await load.stop()
    }
  }
}
