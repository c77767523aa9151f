/**
 * A persistent session's queue as aedes sends it when the session comes back (lib/handlers/connect.js `emptyQueue`):
 *  - the DUP flag on messages sent before (MQTT 3.1.1 section 3.3.1.1): aedes sends each with the DUP flag the stored
 *    packet has, which was always 0. Each persistence knows which of its queued messages were sent before (embedded
 *    store: the packet holds the packet identifier it was sent with; Redis: a per-session record), and marks them here;
 *  - each message handed to aedes is noted (session-resume.ts), so its live copy is not sent again;
 *  - where the identifiers of the messages sent before lie, so new ones start clear of them ({@link nextFreeIdentifier}).
 */
import { sentFromQueue } from '../session-resume.js'

/** A packet of a persistent session's outgoing queue, as aedes persistence stores it. */
export interface QueuedPacket {
  cmd?: string
  messageId?: number | null
  brokerId?: string
  brokerCounter?: number
  dup?: boolean
}

/**
 * The packets of `queue` in order, with DUP set on each PUBLISH for which `sentBefore` is true [MQTT-3.3.1-1], each
 * noted as sent from the queue to `client`. A PUBLISH sent for the first time keeps DUP 0, and other packets (PUBREL)
 * are left as they are: a PUBREL has no DUP.
 * @param client the aedes client the queue is for, as aedes passes it to `outgoingStream`
 */
export async function * markRedeliveries (client: { clean?: boolean }, queue: AsyncIterable<unknown>, sentBefore: (packet: QueuedPacket) => boolean): AsyncGenerator<unknown> {
  for await (const item of queue) {
    const packet = item as QueuedPacket
    if (packet.cmd === 'publish' && sentBefore(packet)) packet.dup = true
    sentFromQueue(client, packet)
    yield packet
  }
}

/**
 * The packet identifier (1..65535, MQTT 3.1.1 section 2.3.1) a session's new messages should start at so they run
 * clear of `inFlight`, the identifiers of its messages sent before and not acknowledged, which go again with the same
 * identifiers [MQTT-4.4.0-1]: the first of the longest run of free identifiers, counting round from 65535 to 1 (an
 * earlier connection took its identifiers in turn, so the run after them is long). Undefined when none is in flight.
 */
export function nextFreeIdentifier (inFlight: Iterable<number>): number | undefined {
  const ids = [...new Set(inFlight)].filter((id) => id >= 1 && id <= 65535).sort((a, b) => a - b)
  if (ids.length === 0) return undefined
  // The free run from the last identifier round to the first, then those between neighbours.
  let best = ids[ids.length - 1]
  let longest = 65535 - ids[ids.length - 1] + ids[0] - 1
  for (let i = 1; i < ids.length; i++) {
    const free = ids[i] - ids[i - 1] - 1
    if (free > longest) {
      longest = free
      best = ids[i - 1]
    }
  }
  return best >= 65535 ? 1 : best + 1
}
