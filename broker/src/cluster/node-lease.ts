/**
 * A cluster node's lease on its id: one Redis key per id, so two live nodes of one cluster never run under the same
 * id (aedes would drop each one's messages as duplicates of its own). The key is `node:<id>` on a connection whose
 * ioredis `keyPrefix` is the cluster prefix (in Redis: `<prefix>node:<id>`); its value is `<token>:<stamp>`, the
 * token random per run, the stamp counting renewals. It lives 3 heartbeat intervals (the time after which aedes takes
 * a silent node for dead) and is renewed every interval by a script that extends it only while the token is ours.
 *
 * At start a node takes the key if it is free. If another token holds it, the holder is either alive or a run that
 * died (kill -9) whose lease has not expired yet: the node watches the value; a change (a renewal, or another node
 * taking it) means a live node holds the id and the start fails; expiry means the holder is dead and the node takes
 * it. The wait is bounded by the lease's time to live plus a little.
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Logger } from '../log.js'

// KEYS: the lease. ARGV: new value, ttl (ms). Returns {1} when taken, {0, value} when held.
const TAKE = `
local v = redis.call('GET', KEYS[1])
if v then return {0, v} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1}
`

// KEYS: the lease. ARGV: token, new value, ttl (ms). Returns {1} renewed, {2} taken again (it had expired), or
// {0, value} when another token holds it (left as it is).
const RENEW = `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return {2}
end
if string.sub(v, 1, #ARGV[1] + 1) ~= ARGV[1] .. ':' then return {0, v} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1}
`

// KEYS: the lease. ARGV: token. Deletes it only if ours; returns 1 when deleted.
const RELEASE = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then return redis.call('DEL', KEYS[1]) end
return 0
`

type Reply = [number, string?]

interface LeaseCommands {
  tribuneLeaseTake: (key: string, value: string, ttl: string) => Promise<Reply>
  tribuneLeaseRenew: (key: string, token: string, value: string, ttl: string) => Promise<Reply>
  tribuneLeaseRelease: (key: string, token: string) => Promise<number>
}

/** Start refused: a live node of this cluster holds the id. The message names the id and the Redis key. */
export class NodeIdInUseError extends Error {
  override name = 'NodeIdInUseError'
}

export interface NodeLeaseOptions {
  /** Runs the lease's commands; its ioredis `keyPrefix` must be the cluster prefix (the key goes under it). */
  conn: Redis
  /** The cluster prefix, as set in `conn`'s `keyPrefix` (for messages only). */
  prefix: string
  nodeId: string
  /** ms between heartbeats: the lease lives 3 of them and is renewed every one. */
  heartbeatInterval: number
  log: Logger
  /** Told the round trip of each renewal, in seconds (the node's Redis command latency, metrics/). */
  onRoundTrip?: (seconds: number) => void
}

/** A lease held on a node id; renewed in the background until {@link NodeLease.release}. */
export interface NodeLease {
  /** The key in Redis, with the prefix (e.g. `tribune:node:eu-1`). */
  readonly key: string
  /** Stops renewing and deletes the key if it is still ours; waits at most `timeoutMs` for Redis (default 1000). */
  release: (timeoutMs?: number) => Promise<void>
}

/**
 * Takes the lease on `nodeId` before anything else is done under that id, waiting for an earlier holder's lease to
 * expire when it is not renewed (a run that died): at most 3 heartbeat intervals plus a margin (`waitBoundMs`).
 * Renews it every heartbeat interval from then on; a renewal never throws (Redis down: it waits for the reconnect),
 * and logs an error naming the id if another node took the lease meanwhile.
 * @throws NodeIdInUseError when a live node of the cluster holds the id (its lease was renewed or taken while this
 *   node waited, or neither renewed nor expired within the bound)
 * @throws Error naming the id when Redis fails or does not answer within 5 s while the lease is taken
 */
