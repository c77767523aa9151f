/**
 * aedes persistence on the embedded store, with retained messages also held in memory: a viewer's SUBSCRIBE is
 * answered from memory (no database read per join), while every retained write still goes to disk first.
 * Sessions, subscriptions, QoS 1/2 state and wills are aedes-persistence-level's, unchanged.
 */
import type { Readable } from 'node:stream'
import AsyncLevelPersistence from 'aedes-persistence-level/asyncPersistence.js'
import { RetainedCache, type RetainedPacket } from './retained.js'

/**
 * QoS 1/2 messages queued for one persistent session at most; later ones are dropped until it catches up
 * (as Mosquitto's max_queued_messages, default 1000), so a session that never returns cannot grow the store without end.
 */
export const MAX_QUEUED_PER_SESSION = 1000

export class CachedRetainedPersistence extends AsyncLevelPersistence {
  readonly #retained = new RetainedCache()
  /** Messages queued and not yet acknowledged, per client id (counted since start). */
  readonly #queued = new Map<string, number>()
  /** Messages dropped because a session's queue was full. */
  droppedQueued = 0

  /** Loads sessions (aedes-persistence-level) and every retained message into memory. MQTT 3.1.1 section 3.3.1.3. */
  override async setup (broker: unknown): Promise<void> {
    await super.setup(broker)
    for await (const packet of super.createRetainedStream('#') as AsyncIterable<RetainedPacket>) {
      this.#retained.apply(packet)
    }
  }

  /** Stores (or, with an empty payload, deletes) a retained message: on disk first, then in memory. */
  override async storeRetained (packet: RetainedPacket): Promise<void> {
    await super.storeRetained(packet)
    this.#retained.apply(packet)
  }

  /** Retained messages matching `pattern` (a topic filter), from memory. */
  override createRetainedStream (pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern])
  }

  /** Retained messages matching any of `patterns`, from memory; each message once. */
  override createRetainedStreamCombi (patterns: string[]): Readable {
    return this.#retained.stream(patterns)
  }

  /** Queues a message for a persistent session, unless its queue is full (then it is dropped and counted). */
  override async outgoingEnqueue (sub: { clientId: string }, packet: unknown): Promise<void> {
    const n = this.#queued.get(sub.clientId) ?? 0
    if (n >= MAX_QUEUED_PER_SESSION) {
      this.droppedQueued++
      return
    }
    this.#queued.set(sub.clientId, n + 1)
    await super.outgoingEnqueue(sub, packet)
  }

  /** An acknowledged message leaves the session's queue (MQTT 3.1.1 section 4.3.2). */
  override async outgoingClearMessageId (client: { id: string }, packet: unknown): Promise<unknown> {
    const cleared = await super.outgoingClearMessageId(client, packet)
    const n = this.#queued.get(client.id)
    if (cleared !== undefined && n !== undefined) {
      if (n <= 1) this.#queued.delete(client.id)
      else this.#queued.set(client.id, n - 1)
    }
    return cleared
  }

  /** A session started clean: its queue is gone (MQTT 3.1.1 section 3.1.2.4). */
  override async cleanSubscriptions (client: { id: string }): Promise<void> {
    this.#queued.delete(client.id)
    await super.cleanSubscriptions(client)
  }

}
