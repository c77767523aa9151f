/**
 * PUBLISH (and wills): the broker's own `$SYS` and `$replay` topics and U+0000 are refused; the identity's rules
 * decide the rest (`$admin` and other `$` topics included); a feed publish is stamped and stored before aedes
 * acknowledges it; a permitted `$admin` publish is an admin request (admin/service.ts). A refused PUBLISH closes the
 * connection and is never delivered (MQTT 3.1.1 section 3.3.5: the server may not tell the client, it acknowledges or
 * closes).
 * Counted (metrics/counters.ts): every PUBLISH from a client, each refusal by reason, each feed message stored; and a
 * sample of the accepted ones is timed to delivery (metrics/latency.ts).
 */
import type { Client, PublishPacket } from 'aedes'
import { reservedPrefix, topicTooBig, type HookContext } from './context.js'
import { refusalLogFields } from '../connection-log.js'
import { markDisconnect } from '../disconnect-reason.js'
import { willOf } from '../aedes-internals.js'
import type { PublishRefusal } from '../metrics/counters.js'

/**
 * Whether aedes, given the go-ahead now, writes the PUBACK and then publishes the message itself: its next step
 * (lib/handlers/publish.js, called synchronously from the callback) writes the PUBACK only to a client connecting or
 * connected (lib/write.js), and a write to a stream already closed or ended never completes, so nothing is published.
 */
function aedesWillAcknowledge (client: Client): boolean {
  return !client.closed && (client.connecting || client.connected) && !client.conn.destroyed && !client.conn.writableEnded
}

