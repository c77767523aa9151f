/**
 * `clients.kick`: disconnects the clients of this node with a client id or an identity (or both: the clients with
 * both); addressed to `all`, every node kicks its own, so the kick is cluster-wide. The connection that asked is
 * never kicked. A client that reconnects is let in again (revoke its credential to keep it out, README "Auth").
 */
import { z } from 'zod'
import { AdminError, command } from '../command.js'

export const clientsKick = command({
  name: 'clients.kick',
  summary: 'disconnect the clients with a client id or an identity (address all: cluster-wide)',
  args: z.object({
    clientId: z.string().min(1).optional(),
    identity: z.string().min(1).optional()
  }).strict(),
  run: (node, args, ctx) => {
    if (args.clientId === undefined && args.identity === undefined) throw new AdminError('clients.kick needs clientId or identity')
    const targets = node.clients().filter((c) =>
      (args.clientId === undefined || c.clientId === args.clientId) &&
      (args.identity === undefined || c.identity === args.identity) &&
      !(c.clientId === ctx.from.clientId && node.id === ctx.from.node))
    const kicked = targets.filter((c) => node.kick(c.clientId)).map((c) => ({ clientId: c.clientId, identity: c.identity ?? null }))
    return { kicked }
  }
})
