/**
 * QoS 1 feed messages that are stored but not yet published. aedes publishes a QoS 1 PUBLISH only after its PUBACK
 * was written (MQTT 3.1.1 section 4.3.2); when the publisher's connection closes in between, the message would be in
 * the feed store, with its seq, and never go out live. Such messages are published by the broker when the client goes.
 */
import type { Client } from 'aedes'

interface Pending {
  topic: string
  payload: Buffer
}

export class UnpublishedFeedMessages {
  readonly #pending = new WeakMap<Client, Map<Buffer, Pending>>()

  /** A stamped QoS 1 feed message, handed back to aedes to acknowledge and publish. */
  add (client: Client, topic: string, payload: Buffer): void {
    let mine = this.#pending.get(client)
    if (mine === undefined) {
      mine = new Map()
      this.#pending.set(client, mine)
    }
    mine.set(payload, { topic, payload })
  }

  /** aedes published it (its `publish` event): nothing left to do. */
  published (client: Client | null, payload: unknown): void {
    if (client === null) return
    this.#pending.get(client)?.delete(payload as Buffer)
  }

  /** The client is gone: returns what aedes will never publish for it, and forgets it. */
  take (client: Client): Pending[] {
    const mine = this.#pending.get(client)
    this.#pending.delete(client)
    return mine === undefined ? [] : [...mine.values()]
  }
}
