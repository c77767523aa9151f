/**
 * Which persistent sessions a message is queued for (aedes `enqueueOffline` -> the persistence's
 * `outgoingEnqueueCombi`), shared by the embedded persistence (store/persistence.ts) and the cluster one
 * (cluster/persistence.ts). aedes passes one entry per matching filter, found in the persistence's trie of QoS 1/2
 * filters, and leaves out filters starting with a wildcard only for `$SYS` topics.
 */

/** A persistent session's filter that matched a message's topic name. */
export interface QueueTarget { clientId: string, topic?: string }

/**
 * The sessions to queue a message on `topic` for, each once (MQTT 3.1.1 section 3.3.5: one copy at the highest QoS of
 * the matching subscriptions), leaving out filters starting with `+` or `#` when `topic` starts with `$`: such a
 * filter never matches it [MQTT-4.7.2-1], so a session subscribed to `#` gets no `$TopicA/x` from its queue either.
 * @param subs the matching filters aedes found, as it passes them (one per filter)
 */
export function queueTargets<T extends QueueTarget> (topic: string | undefined, subs: T[]): T[] {
  if (topic?.startsWith('$') === true) {
    subs = subs.filter((sub) => sub.topic === undefined || !(sub.topic.startsWith('+') || sub.topic.startsWith('#')))
  }
  if (subs.length > 1) {
    const seen = new Set<string>()
    subs = subs.filter((sub) => !seen.has(sub.clientId) && seen.add(sub.clientId) !== undefined)
  }
  return subs
}
