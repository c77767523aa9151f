/**
 * The DUP flag on messages sent again to a persistent session (MQTT 3.1.1 section 3.3.1.1): when a session comes
 * back, aedes sends what its queue holds (lib/handlers/connect.js `emptyQueue`) with the DUP flag the stored packet
 * has, which was always 0. Each persistence knows which of its queued messages were sent before (embedded store: the
 * packet holds the packet identifier it was sent with; Redis: a per-session record), and marks them here.
 */

/** A packet of a persistent session's outgoing queue, as aedes persistence stores it. */
export interface QueuedPacket {
  cmd?: string
  messageId?: number | null
  brokerId?: string
  brokerCounter?: number
  dup?: boolean
}

/**
 * The packets of `queue` in order, with DUP set on each PUBLISH for which `sentBefore` is true [MQTT-3.3.1-1]. A
 * PUBLISH sent for the first time keeps DUP 0, and other packets (PUBREL) are left as they are: a PUBREL has no DUP.
 */
export async function * markRedeliveries (queue: AsyncIterable<unknown>, sentBefore: (packet: QueuedPacket) => boolean): AsyncGenerator<unknown> {
  for await (const item of queue) {
    const packet = item as QueuedPacket
    if (packet.cmd === 'publish' && sentBefore(packet)) packet.dup = true
    yield packet
  }
}
