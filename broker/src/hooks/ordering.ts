/**
 * Keeps a client's UNSUBSCRIBE and a later SUBSCRIBE of the same filter in order. aedes handles the packets of one
 * read concurrently: an UNSUBSCRIBE still in progress can delete the record of a SUBSCRIBE sent after it, leaving a
 * subscription that is never removed (the closed client then stays in memory). MQTT 3.1.1 section 4.6 wants them
 * in order, so a SUBSCRIBE waits (in authorizeSubscribe) until aedes has finished an UNSUBSCRIBE of the same filter
 * that arrived before it; one that arrived after it does not hold it up (packets sent with the CONNECT are parsed at
 * once but handled only after the CONNACK, so arrival is counted at parse time).
 */
import type { Client } from 'aedes'

/** How long a SUBSCRIBE waits at most for an UNSUBSCRIBE of the same filter to finish, ms. */
const MAX_WAIT_MS = 2000

/** On a SUBSCRIBE's subscription objects: how many UNSUBSCRIBEs of the client had arrived before it. */
const UNSUBSCRIBES_BEFORE = Symbol('tribune.unsubscribesBefore')

type Tagged = { topic: string, [UNSUBSCRIBES_BEFORE]?: number }

interface ClientOrder {
  /** UNSUBSCRIBEs arrived so far. */
  unsubscribes: number
  /** Filters with an UNSUBSCRIBE in progress: the number of the first such UNSUBSCRIBE, and who waits for it. */
  pending: Map<string, { index: number, waiting: Array<() => void> }>
}

export class UnsubscribeOrder {
  readonly #clients = new WeakMap<Client, ClientOrder>()

  #of (client: Client): ClientOrder {
    let mine = this.#clients.get(client)
    if (mine === undefined) {
      mine = { unsubscribes: 0, pending: new Map() }
      this.#clients.set(client, mine)
    }
    return mine
  }

  /** An UNSUBSCRIBE arrived (the client's parser `packet` event, in arrival order). */
  arrived (client: Client, topics: readonly string[]): void {
    const mine = this.#of(client)
    mine.unsubscribes++
    for (const t of topics) if (!mine.pending.has(t)) mine.pending.set(t, { index: mine.unsubscribes, waiting: [] })
  }

  /** A SUBSCRIBE arrived (the parser `packet` event): its subscriptions remember the UNSUBSCRIBEs before them. */
  subscribeArrived (client: Client, subscriptions: readonly object[]): void {
    const n = this.#clients.get(client)?.unsubscribes ?? 0
    for (const sub of subscriptions) (sub as Tagged)[UNSUBSCRIBES_BEFORE] = n
  }

  /** aedes has finished an UNSUBSCRIBE (its `unsubscribe` event): SUBSCRIBEs waiting for these filters go on. */
  finished (client: Client, topics: readonly string[]): void {
    const mine = this.#clients.get(client)
    if (mine === undefined) return
    for (const t of topics) {
      const entry = mine.pending.get(t)
      mine.pending.delete(t)
      for (const go of entry?.waiting ?? []) go()
    }
  }

  /**
   * Calls `go` once no UNSUBSCRIBE of `sub.topic` by `client` that arrived before `sub` is in progress (at once when
   * none is), with `unsubscribedAfter` true when an UNSUBSCRIBE of the filter arrived after `sub` and is in progress
   * (the subscription is about to end: a `$replay` need not start). A subscription not seen arriving (aedes handles a
   * connected client's SUBSCRIBE as soon as it is parsed) counts as arrived after every UNSUBSCRIBE seen so far.
   */
  after (client: Client, sub: { topic: string }, go: (unsubscribedAfter: boolean) => void): void {
    const entry = this.#clients.get(client)?.pending.get(sub.topic)
    const before = (sub as Tagged)[UNSUBSCRIBES_BEFORE]
    if (entry === undefined || (before !== undefined && entry.index > before)) {
      go(entry !== undefined)
      return
    }
    let done = false
    const once = (): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      go(false)
    }
    const timer = setTimeout(once, MAX_WAIT_MS)
    entry.waiting.push(once)
  }
}
