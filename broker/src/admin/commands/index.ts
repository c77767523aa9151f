/** The admin commands, by name (the last level of `$admin/<node-id | all>/<command>`): one file each. */
import type { AdminCommand } from '../command.js'
import { clientsList } from './clients-list.js'
import { clientsKick } from './clients-kick.js'
import { feedsList } from './feeds-list.js'
import { feedsReset } from './feeds-reset.js'
import { retainedDelete } from './retained-delete.js'
import { nodeStats } from './node-stats.js'
import { nodeDrain } from './node-drain.js'
import { nodeUndrain } from './node-undrain.js'
import { configGet } from './config-get.js'

export const COMMANDS: ReadonlyMap<string, AdminCommand> = new Map(
  [clientsList, clientsKick, feedsList, feedsReset, retainedDelete, nodeStats, nodeDrain, nodeUndrain, configGet].map((c) => [c.name, c])
)
