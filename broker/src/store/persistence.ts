/**
 * aedes persistence on the embedded store, with retained messages also held in memory: a viewer's SUBSCRIBE is
 * answered from memory (no database read per join), while every retained write still goes to disk first.
 * Sessions, subscriptions, QoS 1/2 state and wills are aedes-persistence-level's, unchanged.
 */
import { Readable } from 'node:stream'
import AsyncLevelPersistence from 'aedes-persistence-level/asyncPersistence.js'
import { topicMatches, hasWildcard } from '../feeds/topic-filter.js'

interface RetainedPacket {
  cmd?: string
  topic: string
  payload: Buffer
  qos: number
  retain?: boolean
}

export class CachedRetainedPersistence extends AsyncLevelPersistence {
  readonly #retained = new Map<string, RetainedPacket>()

  /** Loads sessions (aedes-persistence-level) and every retained message into memory. MQTT 3.1.1 section 3.3.1.3. */
  override async setup (broker: unknown): Promise<void> {
    await super.setup(broker)
    for await (const packet of super.createRetainedStream('#') as AsyncIterable<RetainedPacket>) {
      this.#retained.set(packet.topic, packet)
    }
  }

  /** Stores (or, with an empty payload, deletes) a retained message: on disk first, then in memory. */
  override async storeRetained (packet: RetainedPacket): Promise<void> {
    await super.storeRetained(packet)
    if (packet.payload.length === 0) {
      this.#retained.delete(packet.topic)
    } else {
      this.#retained.set(packet.topic, { cmd: 'publish', topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: true })
    }
  }

  /** Retained messages matching `pattern` (a topic filter), from memory. */
  override createRetainedStream (pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern])
  }

  /** Retained messages matching any of `patterns`, from memory; each message once. */
  override createRetainedStreamCombi (patterns: string[]): Readable {
    const out: RetainedPacket[] = []
    const seen = new Set<string>()
    for (const pattern of patterns) {
      if (!hasWildcard(pattern)) {
        const packet = this.#retained.get(pattern)
        if (packet !== undefined && !seen.has(pattern)) {
          seen.add(pattern)
          out.push(packet)
        }
        continue
      }
      for (const [topic, packet] of this.#retained) {
        if (!seen.has(topic) && topicMatches(pattern, topic)) {
          seen.add(topic)
          out.push(packet)
        }
      }
    }
    return Readable.from(out)
  }

  /** Number of retained messages held. */
  get retainedCount (): number {
    return this.#retained.size
  }
}
