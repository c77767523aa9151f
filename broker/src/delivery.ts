/**
 * Deliveries with one encoding per message. aedes (lib/client.js `deliverQoS0`/`deliverQoS`, lib/write.js) builds a
 * new Packet per subscriber and encodes it again with mqtt-packet's `writeToStream`, which writes it to the
 * connection in four or five pieces under a cork; for one message to N viewers that is N encodings and 5N writes.
 *  - QoS 0: a PUBLISH without packet identifier (MQTT 3.1.1 section 3.3.2.2) has the same bytes for every
 *    subscriber, so the same Buffer is written to every connection.
 *  - QoS 1 to a clean session: the bytes differ only in the 2-byte packet identifier (section 2.3.1), so each
 *    subscriber gets a copy of one encoding with its own identifier written in. aedes stores nothing for a clean
 *    session's outgoing QoS 1 messages, so nothing else changes. Persistent sessions, and QoS 2 to a subscription
 *    granted QoS 2, keep aedes' path. The QoS is the highest granted by the client's subscriptions that match the
 *    topic [MQTT-3.8.4-6] (aedes applied an exact subscription's only).
 * Encodings are kept for the last {@link CACHE_SIZE} payloads only (keyed by payload identity, topic, RETAIN and QoS), so
 * a replayed history is encoded once for all its viewers and nothing holds encoded copies of older messages.
 * Everything else aedes does is kept: the no-local check, the duplicate filter (`brokerId`/`brokerCounter`),
 * `authorizeForward`, the downgrade to an exact subscription's QoS, one `setImmediate` per delivery (so deliveries to
 * one client keep their order), packet identifiers from `client._nextId` at write time, no write once the client is
 * closed, and waiting for `drain`.
 * Until a client's connect is complete (CONNACK and its queue sent), its deliveries wait, and a persistent session's
 * live copies of messages sent from its queue are dropped (session-resume.ts).
 * Each PUBLISH handed to a connection is counted (`messagesSent`, metrics/counters.ts); an encoding of a message whose
 * latency is being timed (metrics/latency.ts) tells it when written.
 */
import mqttPacket from 'mqtt-packet'
import { holdUntilConnected, wasSentFromQueue, type ResumingClient } from './session-resume.js'
import type { Counters } from './metrics/counters.js'
import { sampleFor, sampleWritten, type LatencySample } from './metrics/latency.js'

/** The parts of aedes' Client (lib/client.js, aedes 1.2) this module reads and replaces. */
export interface DeliveringClient extends ResumingClient {
  id: string
  clean: boolean
  connecting: boolean
  connected: boolean
  closed: boolean
  errored: boolean
  duplicates: Record<string, number>
  subscriptions: Record<string, { qos?: number } | undefined>
  _nextId: number
  conn: { write: (chunk: Buffer) => boolean }
  broker: { authorizeForward: (client: DeliveringClient, packet: DeliveredPacket) => DeliveredPacket | null | undefined }
  deliver0: (packet: DeliveredPacket, cb: () => void) => void
  deliverQoS: (packet: DeliveredPacket, cb: () => void) => void
  waitForDrain: (cb: () => void) => void
}

/** A PUBLISH as mqemitter (or the feed hub) hands it to a subscriber. */
export interface DeliveredPacket {
  cmd: string
  topic: string
  payload: Buffer | string
  qos?: number
  retain?: boolean
  dup?: boolean
  messageId?: number
  brokerId?: string
  brokerCounter?: number
  clientId?: string
  nl?: boolean
}

/** Payloads whose encodings are kept. */
export const CACHE_SIZE = 32

interface Encoding {
  topic: string
  flags: number
  bytes: Buffer
  idOffset: number
  /** The timing of this message (publish to delivery), when it is one of the few timed; else null. */
  sample: LatencySample | null
}

const cache = new Map<Buffer | string, Encoding>()

