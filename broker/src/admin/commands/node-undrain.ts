/**
 * `node.undrain`: a node drained by `node.drain` takes connections again (a drain under way stops where it is: the
 * clients still connected stay). Answers whether the node was draining.
 */
import { z } from 'zod'
import { command } from '../command.js'

export const nodeUndrain = command({
  name: 'node.undrain',
  summary: 'take connections again after node.drain (a drain under way stops where it is)',
  args: z.object({}).strict(),
  oneNode: true,
  run: (node) => {
    const wasDraining = node.draining()
    node.undrain()
    return { draining: false, wasDraining }
  }
})
