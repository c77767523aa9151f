/**
 * The connected clients as the statistics count them (metrics/stats.ts): each one's transport (its listener's
 * protocol), role and topic filters, read from aedes' client table through broker/src/aedes-internals.ts.
 */
import type { Client } from 'aedes'
import type { Access } from '../auth/access.js'
import { connDetailsOf, subscriptionsOf } from '../aedes-internals.js'
import type { ClientFigure } from './stats.js'

/** Walks `clients` (aedes' table, by client id) once; `access` knows each one's role. */
export function * clientFigures (clients: Readonly<Record<string, Client>>, access: Access): Iterable<ClientFigure> {
  for (const id in clients) {
    const client = clients[id]
    // Listener names are `<protocol>:<port>` (listeners/plan.ts).
    const transport = connDetailsOf(client)?.listener?.split(':')[0] ?? 'other'
    let subscriptions = 0
    for (const _ in subscriptionsOf(client)) subscriptions++
    yield { transport, role: access.identity(client)?.role ?? 'none', subscriptions }
  }
}
