/**
 * The `$admin` topics (README "Admin over MQTT"):
 *  - a request is a PUBLISH to `$admin/<node-id | all>/<command>`, its payload JSON with a `requestId`;
 *  - each addressed node answers on `$admin/response/<client id>/<requestId>` (the client id percent-encoded, see
 *    {@link encodeClientId}); a request without a usable `requestId` is answered on `$admin/response/<client id>`.
 * Clients may not publish under `$admin/response` (refused like `$SYS`). Node ids `all` and `response` are reserved
 * (config.ts refuses them).
 */

/** The first level of every admin topic. */
export const ADMIN_ROOT = '$admin'
/** The target level that addresses every node of the cluster. */
export const ALL_NODES = 'all'
/** The second level of answers. */
export const RESPONSE_LEVEL = 'response'

/** The start of every answer topic. */
export const RESPONSE_PREFIX = `${ADMIN_ROOT}/${RESPONSE_LEVEL}/`

/** True for `$admin/response` and the topics under it: only the broker publishes there. */
export function isResponseTopic (topic: string): boolean {
  return topic.startsWith(RESPONSE_PREFIX) || topic === `${ADMIN_ROOT}/${RESPONSE_LEVEL}`
}

/** A request id: 1 to 128 letters, digits and `_ . : ~ -` (it becomes a topic level). */
export const REQUEST_ID = /^[A-Za-z0-9_.:~-]{1,128}$/

/**
 * A client id as one topic level: RFC 3986 percent-encoding of its UTF-8 bytes, letters, digits and `- . _ ~` kept,
 * so `/`, `+`, `#` (MQTT 3.1.1 section 4.7) and `* ? [ ] \` (Redis patterns, refused in filters) never appear.
 * `mqttjs_1a2b` stays `mqttjs_1a2b`; `ops/1` becomes `ops%2F1`.
 */
export function encodeClientId (clientId: string): string {
  return encodeURIComponent(clientId).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** The topic of the answers to client `clientId`'s request `requestId` (none: a request without a usable id). */
export function responseTopic (clientId: string, requestId?: string): string {
  const base = `${ADMIN_ROOT}/${RESPONSE_LEVEL}/${encodeClientId(clientId)}`
  return requestId === undefined ? base : `${base}/${requestId}`
}

/** The filters a node listens to for requests: those addressed to it and to every node. */
export function requestFilters (nodeId: string): string[] {
  return [`${ADMIN_ROOT}/${nodeId}/+`, `${ADMIN_ROOT}/${ALL_NODES}/+`]
}

/**
 * Reads a request topic name.
 * @returns the addressed node (`all` for every node) and the command, or why the topic is not a request topic
 */
export function parseRequestTopic (topic: string): { target: string, command: string } | { error: string } {
  const levels = topic.split('/')
  if (levels[0] !== ADMIN_ROOT) return { error: `${JSON.stringify(topic)} is not an $admin topic` }
  if (levels.length !== 3 || levels[1] === '' || levels[2] === '') {
    return { error: `${JSON.stringify(topic)} is not a request topic: requests go to ${ADMIN_ROOT}/<node-id | all>/<command>` }
  }
  return { target: levels[1], command: levels[2] }
}
