// One admin request over MQTT and the answers it gets (Node only): the client side of the broker's `$admin` topics
// (README "Admin over MQTT"). A request goes to `$admin/<node-id | all>/<command>` as {"requestId", ...fields};
// each addressed node answers on `$admin/response/<client id>/<requestId>`.

import { randomBytes } from 'node:crypto'
import type { MqttClient } from 'mqtt'
import type { AdminAnswer } from './answer.js'

export type { AdminAnswer }

/** What one request got: the answers (sorted by node), the nodes that did not answer in time, a refusal if any. */
export interface AdminOutcome {
  answers: AdminAnswer[]
  /** Nodes expected (the target, or every node some answer listed) that did not answer within the timeout. */
  missing: string[]
  /** Set when the request was refused before it reached any node (bad fields, unknown command or node). */
  refused: AdminAnswer | null
}

/** The target that addresses every node. */
export const ALL_NODES = 'all'

/**
 * A client id as one topic level, as the broker writes it in answer topics: RFC 3986 percent-encoding of its UTF-8
 * bytes, letters, digits and `- . _ ~` kept.
 */
export function encodeClientId (clientId: string): string {
  return encodeURIComponent(clientId).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** Thrown when the broker will not let this client ask: the answers topic refused (SUBACK 0x80), or the connection closed. */
export class AdminRefusedError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'AdminRefusedError'
  }
}

/**
 * Sends one request and collects the answers.
 *
 * Addressed to one node, it waits for that node's answer. Addressed to `all`, it waits until every node listed in
 * the answers' `nodes` (each node's view of the live nodes of the cluster) has answered: the union is complete as
 * soon as any node that knows the whole cluster has answered. Either way it stops at `timeoutMs` and names the nodes
 * that did not answer, or at once when the request was refused.
 * @param client a connected MQTT.js client (its client id names the answers topic)
 * @throws AdminRefusedError when the broker refuses the answers topic or closes the connection (not an operator)
 */
export async function askNodes (client: MqttClient, opts: { target: string, command: string, fields: Record<string, unknown>, timeoutMs: number }): Promise<AdminOutcome> {
  const requestId = randomBytes(8).toString('hex')
  const base = `$admin/response/${encodeClientId(client.options.clientId ?? '')}`
  const filter = `${base}/#`
  const answers = new Map<string, AdminAnswer>()
  const expected = new Set<string>(opts.target === ALL_NODES ? [] : [opts.target])
  let refused: AdminAnswer | null = null
  let settle: () => void = () => {}
  const done = new Promise<void>((resolve) => { settle = resolve })
  const complete = (): boolean => refused !== null || (answers.size > 0 && [...expected].every((n) => answers.has(n)))
  const onMessage = (topic: string, payload: Buffer): void => {
    if (topic !== `${base}/${requestId}` && topic !== base) return
    let answer: AdminAnswer
    try {
      answer = JSON.parse(payload.toString('utf8')) as AdminAnswer
    } catch {
      return
    }
    if (answer.requestId !== requestId && !(answer.requestId === null && topic === base)) return
    if (answer.refused === true) refused = answer
    else answers.set(answer.node, answer)
    if (opts.target === ALL_NODES) for (const n of answer.nodes ?? []) expected.add(n)
    if (complete()) settle()
  }
  let closed: () => void = () => {}
  const lost = new Promise<never>((_resolve, reject) => {
    closed = () => reject(new AdminRefusedError('the broker closed the connection: only operators may publish to $admin topics (see README "Auth")'))
  })
  lost.catch(() => {})
  client.on('message', onMessage)
  client.once('close', closed)
  const timer = setTimeout(settle, opts.timeoutMs)
  try {
    try {
      await client.subscribeAsync(filter, { qos: 1 })
    } catch (err) {
      throw new AdminRefusedError(`the broker refused the subscription to ${filter} (${(err as Error).message}): only operators may read $admin topics (see README "Auth")`)
    }
    await Promise.race([client.publishAsync(`$admin/${opts.target}/${opts.command}`, JSON.stringify({ requestId, ...opts.fields }), { qos: 1 }), lost])
    await Promise.race([done, lost])
  } finally {
    clearTimeout(timer)
    client.off('message', onMessage)
    client.off('close', closed)
  }
  const sorted = [...answers.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
  return { answers: sorted, missing: refused !== null ? [] : [...expected].filter((n) => !answers.has(n)).sort(), refused }
}