export async function takeNodeLease (opts: NodeLeaseOptions): Promise<NodeLease> {
  const { nodeId, log } = opts
  const conn = opts.conn as Redis & LeaseCommands
  conn.defineCommand('tribuneLeaseTake', { numberOfKeys: 1, lua: TAKE })
  conn.defineCommand('tribuneLeaseRenew', { numberOfKeys: 1, lua: RENEW })
  conn.defineCommand('tribuneLeaseRelease', { numberOfKeys: 1, lua: RELEASE })
  const key = `node:${nodeId}`
  const fullKey = `${opts.prefix}${key}`
  const ttl = leaseTtl(opts.heartbeatInterval)
  const token = randomBytes(8).toString('hex')
  let stamp = 0
  const value = (): string => `${token}:${stamp++}`

  // Redis was reachable a moment ago; should it go down now, fail the start rather than wait in the offline queue.
  const take = async (): Promise<Reply> => {
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        conn.tribuneLeaseTake(key, value(), String(ttl)),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('no answer within 5 s')), 5000)
        })
      ])
    } catch (err) {
      throw new Error(`node id ${nodeId}: cannot take its lease ${fullKey} in Redis (${(err as Error).message})`)
    } finally {
      clearTimeout(timer)
    }
  }
  let [taken, holder] = await take()
  if (taken !== 1) {
    const first = holder
    const bound = waitBoundMs(opts.heartbeatInterval)
    const poll = Math.min(Math.max(Math.floor(opts.heartbeatInterval / 5), 20), 250)
    const started = Date.now()
    log.info({ nodeId, key: fullKey, waitMs: bound }, 'node id held by another run: waiting for its lease (if it is not renewed, that run died and this node takes the id)')
    while (taken !== 1) {
      if (holder !== first) {
        throw new NodeIdInUseError(`node id ${nodeId} is held by a live node of this cluster (its lease ${fullKey} in Redis was renewed or taken while this node waited): give this node another --node-id, or stop the other node first`)
      }
      if (Date.now() - started >= bound) {
        throw new NodeIdInUseError(`node id ${nodeId} is held by another node of this cluster: its lease ${fullKey} in Redis was neither renewed nor expired within ${bound} ms (a live node with a longer --heartbeat-interval?): give this node another --node-id, or stop the other node first`)
      }
      await new Promise((resolve) => setTimeout(resolve, poll))
      ;[taken, holder] = await take()
    }
    log.info({ nodeId, key: fullKey, waitedMs: Date.now() - started }, 'the earlier holder\'s lease on this node id expired: taken')
  }

  let renewing = false
  let lostTo: string | null = null
  const renew = async (): Promise<void> => {
    if (renewing) return // the last one still waits for Redis
    renewing = true
    try {
      const sent = performance.now()
      const [status, other] = await conn.tribuneLeaseRenew(key, token, value(), String(ttl))
      opts.onRoundTrip?.((performance.now() - sent) / 1000)
      if (status === 0) {
        const otherToken = String(other).split(':')[0]
        if (lostTo !== otherToken) log.error({ nodeId, key: fullKey }, `the lease on node id ${nodeId} was taken by another node: two nodes of this cluster run under this id, and lose each other's messages; stop one of them`)
        lostTo = otherToken
      } else {
        if (status === 2) log.warn({ nodeId, key: fullKey }, 'the lease on this node id had expired (Redis unreachable or restarted for longer than the lease): taken again')
        else if (lostTo !== null) log.info({ nodeId, key: fullKey }, 'the lease on this node id is this node\'s again')
        lostTo = null
      }
    } catch {
      // Connection closed (the node is stopping) or a script error after Redis came back: the next beat tries again.
    } finally {
      renewing = false
    }
  }
  const timer = setInterval(() => { void renew() }, opts.heartbeatInterval)
  timer.unref()

  let released = false
  return {
    key: fullKey,
    release: async (timeoutMs = 1000) => {
      if (released) return
      released = true
      clearInterval(timer)
      let timeout: NodeJS.Timeout | undefined
      await Promise.race([
        conn.tribuneLeaseRelease(key, token).catch(() => 0),
        new Promise((resolve) => { timeout = setTimeout(resolve, timeoutMs) })
      ])
      clearTimeout(timeout)
    }
  }
}

/** The lease's time to live, ms: 3 heartbeat intervals (aedes takes a node silent that long for dead). */
export function leaseTtl (heartbeatInterval: number): number {
  return 3 * heartbeatInterval
}

/**
 * The longest a starting node waits for another run's lease, ms: its time to live plus a margin for polling and
 * Redis' answers (half a second to 2 s, one heartbeat interval in between).
 */
export function waitBoundMs (heartbeatInterval: number): number {
  return leaseTtl(heartbeatInterval) + Math.min(Math.max(heartbeatInterval, 500), 2000)
}
