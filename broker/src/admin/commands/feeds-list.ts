/** `feeds.list`: every feed in the store, with its epoch and last seq, and its `$replay` viewers on this node; paged by feed. */
import { z } from 'zod'
import { command } from '../command.js'
import { page, pageArgs } from './page.js'

export const feedsList = command({
  name: 'feeds.list',
  summary: 'feeds: last seq, epoch, messages held and $replay viewers on the node; topic-prefix filter; paged by feed',
  args: z.object({
    /** Feeds whose topic starts with this. */
    prefix: z.string().optional(),
    ...pageArgs
  }).strict(),
  run: async (node, args) => {
    const all = await node.feeds()
    const matching = args.prefix === undefined ? all : all.filter((f) => f.feed.startsWith(args.prefix as string))
    const { total, items, next } = page(matching, (f) => f.feed, args.limit, args.after)
    return { total, feeds: items, next }
  }
})