/**
 * The wire bytes of `packet` at `qos` (0 or 1; MQTT 3.1.1 section 3.3) with packet identifier 1, and where the
 * identifier starts (-1 for QoS 0). Shared: callers must not change the bytes.
 */
export function encodePublish (packet: DeliveredPacket, qos: 0 | 1): Encoding {
  // DUP is always 0 here: a first delivery, and an incoming DUP is not propagated [MQTT-3.3.1-3], [MQTT-3.3.1-2].
  const flags = (packet.retain === true ? 1 : 0) | (qos << 2)
  const hit = cache.get(packet.payload)
  if (hit !== undefined && hit.topic === packet.topic && hit.flags === flags) return hit
  const bytes = mqttPacket.generate({ cmd: 'publish', topic: packet.topic, payload: packet.payload ?? Buffer.alloc(0), qos, messageId: qos === 1 ? 1 : undefined, retain: packet.retain === true, dup: false })
  let idOffset = -1
  if (qos === 1) {
    let i = 1
    while ((bytes[i] & 0x80) !== 0) i++ // Remaining Length, 1 to 4 bytes (section 2.2.3)
    idOffset = i + 1 + 2 + Buffer.byteLength(packet.topic) // then the topic name, length-prefixed (section 1.5.3)
  }
  const encoding = { topic: packet.topic, flags, bytes, idOffset, sample: sampleFor(packet.payload) }
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as Buffer | string)
  cache.set(packet.payload, encoding)
  return encoding
}

/**
 * Replaces `client.deliver0` and `client.deliverQoS` (aedes lib/client.js) with ones that write shared encodings.
 * Must be called before the client's first SUBSCRIBE is handled, as aedes reads them when it subscribes;
 * `broker.handle` returning is such a moment (packets are read later, on `readable`).
 * @param counters where each PUBLISH handed to the connection is counted (`messagesSent`); null: not counted
 */
export function shareEncodings (client: DeliveringClient, counters: Counters | null = null): void {
  const aedesDeliverQoS = client.deliverQoS
  client.deliver0 = function deliverQoS0 (packet, cb) {
    if (!client.connected && !client.closed && holdUntilConnected(client, () => client.deliver0(packet, noop))) {
      setImmediate(cb)
      return
    }
    const toForward = forwarded(client, packet)
    if (toForward === null) {
      setImmediate(cb)
      return
    }
    const { bytes, sample } = encodePublish(toForward, 0)
    setImmediate(() => writeThen(client, bytes, cb, counters, sample))
  }
  client.deliverQoS = function deliverQoS (packet, cb) {
    if (!client.connected && !client.closed && holdUntilConnected(client, () => client.deliverQoS(packet, noop))) {
      setImmediate(cb)
      return
    }
    if (packet.qos === 0) {
      client.deliver0(packet, cb)
      return
    }
    // QoS 2 to a clean session whose matching subscriptions grant at most 1 is sent at that QoS here too.
    const granted = client.clean || packet.retain === true ? grantedQoS(client, packet.topic) : 2
    if (!client.clean) {
      if (wasSentFromQueue(client, packet)) {
        setImmediate(cb)
        return
      }
      // A persistent session keeps aedes' path (its outgoing store). A retained message sent at SUBSCRIBE is not
      // stored; aedes downgrades it only by a subscription to the exact topic name, so a wildcard's is applied here
      // [MQTT-3.8.4-6]. Live messages come through the subscription's own QoS already (aedes subscribes QoS 0
      // filters with deliver0).
      if (granted === 0) client.deliver0(packet, cb)
      else {
        if (counters !== null) counters.messagesSent++
        aedesDeliverQoS(granted < (packet.qos ?? 0) ? { ...packet, qos: granted } : packet, cb)
      }
      return
    }
    if ((packet.qos ?? 0) > 1 && granted > 1) {
      if (counters !== null) counters.messagesSent++
      aedesDeliverQoS(packet, cb)
      return
    }
    const toForward = forwarded(client, packet)
    if (toForward === null) {
      setImmediate(cb)
      return
    }
    const qos = Math.min(toForward.qos ?? 1, granted, 1) as 0 | 1
    const encoding = encodePublish(toForward, qos)
    const ownId = toForward.messageId
    setImmediate(() => {
      let id = ownId ?? 0
      if (id === 0) { // aedes' QoSPacket: the client's next identifier, 1..65535
        id = client._nextId
        client._nextId = id >= 65535 ? 1 : id + 1
      }
      if (qos === 0) {
        writeThen(client, encoding.bytes, cb, counters, encoding.sample)
        return
      }
      const bytes = Buffer.allocUnsafe(encoding.bytes.length)
      encoding.bytes.copy(bytes)
      bytes.writeUInt16BE(id, encoding.idOffset)
      writeThen(client, bytes, cb, counters, encoding.sample)
    })
  }
}

