// The human tables of `tribune admin` (cli-table3, borderless): one per command, from the nodes' answers.

import Table from 'cli-table3'
import type { AdminAnswer } from './request.js'

type Cell = string | number | boolean | null | undefined

/** A borderless table with a header row, as `kubectl get` prints. */
function table (head: string[], rows: Cell[][]): string {
  const t = new Table({
    head,
    chars: { top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ' },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true }
  })
  for (const row of rows) t.push(row.map((c) => (c === null || c === undefined ? '-' : c)))
  return t.toString().split('\n').map((line) => line.trimEnd()).join('\n')
}

const fields = (a: AdminAnswer): Record<string, any> => (a.result ?? {}) as Record<string, any>

/**
 * `node.stats` of every node in one table: a row per figure (nested objects flattened as `a.b`), a column per node,
 * and a total column for figures that are numbers on every node.
 */
function statsTable (answers: AdminAnswer[]): string {
  const flat = answers.map((a) => flatten(fields(a)))
  const names: string[] = []
  for (const f of flat) for (const k of Object.keys(f)) if (!names.includes(k)) names.push(k)
  const rows = names.map((name) => {
    const values = flat.map((f) => f[name])
    const total = values.every((v) => typeof v === 'number') ? values.reduce((s: number, v) => s + (v as number), 0) : ''
    return [name, ...values, total]
  })
  return table(['figure', ...answers.map((a) => a.node), 'total'], rows)
}

/** `{a: {b: 1}, c: 'x'}` -> `{'a.b': 1, c: 'x'}`; arrays are shown joined by commas. */
function flatten (obj: Record<string, unknown>, prefix = '', out: Record<string, Cell> = {}): Record<string, Cell> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix === '' ? k : `${prefix}.${k}`
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, key, out)
    else out[key] = Array.isArray(v) ? v.join(',') : (v as Cell)
  }
  return out
}

/** The next page, when a node has more: which `--after` shows it. */
function pages (answers: AdminAnswer[], what: string, list: string): string[] {
  return answers.filter((a) => fields(a).next !== null && fields(a).next !== undefined).map((a) =>
    `${a.node}: ${(fields(a)[list] as unknown[]).length} of ${String(fields(a).total)} ${what} shown; next page: --node ${a.node} --after ${String(fields(a).next)}`)
}

/** The table for `command`'s answers that succeeded, and lines about paging. */
export function renderAnswers (command: string, answers: AdminAnswer[]): string {
  const ok = answers.filter((a) => a.ok)
  switch (command) {
    case 'node.stats':
      return statsTable(ok)
    case 'clients.list':
      return [table(['node', 'client id', 'identity', 'role', 'transport', 'peer', 'clean', 'subscriptions'],
        ok.flatMap((a) => (fields(a).clients as any[]).map((c) => [a.node, c.clientId, c.identity, c.role, c.transport, c.peer, c.clean, c.subscriptions]))),
      ...pages(ok, 'clients', 'clients')].join('\n')
    case 'clients.kick':
      return table(['node', 'kicked client id', 'identity'], ok.flatMap((a) => (fields(a).kicked as any[]).map((k) => [a.node, k.clientId, k.identity]))) +
        `\n${ok.reduce((n, a) => n + (fields(a).kicked as unknown[]).length, 0)} client(s) kicked`
    case 'feeds.list':
      return [table(['node', 'feed', 'epoch', 'last seq', 'held', 'viewers'],
        ok.flatMap((a) => (fields(a).feeds as any[]).map((f) => [a.node, f.feed, f.epoch, f.last, f.held, f.viewers]))),
      ...pages(ok, 'feeds', 'feeds')].join('\n')
    case 'feeds.reset':
      return table(['node', 'feed', 'new epoch', 'previous', 'dropped', 'reset'],
        ok.map((a) => [a.node, fields(a).feed, fields(a).epoch, fields(a).previous, fields(a).dropped, fields(a).already === true ? 'already (by another node)' : 'yes']))
    case 'retained.delete':
      return table(['node', 'topic', 'deleted'], ok.map((a) => [a.node, fields(a).topic, fields(a).deleted === true ? 'yes' : 'none held']))
    case 'node.drain':
      return table(['node', 'draining', 'seconds'], ok.map((a) => [a.node, fields(a).draining, fields(a).seconds]))
    case 'node.undrain':
      return table(['node', 'draining', 'was draining'], ok.map((a) => [a.node, fields(a).draining, fields(a).wasDraining]))
    default:
      return ok.map((a) => `${a.node}:\n${JSON.stringify(a.result, null, 2)}`).join('\n')
  }
}
