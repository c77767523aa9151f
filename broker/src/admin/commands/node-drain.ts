/**
 * `node.drain`: the node stops taking connections and disconnects its clients evenly over `seconds`, then stays up,
 * empty. Answered as soon as the drain has started (the requester may be one of the clients it disconnects); a
 * drain refused at once is answered with the reason.
 */
import { z } from 'zod'
import { AdminError, command } from '../command.js'

export const nodeDrain = command({
  name: 'node.drain',
  summary: 'stop taking connections and disconnect the node\'s clients evenly over {seconds}; the node stays up',
  args: z.object({ seconds: z.number().min(0).max(86_400) }).strict(),
  oneNode: true, // to all it would empty the cluster
  run: async (node, args) => {
    const drain = node.drain(args.seconds)
    drain.catch(() => {}) // a failure after the answer is the node's to log
    const early = await Promise.race([
      drain.then(() => 'done' as const, (err: Error) => err),
      new Promise<'started'>((resolve) => setImmediate(() => resolve('started')))
    ])
    if (early instanceof Error) throw new AdminError(early.message)
    return { draining: true, seconds: args.seconds, done: early === 'done' }
  }
})
