/**
 * Runs admin requests on a node, whatever carried them: checks a request (JSON object, `requestId`, a known command,
 * its fields) and runs it, giving the answer every node sends:
 *   {"requestId", "node", "command", "ok": true, "result": ..., "nodes": [...]}
 *   {"requestId", "node", "command", "ok": false, "error": "<what is wrong>", "nodes": [...]}
 * `nodes` lists the live nodes the answering node knows (so whoever asked `all` knows whose answers to wait for);
 * `refused: true` marks a request the node that took it refused, and sent to no node.
 */
import { AdminError, type RequestContext } from './command.js'
import { COMMANDS } from './commands/index.js'
import type { AdminNode } from './node.js'
import { REQUEST_ID } from './topics.js'

export interface AdminAnswer {
  requestId: string | null
  node: string
  command: string | null
  ok: boolean
  result?: unknown
  error?: string
  refused?: true
  nodes: string[]
}

/** A request read and checked: its id, command and fields (without `requestId`). */
export interface AdminRequest {
  requestId: string
  command: string
  fields: Record<string, unknown>
}

/**
 * Reads the payload of a request for `command`.
 * @returns the request, or what is wrong with it (and its `requestId` when one could be read)
 */
export function readRequest (command: string, payload: Buffer): AdminRequest | { requestId: string | null, error: string } {
  let body: unknown
  try {
    body = JSON.parse(payload.toString('utf8'))
  } catch (err) {
    return { requestId: null, error: `the payload is not JSON (${(err as Error).message}): send {"requestId": "...", ...fields}` }
  }
  return checkRequest(command, body)
}

/**
 * Checks a request for `command` given as a JSON value (`{"requestId", ...fields}`).
 * @returns the request, or what is wrong with it (and its `requestId` when one could be read)
 */
export function checkRequest (command: string, body: unknown): AdminRequest | { requestId: string | null, error: string } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return { requestId: null, error: 'the payload must be a JSON object: {"requestId": "...", ...fields}' }
  const { requestId, ...fields } = body as Record<string, unknown>
  if (typeof requestId !== 'string' || !REQUEST_ID.test(requestId)) {
    return { requestId: null, error: `requestId ${requestId === undefined ? 'is missing' : `${JSON.stringify(requestId)} is not 1 to 128 letters, digits or _ . : ~ -`}` }
  }
  const cmd = COMMANDS.get(command)
  if (cmd === undefined) return { requestId, error: `unknown command ${JSON.stringify(command)}; commands: ${[...COMMANDS.keys()].join(', ')}` }
  const wrong = cmd.check(fields)
  if (wrong !== null) return { requestId, error: `${command}: ${wrong}` }
  return { requestId, command, fields }
}

/** Runs a checked request on `node`; never rejects (a failure is an answer with `ok: false`). */
export async function execute (node: AdminNode, request: AdminRequest, ctx: RequestContext): Promise<AdminAnswer> {
  const base = { requestId: request.requestId, node: node.id, command: request.command }
  const cmd = COMMANDS.get(request.command)
  try {
    if (cmd === undefined) throw new AdminError(`unknown command ${request.command}`)
    const result = await cmd.run(node, request.fields, ctx)
    return { ...base, ok: true, result, nodes: node.nodes() }
  } catch (err) {
    const error = err instanceof AdminError ? err.message : `internal error: ${(err as Error).message}`
    return { ...base, ok: false, error, nodes: node.nodes() }
  }
}
