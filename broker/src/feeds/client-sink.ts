/**
 * Where the hub's messages for one aedes client go (aedes lib/client.js `deliverQoS`):
 * a clean session gets them straight away; a persistent session's QoS 1 messages are first queued in aedes
 * persistence, in order, so they survive a disconnect like any other QoS 1 message (MQTT 3.1.1 section 4.4);
 * a restored session gets nothing before its CONNACK [MQTT-3.2.0-1].
 */
import { randomUUID } from 'node:crypto'
import type { FeedSink } from './hub.js'

/** The part of an aedes client that feeds use. */
export interface FeedClient {
  readonly id: string
  readonly closed: boolean
  /** False for a persistent session (MQTT 3.1.1 section 3.1.2.4). */
  readonly clean: boolean
  /** False while aedes restores a persistent session's subscriptions, before CONNACK. */
  readonly connackSent: boolean
  deliverQoS: (packet: OutgoingPacket, cb: () => void) => void
  /** Closes the connection (aedes `client.close`). */
  close: () => void
}

/**
 * Messages a persistent session may have waiting to be queued in persistence and sent; past this it is closed as a
 * slow consumer (its session keeps what was queued), so one SUBSCRIBE cannot make the broker queue without end.
 */
const MAX_PENDING_PER_SESSION = 10_000

/** A PUBLISH the hub sends. `brokerId`/`brokerCounter` identify it in aedes' outgoing store and duplicate filter. */
export interface OutgoingPacket {
  cmd: 'publish'
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  dup: boolean
  brokerId?: string
  brokerCounter?: number
}

/** The part of aedes persistence that persistent sessions need. */
export interface OutgoingQueue {
  outgoingEnqueue: (sub: { clientId: string }, packet: OutgoingPacket) => Promise<void>
}

const noop = (): void => {}

/** A persistent session's messages on their way to aedes persistence, then to the client, in order. */
interface SessionQueue {
  pending: number
  over: boolean
  chain: Promise<void>
}

export class ClientSinks {
  readonly #outgoing: OutgoingQueue | null
  readonly #brokerId = `feeds-${randomUUID()}`
  #counter = 0
  readonly #connackWaiters = new WeakMap<FeedClient, Array<() => void>>()
  readonly #queues = new WeakMap<FeedClient, SessionQueue>()

  /** @param outgoing aedes persistence, to queue persistent sessions' QoS 1 messages; null to send directly */
  constructor (outgoing: OutgoingQueue | null) {
    this.#outgoing = outgoing
  }

  /**
   * A sink that sends to `client` on PUBLISH topic `topic` at `qos`.
   * Persistent sessions' packets carry this node's feed broker id and a rising counter (aedes' duplicate filter).
   */
  sink (client: FeedClient, topic: string, qos: 0 | 1): FeedSink {
    const outgoing = this.#outgoing
    if (client.clean || qos === 0 || outgoing === null) {
      return {
        send: (payload) => client.deliverQoS({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, noop),
        get closed () { return client.closed }
      }
    }
    const queue = this.#queueOf(client)
    return {
      send: (payload) => {
        const packet: OutgoingPacket = { cmd: 'publish', topic, payload, qos, retain: false, dup: false, brokerId: this.#brokerId, brokerCounter: ++this.#counter }
        queue.pending++
        // Queued even if the connection goes meanwhile: the session resumes after the last message given here.
        // One chain per session, across its feeds: its messages reach aedes in counter order, as aedes' duplicate
        // filter drops a message whose counter is below one already delivered from the same broker id.
        queue.chain = queue.chain.then(async () => await outgoing.outgoingEnqueue({ clientId: client.id }, packet))
          .then(() => { if (!client.closed) client.deliverQoS(packet, noop) }, noop)
          .finally(() => { queue.pending-- })
        if (queue.pending >= MAX_PENDING_PER_SESSION && !queue.over) {
          queue.over = true
          client.close()
        }
      },
      get closed () { return client.closed || queue.over }
    }
  }

  /** A persistent session's messages not yet queued in persistence, shared by its subscriptions. */
  #queueOf (client: FeedClient): SessionQueue {
    let q = this.#queues.get(client)
    if (q === undefined) {
      q = { pending: 0, over: false, chain: client.connackSent ? Promise.resolve() : this.#afterConnack(client) }
      this.#queues.set(client, q)
    }
    return q
  }

  /** Tells the sinks that aedes has sent a client its CONNACK (aedes event `connackSent`). */
  connackSent (client: FeedClient): void {
    const waiting = this.#connackWaiters.get(client)
    if (waiting === undefined) return
    this.#connackWaiters.delete(client)
    for (const resolve of waiting) resolve()
  }

  async #afterConnack (client: FeedClient): Promise<void> {
    await new Promise<void>((resolve) => {
      const waiting = this.#connackWaiters.get(client)
      if (waiting === undefined) this.#connackWaiters.set(client, [resolve])
      else waiting.push(resolve)
    })
  }
}
