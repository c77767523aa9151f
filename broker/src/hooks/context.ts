/** What every hook gets: one context object, so hooks can gain fields without touching callers. */
import type { Client, PublishPacket } from 'aedes'
import type { Logger } from '../log.js'
import type { Feeds } from '../feeds/feeds.js'
import type { Access } from '../auth/access.js'
import type { Observers } from '../metrics/node-metrics.js'
import type { ConnectRefusal } from '../metrics/counters.js'

/** The part of aedes persistence the hooks use: QoS 2 retransmissions (MQTT 3.1.1 section 4.3.3). */
export interface IncomingStore {
  incomingGetPacket: (client: Client, packet: { messageId?: number }) => Promise<unknown>
}

export interface HookContext {
  feeds: Feeds
  access: Access
  log: Logger
  persistence: IncomingStore
  /** The connected clients by client id (aedes `broker.clients`), for takeover checks. */
  clients: () => Record<string, Client>
  limits: HookLimits
  /** Publishes a stored feed message as the broker (no hook runs again). */
  publish: (topic: string, payload: Buffer) => void
  /** Watches the connection of a client accepted with keep alive 0 for a dead peer (listeners/liveness.ts). */
  watchLiveness: (client: Client) => void
  /** The node's counters and latency sampling (metrics/); null with `--metrics off`. */
  metrics: Observers | null
  /** Takes admin requests: PUBLISHes to `$admin/...` the topic rules allowed (admin/service.ts). */
  admin?: AdminRequests
}

/** Where a permitted PUBLISH to `$admin/...` goes: it may answer it and replace its payload (admin/service.ts). */
export interface AdminRequests {
  /** @returns why the PUBLISH is refused (the connection closes), or null to let it through */
  accept: (client: Client, packet: PublishPacket) => string | null
}

/** Per-client limits the hooks enforce (see config.ts for units and defaults). */
export interface HookLimits {
  maxTopicLength: number
  maxTopicLevels: number
  maxSubscriptionsPerClient: number
  maxKeepalive: number
  /** Whether keep alive 0 is accepted or refused with CONNACK 2 (config.ts `keepaliveZero`). */
  keepaliveZero: 'accept' | 'refuse'
}

/** Why a topic name or filter is too long or too deep, or null when it is within the limits. */
export function topicTooBig (topic: string, limits: HookLimits): string | null {
  const bytes = Buffer.byteLength(topic)
  if (bytes > limits.maxTopicLength) return `topic of ${bytes} bytes is longer than the ${limits.maxTopicLength} allowed`
  let levels = 1
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 47) levels++
  if (levels > limits.maxTopicLevels) return `topic of ${levels} levels has more than the ${limits.maxTopicLevels} allowed`
  return null
}

/**
 * The first topic levels that belong to the broker: `$SYS` (aedes' notices), `$replay` (feeds replayed), `$admin`
 * (operators, under the topic rules). Other `$` topics (`$TopicA/B`) are ordinary topics under the topic rules;
 * MQTT 3.1.1 section 4.7.2 only keeps them from first-level wildcards.
 */
export const RESERVED_PREFIXES: readonly string[] = ['$SYS', '$replay', '$admin']

/** The reserved prefix (`$SYS`, `$replay`, `$admin`) that is the first level of `topic`, or null. */
export function reservedPrefix (topic: string): string | null {
  if (topic.charCodeAt(0) !== 36) return null // '$'
  const slash = topic.indexOf('/')
  const first = slash < 0 ? topic : topic.slice(0, slash)
  return RESERVED_PREFIXES.includes(first) ? first : null
}

/** Marks the refusals the hooks make (and log themselves). */
const HOOK_REFUSAL = Symbol('tribune.hookRefusal')

/**
 * An authenticate error carrying a CONNACK return code (MQTT 3.1.1 section 3.2.2.3) and, when the code alone does not
 * say, the refusal's kind (the `reason` label of `tribune_connect_refused_total`, metrics/counters.ts); the hook logs it.
 */
export function refusal (returnCode: 2 | 3 | 4 | 5, message: string, kind?: ConnectRefusal): Error & { returnCode: number, kind?: ConnectRefusal } {
  return Object.assign(new Error(message), { returnCode, [HOOK_REFUSAL]: true }, kind === undefined ? {} : { kind })
}

/** Whether `err` is a refusal made (and logged) by a hook, rather than one aedes made itself. */
export function isHookRefusal (err: Error): boolean {
  return (err as Error & { [HOOK_REFUSAL]?: boolean })[HOOK_REFUSAL] === true
}
