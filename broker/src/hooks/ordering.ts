/**
 * Keeps a client's UNSUBSCRIBE and a later SUBSCRIBE of the same filter in order. aedes handles the packets of one
 * read concurrently: an UNSUBSCRIBE still in progress can delete the record of a SUBSCRIBE sent after it, leaving a
 * subscription that is never removed (the closed client then stays in memory). MQTT 3.1.1 section 4.6 wants them
 * in order, so a SUBSCRIBE waits (in authorizeSubscribe) until aedes has finished an UNSUBSCRIBE of the same filter.
 */
import type { Client } from 'aedes'

/** How long a SUBSCRIBE waits at most for an UNSUBSCRIBE of the same filter to finish, ms. */
const MAX_WAIT_MS = 2000

export class UnsubscribeOrder {
  readonly #pending = new WeakMap<Client, Map<string, Array<() => void>>>()

  /** An UNSUBSCRIBE arrived (the client's parser `packet` event, in arrival order). */
  arrived (client: Client, topics: readonly string[]): void {
    let mine = this.#pending.get(client)
    if (mine === undefined) {
      mine = new Map()
      this.#pending.set(client, mine)
    }
    for (const t of topics) if (!mine.has(t)) mine.set(t, [])
  }

  /** aedes has finished an UNSUBSCRIBE (its `unsubscribe` event): SUBSCRIBEs waiting for these filters go on. */
  finished (client: Client, topics: readonly string[]): void {
    const mine = this.#pending.get(client)
    if (mine === undefined) return
    for (const t of topics) {
      const waiting = mine.get(t)
      mine.delete(t)
      for (const go of waiting ?? []) go()
    }
  }

  /** Calls `go` once no UNSUBSCRIBE of `topic` by `client` is in progress (at once when none is). */
  after (client: Client, topic: string, go: () => void): void {
    const waiting = this.#pending.get(client)?.get(topic)
    if (waiting === undefined) {
      go()
      return
    }
    let done = false
    const once = (): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      go()
    }
    const timer = setTimeout(once, MAX_WAIT_MS)
    waiting.push(once)
  }
}