export function publishHook (ctx: HookContext): (client: Client | null, packet: PublishPacket, cb: (err?: Error | null) => void) => void {
  const { access, feeds, log, persistence, metrics } = ctx
  const refused = (reason: PublishRefusal): void => { if (metrics !== null) metrics.counters.publishRefused[reason]++ }
  const stored = (): void => { if (metrics !== null) metrics.counters.feedMessagesStored++ }
  const accepted = (packet: PublishPacket): void => { metrics?.publishAccepted(packet.payload) }
  /** The last QoS 2 feed publishes per client, by packet id: a retransmission gets the same envelope. */
  const recentQoS2 = new WeakMap<Client, Map<number, { topic: string, original: Buffer, envelope: Promise<Buffer | null> }>>()
  /**
   * Refuses the PUBLISH (aedes then closes the connection; a will is dropped) and logs it with the fields every
   * refusal has (connection-log.ts); no return code: MQTT 3.1.1 has no negative PUBACK.
   */
  const refuse = (client: Client | null, topic: string, reason: string, callback: (err?: Error | null) => void, err?: Error): void => {
    // A will comes from a client that is gone (null), or closing (aedes publishes it from the client's close).
    const will = client === null || client.closed
    const fields = { ...refusalLogFields(client, access, reason), topic, ...(err !== undefined ? { err } : {}) }
    if (err !== undefined) log.error(fields, 'feed PUBLISH refused; not acknowledged')
    else log.warn(fields, will ? 'will refused' : 'PUBLISH refused; connection closed')
    if (!will) markDisconnect(client, 'publish-refused', reason)
    callback(err ?? new Error(reason))
  }
  return function authorizePublish (client, packet, callback) {
    const topic = packet.topic
    // aedes publishes a will itself once this hook has called back (lib/client.js `close`, or the will sweep with the
    // client gone: null); it asks with the client's own will object, cleared right after this call.
    const will = client === null || packet === willOf(client)
    if (client !== null && metrics !== null) metrics.counters.messagesReceived++
    if (client !== null && access.revoked(client)) {
      // A client a reload disconnected (its credential removed or revoked, or a subscription taken away) publishes
      // nothing more, its will included: the server ended the connection on purpose, which is not the unexpected
      // loss of connection a will announces (MQTT 3.1.1 section 3.1.2.5). aedes then deletes the stored will.
      refused('not-authorized')
      refuse(client, topic, `${will ? 'will' : 'PUBLISH'} of a client disconnected by a reload (SIGHUP) not published`, callback)
      return
    }
    // Also wills published by the broker for a client that is gone (client null): `$SYS` and `$replay` belong to the
    // broker; `$admin` is left to the topic rules (operators), and so are other `$` topics (`$TopicA/B`).
    const reserved = reservedPrefix(topic)
    if ((reserved !== null && reserved !== '$admin') || topic.includes('\u0000')) {
      refused('reserved-topic')
      refuse(client, topic, `PUBLISH to ${JSON.stringify(topic)} refused: ${reserved !== null ? `${reserved} topics belong to the broker` : 'U+0000 is not allowed (MQTT 3.1.1 section 1.5.3)'}`, callback)
      return
    }
    const tooBig = topicTooBig(topic, ctx.limits)
    if (tooBig !== null) {
      refused('topic-limits')
      refuse(client, topic, `PUBLISH refused: ${tooBig}`, callback)
      return
    }
    if (!access.mayPublish(client, topic)) {
      const who = client !== null ? access.identity(client)?.id : undefined
      refused('not-authorized')
      refuse(client, topic, `PUBLISH to ${topic} not authorized for ${who ?? 'this client'} by the topic rules`, callback)
      return
    }
    if (reserved === '$admin') {
      // An operator's admin request: answered at once when bad, stamped with who sent it for the nodes that run it.
      const refused = client !== null ? (ctx.admin?.accept(client, packet) ?? null) : null
      if (refused !== null) {
        log.warn({ clientId: client?.id, topic }, 'refused PUBLISH to an $admin answer topic; connection closed')
        callback(new Error(`PUBLISH to ${JSON.stringify(topic)} refused: ${refused}`))
        return
      }
      callback(null)
      return
    }
    if (!feeds.isFeed(topic)) {
      accepted(packet)
      callback(null)
      return
    }
    const stamp = (): Promise<void> => feeds.stamp(topic, packet.payload as Buffer).then((bytes) => {
      stored()
      packet.payload = bytes
      packet.retain = false
      accepted(packet)
      // Stored now: it must go out even if the connection closed before aedes writes the PUBACK (it publishes a QoS 1
      // message only after that write), and only once. Not a will: aedes publishes that itself, acknowledged or not.
      if (!will && client !== null && packet.qos === 1 && !aedesWillAcknowledge(client)) ctx.publish(topic, bytes)
      callback(null)
    }, (err: Error) => { refused('feed-refused'); refuse(client, topic, `feed message not stored: ${err.message}`, callback, err) })
    if (packet.qos !== 2 || client === null || packet.messageId === undefined) {
      void stamp()
      return
    }
    // aedes asks before it checks for a QoS 2 retransmission: one it already holds must not get a new seq. Let it
    // through unstamped; aedes then finds it stored and only answers PUBREC (MQTT 3.1.1 section 4.3.3). A copy that
    // comes before aedes has stored the first (same read) gets the first one's envelope.
    const id = packet.messageId
    const original = packet.payload as Buffer // kept by reference: a stamp replaces packet.payload, never changes it
    let mine = recentQoS2.get(client)
    if (mine === undefined) {
      mine = new Map()
      recentQoS2.set(client, mine)
    }
    const recent = mine.get(id)
    if (packet.dup && recent !== undefined && recent.topic === topic && recent.original.equals(original)) {
      recent.envelope.then((bytes) => {
        if (bytes !== null) {
          packet.payload = bytes
          packet.retain = false
        }
        callback(null)
      }, (err: Error) => callback(err))
      return
    }
    // Found: a retransmission. Its stored copy carries the envelope it was stamped with, and that is what goes on if
    // aedes publishes it after all (a PUBREL that frees the id in the same read): a feed never gets an unstamped payload.
    const stampNew = async (): Promise<Buffer> => {
      const bytes = await feeds.stamp(topic, packet.payload as Buffer)
      stored()
      return bytes
    }
    const envelope = persistence.incomingGetPacket(client, packet).then(async (stored) => {
      const s = stored as { topic?: unknown, payload?: unknown } | undefined
      // The id reused for another topic (a client breaking MQTT 3.1.1 section 2.3.1): this one is new, and stamped.
      if (s?.topic !== topic || s.payload == null) return await stampNew()
      return Buffer.isBuffer(s.payload) ? s.payload : Buffer.from(s.payload as Uint8Array)
    }, stampNew)
    mine.set(id, { topic, original, envelope })
    if (mine.size > 64) mine.delete(mine.keys().next().value as number)
    envelope.then((bytes) => {
      if (bytes !== null) {
        packet.payload = bytes
        packet.retain = false
      }
      accepted(packet)
      callback(null)
    }, (err: Error) => { refused('feed-refused'); refuse(client, topic, `feed message not stored: ${err.message}`, callback, err) })
  }
}
