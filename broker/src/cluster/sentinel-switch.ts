/**
 * Follows the sentinels' `+switch-master` announcements (Redis Sentinel publishes one on each sentinel when the master
 * changes: `<name> <old ip> <old port> <new ip> <new port>`): each connection of the node that is up and not on the
 * new master is made again, so it asks the sentinels for the master and lands on the new one. This is what moves a
 * node off a master that was demoted while alive (a manual `SENTINEL FAILOVER`, a partition healed): its connections
 * would otherwise stay open to a replica (subscribers would hear only that replica, and writes be refused). When the
 * master died, the connections are already reconnecting by themselves.
 *
 * ioredis' own `failoverDetector` does the same but makes every connection again on every announcement, including
 * those already on the new master: with three sentinels announcing the switch over a few seconds, connections that
 * had moved were cut once more (measured: /readyz 503 again about 1 s after the node was back).
 */
import { Redis } from 'ioredis'
import type { Logger } from '../log.js'

export interface SentinelSwitchWatch {
  /** Closes the connections to the sentinels. */
  stop: () => void
}

/** `::ffff:127.0.0.1` (an IPv4 address on a dual-stack socket) as `127.0.0.1`. */
const plainAddress = (address: string | undefined): string => (address ?? '').replace(/^::ffff:/, '')

/**
 * Subscribes to `+switch-master` on every sentinel (one connection each, reconnecting by itself).
 * @param conns the node's connections to the master (made in ioredis' sentinel mode)
 */
export function watchSentinelSwitches (sentinels: Array<{ host: string, port: number }>, masterName: string, conns: Redis[], log: Logger): SentinelSwitchWatch {
  // Connections cut and not back yet: every sentinel announces the switch, within milliseconds of each other at times.
  const moving = new WeakSet<Redis>()
  for (const conn of conns) conn.on('ready', () => moving.delete(conn))
  const watchers = sentinels.map(({ host, port }) => {
    const watcher = new Redis({ host, port, maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(100 * times, 2000) })
    watcher.on('error', () => {}) // a sentinel down: the others announce the switch too
    watcher.on('message', (_channel: string, message: string) => {
      const [name, , , ip, newPort] = message.split(' ')
      if (name !== masterName || ip === undefined) return
      const moved: string[] = []
      for (const conn of conns) {
        const stream = conn.stream
        const at = `${plainAddress(stream?.remoteAddress)}:${String(stream?.remotePort)}`
        if (conn.status !== 'ready' || moving.has(conn) || at === `${ip}:${newPort}`) continue
        moving.add(conn)
        moved.push(at)
        conn.disconnect(true)
      }
      if (moved.length > 0) log.warn({ master: `${ip}:${newPort}`, sentinel: `${host}:${port}`, connections: moved.length, were: [...new Set(moved)] }, 'the sentinels switched the Redis master; moving to it')
    })
    watcher.subscribe('+switch-master').catch(() => {})
    return watcher
  })
  return { stop: () => { for (const w of watchers) w.disconnect() } }
}
