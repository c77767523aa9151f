/**
 * What a session coming back is sent, in order: its CONNACK, then its queue, then live messages, none twice.
 *
 * aedes subscribes a persistent session (clean session off) to its stored topic filters before its CONNACK
 * (lib/handlers/connect.js `restoreSubs`) and sends its queue after the CONNACK (`emptyQueue`); a message that arrived
 * meanwhile was written at once: before the CONNACK, breaking [MQTT-3.2.0-1] (MQTT.js then fails with "connack
 * timeout"), ahead of older queued messages (MQTT 3.1.1 section 4.6), and, since aedes queues every QoS 1/2 message
 * for the matching persistent sessions before it publishes it, a second time from the queue, even after the session
 * had acknowledged the first copy (section 4.3.2).
 *
 * Here every delivery to a client waits until aedes has sent its CONNACK and its queue (the client's `connected`
 * event, or its close). Then the messages already sent from the queue are dropped, and the others are sent in the
 * order they came. A message sent from the queue is recognised by its `brokerId:brokerCounter`, noted by the
 * persistence as it hands the queue to aedes ({@link sentFromQueue}); its live copies are dropped for
 * {@link KEEP_MS} (a copy on its way through the message stream comes within that, unless the stream was cut).
 */

/** The parts of an aedes client (lib/client.js) this module reads. */
export interface ResumingClient {
  readonly clean: boolean
  readonly connected: boolean
  readonly closed: boolean
  once: (event: 'connected', listener: () => void) => unknown
  close: () => void
}

/** A message as the queue or the message stream carries it. */
export interface ResumedPacket {
  brokerId?: string | null
  brokerCounter?: number | string
}

/** Deliveries one connecting client may have waiting; past this it is closed as a slow consumer (its queue stays). */
export const MAX_HELD = 10_000

/** ms after its queue was read during which the live copies of a message sent from it are dropped. */
export const KEEP_MS = 60_000

const held = new WeakMap<ResumingClient, Array<() => void>>()
const fromQueue = new WeakMap<object, { keys: Set<string>, since: number }>()

const keyOf = (packet: ResumedPacket): string => `${String(packet.brokerId)}:${String(packet.brokerCounter)}`

/**
 * Holds a delivery to `client` until its connect is complete (CONNACK and queue sent) [MQTT-3.2.0-1].
 * @param deliver the delivery, made again once the client is connected (dropped if it closes first)
 * @returns true when held (the caller is done with it), false when `client` is connected (or closed): deliver now
 */
export function holdUntilConnected (client: ResumingClient, deliver: () => void): boolean {
  if (client.connected || client.closed) return false
  let waiting = held.get(client)
  if (waiting === undefined) {
    const list: Array<() => void> = []
    waiting = list
    held.set(client, list)
    client.once('connected', () => {
      held.delete(client)
      for (const fn of list) fn()
    })
  }
  waiting.push(deliver)
  if (waiting.length === MAX_HELD) client.close()
  return true
}

/**
 * Notes a message of a persistent session's queue as aedes is about to send it at connect: its live copy, coming
 * through the message stream, is then not sent again ({@link wasSentFromQueue}). A clean session's queue is only
 * cleared by aedes, not sent: nothing is noted.
 * @param client the aedes client, as aedes passes it to the persistence's `outgoingStream`
 */
export function sentFromQueue (client: { clean?: boolean }, packet: ResumedPacket): void {
  if (client.clean !== false || packet.brokerId == null) return
  let noted = fromQueue.get(client)
  if (noted === undefined) {
    noted = { keys: new Set(), since: Date.now() }
    fromQueue.set(client, noted)
  }
  noted.keys.add(keyOf(packet))
}

/**
 * Whether `packet` was sent to `client` from its queue at this connect, less than {@link KEEP_MS} ago. Every live copy
 * is recognised (one per matching subscription, which aedes' duplicate filter would not catch: it never saw the
 * queued one).
 */
export function wasSentFromQueue (client: object, packet: ResumedPacket): boolean {
  const noted = fromQueue.get(client)
  if (noted === undefined || packet.brokerId == null) return false
  if (Date.now() - noted.since > KEEP_MS) {
    fromQueue.delete(client)
    return false
  }
  return noted.keys.has(keyOf(packet))
}
