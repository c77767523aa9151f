/**
 * Retained messages held in memory, so a SUBSCRIBE is answered without a store read (MQTT 3.1.1 section 3.3.1.3).
 * Shared by the embedded persistence (store/persistence.ts) and the cluster one (cluster/persistence.ts); each keeps
 * it current from its own writes and, in a cluster, from the other nodes' writes.
 */
import { Readable } from 'node:stream'
import { topicMatches, hasWildcard } from '../feeds/topic-filter.js'

/** A retained PUBLISH as aedes hands it to the persistence and expects it back. */
export interface RetainedPacket {
  cmd?: string
  topic: string
  payload: Buffer
  qos: number
  retain?: boolean
}

/**
 * Retained messages as both persistences offer them to Tribune (besides aedes' API): read from memory, and written
 * (an empty payload deletes: MQTT 3.1.1 section 3.3.1.3) to the store, and so, in a cluster, on every node.
 */
export interface RetainedStore {
  retainedFor: (patterns: string[]) => RetainedPacket[]
  storeRetained: (packet: RetainedPacket) => Promise<void>
}

export class RetainedCache {
  readonly #retained = new Map<string, RetainedPacket>()

  /** Stores a retained message, or (empty payload) deletes the topic's one: MQTT 3.1.1 section 3.3.1.3. */
  apply (packet: RetainedPacket): void {
    if (packet.payload.length === 0) {
      this.#retained.delete(packet.topic)
    } else {
      this.#retained.set(packet.topic, { cmd: 'publish', topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: true })
    }
  }

  /** Forgets every retained message. */
  clear (): void {
    this.#retained.clear()
  }

  /** Topics with a retained message. */
  get size (): number {
    return this.#retained.size
  }

  /** Retained messages matching any of `patterns` (topic filters), each once: what a SUBSCRIBE gets (section 3.3.1.3). */
  list (patterns: string[]): RetainedPacket[] {
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
    return out
  }

  /** The same, as the object stream aedes reads where it is not patched (createRetainedStream). */
  stream (patterns: string[]): Readable {
    const out = new Readable({ objectMode: true, read () {} })
    for (const packet of this.list(patterns)) out.push(packet)
    out.push(null)
    return out
  }
}
