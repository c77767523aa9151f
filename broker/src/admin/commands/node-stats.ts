/** `node.stats`: the node's figures (one JSON object). */
import { z } from 'zod'
import { command } from '../command.js'

export const nodeStats = command({
  name: 'node.stats',
  summary: 'the node\'s figures: clients, feeds, admission, store',
  args: z.object({}).strict(),
  run: (node) => node.stats()
})
