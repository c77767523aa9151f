/**
 * A persistent session's queue as aedes sends it when the session comes back (lib/handlers/connect.js `emptyQueue`):
 *  - the DUP flag on messages sent before (MQTT 3.1.1 section 3.3.1.1): aedes sends each with the DUP flag the stored
 *    packet has, which was always 0. Each persistence knows which of its queued messages were sent before (embedded
 *    store: the packet holds the packet identifier it was sent with; Redis: a per-session record), and marks them here;
 *  - each message handed to aedes is noted (session-resume.ts), so its live copy is not sent again.
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

