/**
 * What an admin command is: a name, a schema for the fields of its request (besides `requestId`), and a function of
 * the node it runs on. Commands know nothing of MQTT (executor.ts runs them; service.ts carries them over `$admin`
 * topics), so another transport (HTTP) could run the same table.
 */
import type { z } from 'zod'
import type { AdminNode } from './node.js'

/** Who sent a request, as the node that took its PUBLISH saw it (never what the request says of itself). */
export interface Requester {
  clientId: string
  /** `user:ops`, `apikey:<id>`, ... (`local` without an auth section). */
  identity: string
  role: string
  /** The node the requester is connected to. */
  node: string
}

export interface RequestContext {
  requestId: string
  from: Requester
}

/** A command as the executor runs it (its arguments' type kept inside, see {@link command}). */
export interface AdminCommand {
  /** The last level of the request topic, e.g. `clients.list`. */
  name: string
  /** One line for the docs and `tribune admin --help`. */
  summary: string
  /** True for a command that must address one node (`$admin/all/...` is refused). */
  oneNode: boolean
  /** Why the request's fields (besides `requestId`) are refused, naming each bad field; null when they are fine. */
  check: (fields: Record<string, unknown>) => string | null
  /**
   * Runs on one node with checked fields; resolves with the answer's `result` (plain JSON).
   * @throws AdminError with a message for the requester (anything else is answered as an internal error)
   */
  run: (node: AdminNode, fields: Record<string, unknown>, ctx: RequestContext) => Promise<unknown>
}

/** A command refused or failed for a reason the requester should read (the answer's `error`). */
export class AdminError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'AdminError'
  }
}

/**
 * Declares a command from its schema (a strict object: an unknown field is refused by name) and a function of the
 * parsed arguments.
 */
export function command<S extends z.ZodType> (spec: {
  name: string
  summary: string
  args: S
  oneNode?: boolean
  run: (node: AdminNode, args: z.output<S>, ctx: RequestContext) => unknown
}): AdminCommand {
  return {
    name: spec.name,
    summary: spec.summary,
    oneNode: spec.oneNode ?? false,
    check: (fields) => {
      const parsed = spec.args.safeParse(fields)
      return parsed.success ? null : describeIssues(parsed.error.issues)
    },
    run: async (node, fields, ctx) => await spec.run(node, spec.args.parse(fields), ctx)
  }
}

/** `limit: Too big: expected number to be <=1000; unknown field(s) foo`: each issue with the field it is about. */
function describeIssues (issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') return `unknown field(s) ${issue.keys.join(', ')}`
    const field = issue.path.map(String).join('.')
    return field === '' ? issue.message : `${field}: ${issue.message}`
  }).join('; ')
}