const noop = (): void => {}
// `holdUntilConnected` is asked only before a client is connected: a connected one's deliveries (all but a few) make
// no closure for it.

/**
 * The QoS a message on `topic` is sent to `client` at most: the highest granted by its subscriptions whose filter
 * matches the topic (MQTT 3.1.1 section 3.8.4, [MQTT-3.8.4-6]). aedes looks up only a subscription to the exact
 * topic name, so a wildcard subscription's QoS was not applied. Clients with many subscriptions keep aedes' lookup.
 */
function grantedQoS (client: DeliveringClient, topic: string): number {
  const subs = client.subscriptions
  const exact = subs[topic]
  let granted = exact !== undefined ? exact.qos ?? 0 : -1
  let seen = 0
  for (const filter in subs) {
    if (granted === 2) return 2
    if (++seen > 64) return exact !== undefined ? exact.qos ?? 0 : 2 // many subscriptions: aedes' exact lookup
    if (filter !== topic && matches(filter, topic)) granted = Math.max(granted, subs[filter]?.qos ?? 0)
  }
  return granted < 0 ? 2 : granted
}

/** Whether topic filter `filter` matches topic name `topic` (MQTT 3.1.1 section 4.7: `+` one level, `#` the rest). */
export function matches (filter: string, topic: string): boolean {
  if (!filter.includes('+') && !filter.includes('#')) return filter === topic // no split on a delivery's path
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i > 0 || !topic.startsWith('$') // [MQTT-4.7.2-1]
    if (i >= t.length) return false
    if (f[i] === '+') {
      if (i === 0 && topic.startsWith('$')) return false
      continue
    }
    if (f[i] !== t[i]) return false
  }
  return f.length === t.length
}

/** The packet to send to `client` (aedes' no-local check, `dedupe` and `authorizeForward`), or null. */
function forwarded (client: DeliveringClient, packet: DeliveredPacket): DeliveredPacket | null {
  if (packet.clientId === client.id && packet.nl === true) return null
  if (!firstDelivery(client, packet)) return null
  return client.broker.authorizeForward(client, packet) ?? null
}

/**
 * aedes lib/write.js: writes while the client is connecting or connected; `cb` once written, or after `drain`. A
 * write is counted, and a timed message's `sample` told.
 */
function writeThen (client: DeliveringClient, bytes: Buffer, cb: () => void, counters: Counters | null, sample: LatencySample | null): void {
  if (!client.connecting && !client.connected) {
    cb()
    return
  }
  if (counters !== null) counters.messagesSent++
  if (sample !== null) sampleWritten(sample)
  if (!client.conn.write(bytes) && !client.errored) client.waitForDrain(cb)
  else cb()
}

/** aedes lib/client.js `dedupe`: false when this client already had this broker's message `brokerCounter`. */
function firstDelivery (client: DeliveringClient, packet: DeliveredPacket): boolean {
  const id = packet.brokerId
  if (id === undefined || id === null || id === '') return true
  const counter = packet.brokerCounter ?? 0
  if ((client.duplicates[id] ?? 0) >= counter) return false
  client.duplicates[id] = counter
  return true
}
