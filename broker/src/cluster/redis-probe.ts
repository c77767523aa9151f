/**
 * Whether Redis answers, not only whether its TCP connection is up: a stopped (SIGSTOP), swapping or overloaded Redis
 * keeps its connections open while every command waits. The probe sends PING on one connection every `everyMs`, one
 * at a time, and Redis counts as answering while the last PING was answered and no PING has waited longer than
 * `timeoutMs` since it was sent or, for one that waited for a reconnect, since the connection was back (while it is
 * down, the connection's own status says so). A node's readiness (/readyz) follows it (cluster/open.ts).
 */
import type { Redis } from 'ioredis'

export interface RedisProbe {
  /** True while Redis answers PING within the timeout. */
  answering: () => boolean
  /** Stops probing. */
  stop: () => void
}

/**
 * Starts probing `conn` (its commands wait in ioredis' queue while it is down: a PING then counts as unanswered).
 * @param everyMs ms between PINGs (a PING is sent only once the previous one was answered)
 * @param timeoutMs ms a PING may wait before Redis counts as not answering
 * @param onChange told each time Redis stops or starts answering, with the ms the PING under way has waited
 */
export function probeRedis (conn: Redis, opts: { everyMs: number, timeoutMs: number, onChange?: (answering: boolean, waitedMs: number) => void }): RedisProbe {
  let sentAt: number | null = null // the PING under way, if any
  let readyAt = 0 // when the connection was last (re)established
  let lastOk = true
  let was = true
  conn.on('ready', () => { readyAt = Date.now() })
  const answering = (): boolean => lastOk && (sentAt === null || Date.now() - Math.max(sentAt, readyAt) <= opts.timeoutMs)
  const check = (): void => {
    const now = answering()
    if (now !== was) {
      was = now
      opts.onChange?.(now, sentAt === null ? 0 : Date.now() - sentAt)
    }
  }
  const tick = (): void => {
    check()
    if (sentAt !== null) return
    const at = Date.now()
    sentAt = at
    conn.ping().then(() => { lastOk = true }, () => { lastOk = false }).finally(() => {
      if (sentAt === at) sentAt = null
      check()
    })
  }
  const timer = setInterval(tick, opts.everyMs)
  timer.unref()
  tick()
  return {
    answering,
    stop: () => clearInterval(timer)
  }
}
