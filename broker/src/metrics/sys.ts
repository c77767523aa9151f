/**
 * `$SYS` statistics over MQTT, as Mosquitto's sys tree: every `--sys-interval` seconds a node publishes
 * `$SYS/<node-id>/stats`, the whole statistics document as JSON (metrics/stats.ts), and, on
 * `$SYS/<node-id>/<path>`, each value that changed since the last interval (all of them the first time). QoS 0, not
 * retained: a value is current for one interval, and a retained one would outlive its node.
 * In a cluster the document goes to every node (so `$SYS/+/stats` on any node gives the whole cluster: one Redis
 * message per node and interval); the individual values stay on their node (cluster/emitter.ts).
 * Only operators may read `$SYS` (hooks/subscribe.ts).
 */
import { leaves, type NodeStats } from './stats.js'

export interface SysPublisherOptions {
  /** The node's id: topics are `$SYS/<id>/...`. */
  id: string
  /** Seconds between publications; 0 publishes nothing. */
  intervalSeconds: number
  stats: () => NodeStats
  /** Publishes one message as the broker (aedes `publish`, QoS 0, not retained). */
  publish: (topic: string, payload: Buffer) => void
}

/**
 * Starts publishing; the first publication comes one interval after the start.
 * @returns stop (safe to call twice)
 */
export function startSysPublisher (opts: SysPublisherOptions): () => void {
  if (opts.intervalSeconds <= 0) return () => {}
  const prefix = `$SYS/${opts.id}/`
  let last = new Map<string, string>()
  const timer = setInterval(() => {
    const stats = opts.stats()
    opts.publish(`${prefix}stats`, Buffer.from(JSON.stringify(stats)))
    const now = leaves(stats)
    for (const [path, value] of now) {
      if (last.get(path) !== value) opts.publish(prefix + path, Buffer.from(value))
    }
    last = now
  }, opts.intervalSeconds * 1000)
  timer.unref()
  return () => clearInterval(timer)
}
