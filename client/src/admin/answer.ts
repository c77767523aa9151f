// The answer of one node to an admin request, as it arrives on `$admin/response/<client id>/<requestId>` (the
// broker's admin/executor.ts writes it; README "Admin over MQTT"). Types only: the command line (Node) and the
// operations page (browser) both read it.

/** An answer of one node. */
export interface AdminAnswer {
  requestId: string | null
  /** The node that answered. */
  node: string
  command: string | null
  ok: boolean
  /** The command's result when `ok`. */
  result?: unknown
  /** What is wrong when not `ok`. */
  error?: string
  /** The node the requester is connected to refused the request: no node ran it. */
  refused?: boolean
  /** The live nodes of the cluster as the answering node knows them. */
  nodes?: string[]
}
