/**
 * `retained.delete`: deletes the retained message of a topic from the store (on every node, through the store), as
 * EMQX's retainer API does: unlike an empty retained PUBLISH (MQTT 3.1.1 section 3.3.1.3), nothing is delivered to
 * the topic's subscribers, so viewers never get an empty state.
 */
import { z } from 'zod'
import { AdminError, command } from '../command.js'

export const retainedDelete = command({
  name: 'retained.delete',
  summary: 'delete the retained message of a topic (nothing is delivered to its subscribers)',
  args: z.object({ topic: z.string().min(1) }).strict(),
  run: async (node, args) => {
    const topic = args.topic
    if (/[+#\u0000]/.test(topic)) throw new AdminError(`${JSON.stringify(topic)} is not a topic name: no + # or U+0000 (one topic at a time)`)
    if (node.isFeed(topic)) throw new AdminError(`${topic} is a feed: feed messages are never retained (feeds.reset drops a feed's history)`)
    const held = node.hasRetained(topic)
    if (held) await node.deleteRetained(topic)
    return { topic, deleted: held }
  }
})
