/**
 * `feeds.reset`: drops a feed's history and starts a new epoch. Its `$replay` viewers on every node get a reset notice
 * (`{"reset":true,"epoch":<new>,"reason":"epoch-changed"}`), then the messages of the new epoch from seq 1. Done
 * once per request: addressed to `all`, the first node does it and the others answer `already: true`.
 */
import { z } from 'zod'
import { FeedResetError } from '../../feeds/feeds.js'
import { AdminError, command } from '../command.js'

export const feedsReset = command({
  name: 'feeds.reset',
  summary: 'drop a feed\'s history and start a new epoch (viewers get a reset notice)',
  args: z.object({ feed: z.string().min(1) }).strict(),
  run: async (node, args, ctx) => {
    const token = JSON.stringify([ctx.from.identity, ctx.from.clientId, ctx.requestId])
    try {
      return { feed: args.feed, ...await node.resetFeed(args.feed, token) }
    } catch (err) {
      if (err instanceof FeedResetError) throw new AdminError(err.message)
      throw err
    }
  }
})
