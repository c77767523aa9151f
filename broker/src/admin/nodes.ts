/**
 * Which nodes of the cluster are alive, as this node knows from the message stream: every node publishes
 * `$SYS/<id>/birth` at start and `$SYS/<id>/heartbeat` every heartbeat interval (aedes). A node heard within 3
 * intervals is alive (aedes' own rule for wills). A node hearing another's birth answers with a heartbeat at once, so
 * the newcomer knows every live node within a round trip instead of a heartbeat interval. Admin answers carry this
 * list, so an operator asking `all` knows whose answers to wait for.
 */

/** The part of a message stream (aedes' mq, or cluster/emitter.ts before aedes exists) the directory listens to. */
export interface HeartbeatStream {
  on: (topic: string, listener: (packet: { payload: Buffer | string }, cb: () => void) => void, done?: () => void) => unknown
}

export class NodeDirectory {
  readonly #self: string
  readonly #heartbeatMs: number
  readonly #seen = new Map<string, number>()
  readonly #announce: () => void

  /**
   * @param self this node's id (always alive)
   * @param heartbeatMs the cluster's heartbeat interval, ms
   * @param announce publishes this node's heartbeat (`$SYS/<self>/heartbeat`, payload its id)
   */
  constructor (self: string, heartbeatMs: number, announce: () => void) {
    this.#self = self
    this.#heartbeatMs = heartbeatMs
    this.#announce = announce
  }

  /**
   * Listens to births and heartbeats on the node's message stream; resolves once subscribed. Call it before this
   * node's own birth is published, so the heartbeats the others answer it with are heard.
   */
  async listen (mq: HeartbeatStream): Promise<void> {
    const hear = (born: boolean) => (packet: { payload: Buffer | string }, cb: () => void): void => {
      const id = String(packet.payload)
      if (id !== this.#self && id !== '') {
        this.#seen.set(id, Date.now())
        if (born) this.#announce()
      }
      cb()
    }
    await Promise.all([
      new Promise<void>((resolve) => mq.on('$SYS/+/heartbeat', hear(false), resolve)),
      new Promise<void>((resolve) => mq.on('$SYS/+/birth', hear(true), resolve))
    ])
  }

  /** The ids of the live nodes, this one included, sorted. */
  live (): string[] {
    const since = Date.now() - 3 * this.#heartbeatMs
    for (const [id, at] of this.#seen) if (at < since) this.#seen.delete(id)
    return [this.#self, ...this.#seen.keys()].sort()
  }
}
