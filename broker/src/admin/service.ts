/**
 * Admin over MQTT: carries requests from the operator's node to the addressed nodes and their answers back.
 *
 * 1. A client may not publish under `$admin/response/` (the answers): refused, the connection closes.
 *    The node an operator is connected to takes its PUBLISH to `$admin/<node-id | all>/<command>` (after the topic
 *    rules allowed it: only operators may publish under `$admin` by default) in {@link AdminService.accept}: it checks
 *    the topic, the JSON, the `requestId`, the command and its fields, and the addressed node, and answers what is
 *    wrong at once (`refused: true`). It then replaces the payload with `{"from": {clientId, identity, role, node},
 *    "requestId", "fields"}` (or `{"from", "refused"}`), so the nodes that run it know who asked: no client can
 *    write a `from` of its own, since every PUBLISH under `$admin` passes here. The message is never retained.
 * 2. The message goes through the node's message stream (Redis in a cluster) to every node; each node listens to
 *    `$admin/<its id>/+` and `$admin/all/+` ({@link AdminService.listen}), runs the request (executor.ts) and
 *    publishes its answer on `$admin/response/<client id>/<requestId>` (QoS 1), which reaches the operator's node the
 *    same way.
 */
import type { Client, PublishPacket } from 'aedes'
import type { Access } from '../auth/access.js'
import type { Logger } from '../log.js'
import type { MessageStream } from '../feeds/feeds.js'
import type { Requester } from './command.js'
import { checkRequest, execute, readRequest, type AdminAnswer, type AdminRequest } from './executor.js'
import type { AdminNode } from './node.js'
import { COMMANDS } from './commands/index.js'
import { ADMIN_ROOT, ALL_NODES, isResponseTopic, parseRequestTopic, requestFilters, responseTopic, RESPONSE_PREFIX } from './topics.js'

export interface AdminServiceOptions {
  nodeId: string
  access: Access
  log: Logger
  /** The live nodes of the cluster (nodes.ts). */
  nodes: () => string[]
  /** Publishes an answer as the broker (QoS 1, not retained; no hook runs). */
  publish: (topic: string, payload: Buffer) => void
}

/** What travels from the operator's node to the nodes that run a request. */
interface Stamped {
  from: Requester
  requestId?: string
  fields?: Record<string, unknown>
  refused?: string
}

export class AdminService {
  readonly #opts: AdminServiceOptions

  constructor (opts: AdminServiceOptions) {
    this.#opts = opts
  }

  /**
   * Takes a client's PUBLISH to an `$admin` topic that the topic rules allowed (hooks/publish.ts): answers a bad
   * request at once, and stamps the payload with who sent it for the nodes that run it. Never throws.
   * @returns why the PUBLISH must be refused (a client publishing an answer, under `$admin/response/`), or null
   */
  accept (client: Client, packet: PublishPacket): string | null {
    if (isResponseTopic(packet.topic)) return `${RESPONSE_PREFIX}... topics carry the nodes' answers: only the broker publishes there`
    const { nodeId, log } = this.#opts
    const who = this.#opts.access.identity(client)
    const from: Requester = { clientId: client.id, identity: who?.id ?? 'unknown', role: who?.role ?? 'unknown', node: nodeId }
    packet.retain = false
    const checked = this.#check(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload))
    let stamped: Stamped
    if ('error' in checked) {
      log.warn({ clientId: client.id, identity: from.identity, topic: packet.topic, requestId: checked.requestId, reason: checked.error }, 'admin request refused')
      this.#answer(from, { requestId: checked.requestId, node: nodeId, command: checked.command, ok: false, error: checked.error, refused: true, nodes: this.#opts.nodes() })
      stamped = { from, refused: checked.error }
    } else {
      stamped = { from, requestId: checked.requestId, fields: checked.fields }
    }
    packet.payload = Buffer.from(JSON.stringify(stamped))
    return null
  }

  /** What is wrong with a request (topic, payload, addressed node), or the request. */
  #check (topicName: string, payload: Buffer): AdminRequest | { requestId: string | null, command: string | null, error: string } {
    const topic = parseRequestTopic(topicName)
    if ('error' in topic) return { requestId: null, command: null, error: topic.error }
    const request = readRequest(topic.command, payload)
    if ('error' in request) return { ...request, command: topic.command }
    const live = this.#opts.nodes()
    if (topic.target === ALL_NODES && COMMANDS.get(request.command)?.oneNode === true) {
      return { requestId: request.requestId, command: topic.command, error: `${request.command} addresses one node at a time (${ADMIN_ROOT}/<node-id>/${request.command}), not ${ALL_NODES}` }
    }
    if (topic.target !== ALL_NODES && !live.includes(topic.target)) {
      return { requestId: request.requestId, command: topic.command, error: `no live node ${JSON.stringify(topic.target)} in the cluster; nodes: ${live.join(', ')} (or ${ALL_NODES})` }
    }
    return request
  }

  /** Answers the requests addressed to this node (and to `all`) from now on; resolves once subscribed. */
  async listen (mq: MessageStream, node: AdminNode): Promise<void> {
    await Promise.all(requestFilters(node.id).map(async (filter) => await new Promise<void>((resolve) => {
      mq.on(filter, (packet, cb) => {
        cb()
        this.#run(node, packet.topic, packet.payload).catch((err: Error) => this.#opts.log.error({ err, topic: packet.topic }, 'admin request failed'))
      }, () => resolve())
    })))
  }

  async #run (node: AdminNode, topicName: string, payload: Buffer): Promise<void> {
    let stamped: Stamped
    try {
      stamped = JSON.parse(payload.toString('utf8')) as Stamped
    } catch {
      return // not stamped by a node: nothing a client published can reach here unstamped
    }
    const topic = parseRequestTopic(topicName)
    if (stamped === null || typeof stamped !== 'object' || stamped.refused !== undefined || typeof stamped.from !== 'object' || 'error' in topic) return
    const request = checkRequest(topic.command, { ...stamped.fields, requestId: stamped.requestId })
    if ('error' in request) return // checked by the node that took it; a node of another version may disagree
    const answer = await execute(node, request, { requestId: request.requestId, from: stamped.from })
    const { from } = stamped
    this.#opts.log.info({ command: request.command, requestId: request.requestId, clientId: from.clientId, identity: from.identity, from: from.node, ok: answer.ok, ...(answer.ok ? {} : { reason: answer.error }) }, 'admin command')
    this.#answer(from, answer)
  }

  #answer (to: Requester, answer: AdminAnswer): void {
    this.#opts.publish(responseTopic(to.clientId, answer.requestId ?? undefined), Buffer.from(JSON.stringify(answer)))
  }
}
