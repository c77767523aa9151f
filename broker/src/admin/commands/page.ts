/** Paging shared by the list commands: items in order of a key, `limit` at a time, each page after the last key of the one before. */
import { z } from 'zod'

/** The paging fields of a list request: `limit` (1 to 1000, default 100) and `after` (the `next` of the page before). */
export const pageArgs = {
  limit: z.number().int().min(1).max(1000).default(100),
  after: z.string().optional()
}

/** One page of `items` sorted by `key`: those after `after`, at most `limit`; `next` is null on the last page. */
export function page<T> (items: T[], key: (item: T) => string, limit: number, after: string | undefined): { total: number, items: T[], next: string | null } {
  const sorted = items.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
  const start = after === undefined ? 0 : sorted.findIndex((item) => key(item) > after)
  const from = start < 0 ? sorted.length : start
  const out = sorted.slice(from, from + limit)
  return { total: items.length, items: out, next: from + limit < sorted.length ? key(out[out.length - 1]) : null }
}
