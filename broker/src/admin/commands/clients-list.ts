/** `clients.list`: the clients connected to the node, filtered and paged by client id. */
import { z } from 'zod'
import { ROLES } from '../../auth/acl.js'
import { command } from '../command.js'
import { page, pageArgs } from './page.js'

export const clientsList = command({
  name: 'clients.list',
  summary: 'clients connected to the node: role, identity, client-id prefix and transport filters; paged by client id',
  args: z.object({
    role: z.enum(ROLES).optional(),
    identity: z.string().optional(),
    /** Client ids starting with this. */
    prefix: z.string().optional(),
    transport: z.enum(['mqtt', 'mqtts', 'ws', 'wss']).optional(),
    ...pageArgs
  }).strict(),
  run: (node, args) => {
    const matching = node.clients().filter((c) =>
      (args.role === undefined || c.role === args.role) &&
      (args.identity === undefined || c.identity === args.identity) &&
      (args.prefix === undefined || c.clientId.startsWith(args.prefix)) &&
      (args.transport === undefined || c.transport === args.transport))
    const { total, items, next } = page(matching, (c) => c.clientId, args.limit, args.after)
    return { total, clients: items, next }
  }
})
