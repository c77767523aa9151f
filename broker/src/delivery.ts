/**
 * QoS 0 delivery with one encoding per message. aedes (lib/client.js `deliverQoS0`, lib/write.js) builds a new
 * Packet per subscriber and encodes it again with mqtt-packet's `writeToStream`, which writes it to the connection
 * in four or five pieces under a cork; for one message to N viewers that is N encodings and 5N stream writes.
 * A QoS 0 PUBLISH carries no packet identifier (MQTT 3.1.1 section 3.3.2.2), so its bytes are the same for every
 * subscriber: here they are encoded once and the same Buffer is written to every connection.
 *
 * The encoding is kept for the last message only (keyed by payload identity, topic, RETAIN and DUP), so nothing
 * holds encoded copies of history. Everything else aedes does is kept as it is: the no-local check, the duplicate
 * filter (`brokerId`/`brokerCounter`), `authorizeForward`, one `setImmediate` per delivery (so QoS 0 and QoS 1
 * deliveries to one client keep their order), no write once the client is closed, and waiting for `drain`.
 */
import mqttPacket from 'mqtt-packet'

/** The parts of aedes' Client (lib/client.js, aedes 1.2) this module reads and replaces. */
export interface DeliveringClient {
  id: string
  connecting: boolean
  connected: boolean
  errored: boolean
  duplicates: Record<string, number>
  conn: { write: (chunk: Buffer) => boolean }
  broker: { authorizeForward: (client: DeliveringClient, packet: DeliveredPacket) => DeliveredPacket | null | undefined }
  deliver0: (packet: DeliveredPacket, cb: () => void) => void
  waitForDrain: (cb: () => void) => void
}

/** A PUBLISH as mqemitter hands it to subscribers. */
export interface DeliveredPacket {
  cmd: string
  topic: string
  payload: Buffer | string
  qos?: number
  retain?: boolean
  dup?: boolean
  brokerId?: string
  brokerCounter?: number
  clientId?: string
  nl?: boolean
}

let lastPayload: Buffer | string | null = null
let lastTopic = ''
let lastFlags = -1
let lastBytes: Buffer = Buffer.alloc(0)

/** The wire bytes of `packet` sent at QoS 0 (MQTT 3.1.1 section 3.3), encoded once per message. */
export function encodeQoS0 (packet: DeliveredPacket): Buffer {
  const flags = (packet.retain === true ? 1 : 0) | (packet.dup === true ? 2 : 0)
  if (packet.payload === lastPayload && packet.topic === lastTopic && flags === lastFlags) return lastBytes
  const payload = packet.payload ?? Buffer.alloc(0)
  lastBytes = mqttPacket.generate({ cmd: 'publish', topic: packet.topic, payload, qos: 0, retain: packet.retain === true, dup: packet.dup === true })
  lastPayload = packet.payload
  lastTopic = packet.topic
  lastFlags = flags
  return lastBytes
}

/**
 * Replaces `client.deliver0` (aedes lib/client.js) with one that writes the shared encoding. Must be called before
 * the client's first SUBSCRIBE is handled, as aedes reads `deliver0` when it subscribes; `broker.handle` returning
 * is such a moment (packets are read later, on `readable`).
 */
export function shareQoS0Encoding (client: DeliveringClient): void {
  client.deliver0 = function deliverQoS0 (packet, cb) {
    if (packet.clientId === client.id && packet.nl === true) {
      setImmediate(cb)
      return
    }
    const toForward = firstDelivery(client, packet) ? client.broker.authorizeForward(client, packet) : null
    if (toForward === null || toForward === undefined) {
      setImmediate(cb)
      return
    }
    const bytes = encodeQoS0(toForward)
    setImmediate(() => {
      if (!client.connecting && !client.connected) {
        cb()
        return
      }
      if (!client.conn.write(bytes) && !client.errored) client.waitForDrain(cb)
      else cb()
    })
  }
}

/** aedes lib/client.js `dedupe`: false when this client already had this broker's message `brokerCounter`. */
function firstDelivery (client: DeliveringClient, packet: DeliveredPacket): boolean {
  const id = packet.brokerId
  if (id === undefined || id === '') return true
  const counter = packet.brokerCounter ?? 0
  if ((client.duplicates[id] ?? 0) >= counter) return false
  client.duplicates[id] = counter
  return true
}
