// `tribune admin <command> [options]`: the operator's command line over the broker's `$admin` topics (Node only).
// Dispatched by bin/tribune.js (contract: export `adminMain(argv: string[]): Promise<number>`).

import process from 'node:process'
import { randomBytes } from 'node:crypto'
import mqtt, { type MqttClient } from 'mqtt'
import { parseFlags } from '../flags.js'
import { withoutPassword } from '../targets.js'
import { ALL_NODES, askNodes, AdminRefusedError, type AdminOutcome } from './request.js'
import { renderAnswers } from './tables.js'

/** Default broker URL: the broker's MQTT listener on this machine. */
export const DEFAULT_ADMIN_URL = 'mqtt://127.0.0.1:1883'
const DEFAULT_TIMEOUT_MS = 5000

/** Short names of the commands; the broker's own names (`clients.list`, ...) work too. */
const ALIASES: Record<string, string> = {
  stats: 'node.stats',
  clients: 'clients.list',
  kick: 'clients.kick',
  feeds: 'feeds.list',
  drain: 'node.drain',
  undrain: 'node.undrain',
  config: 'config.get'
}
const COMMANDS = ['node.stats', 'clients.list', 'clients.kick', 'feeds.list', 'feeds.reset', 'retained.delete', 'node.drain', 'node.undrain', 'config.get']

const USAGE = `Usage: tribune admin <command> [arguments] [options]

Operator commands, over MQTT: a request goes to $admin/<node-id | all>/<command> and every addressed
node answers on $admin/response/<client id>/<requestId> (README "Admin over MQTT"). Only operators may
use them. Human tables by default, --json for the answers as JSON.

Commands:
  stats                    node.stats: every node's figures in one table (a column per node, and the total)
  clients                  clients.list: connected clients, per node; filters --role viewer|publisher|operator,
                           --identity <id> (e.g. apikey:tv-app), --prefix <client-id prefix>,
                           --transport mqtt|mqtts|ws|wss; pages: --limit <n> (default 100), --after <client id>
  kick                     clients.kick: disconnect by --client <client id> and/or --identity <id>, on every node
  feeds                    feeds.list: feeds with epoch, last seq, messages held and $replay viewers per node;
                           --prefix <topic prefix>, --limit, --after <feed>
  feeds.reset <feed>       drop a feed's history and start a new epoch (its viewers get a reset notice)
  retained.delete <topic>  delete a topic's retained message (nothing is delivered to its subscribers)
  drain --seconds <s>      node.drain: the node (--node, required) disconnects its clients over <s> seconds, then
                           stays up, empty, refusing new connections
  undrain                  node.undrain: the node (--node, required) takes connections again
  config                   config.get: each node's effective options, secrets redacted
  The broker's names work too: node.stats, clients.list, clients.kick, feeds.list, node.drain, node.undrain,
  config.get.

Options:
  --url <url>        broker URL (default ${DEFAULT_ADMIN_URL}; mqtt, mqtts, ws, wss); credentials in it,
                     mqtt://<user>:<password>@host:1883 (never printed), or:
  --username <u>     MQTT user name (e.g. an operator's; apikey or jwt for those methods)
  --password <p>     MQTT password (the key or token for apikey and jwt)
  --node <id>        the node to ask: a node id, or all (default all)
  --json             print {"command","target","answers":[...],"missing":[...]} instead of tables
  --timeout <ms>     how long to wait for the answers (default ${DEFAULT_TIMEOUT_MS})
  -h, --help         show this help

How many nodes answer "all": every answer carries the live nodes of the cluster as its node knows
them (from their heartbeats); the command waits until each node so listed has answered, or until
--timeout, and names the nodes that did not answer.

Exit codes: 0 every addressed node answered and none with an error; 1 an error answer, a node that did
not answer, or a refusal (login, not an operator); 2 bad command line.`

/** Output of {@link adminMain}; defaults write to process.stdout / stderr. */
export interface AdminIO {
  readonly out: (text: string) => void
  readonly err: (text: string) => void
}

interface AdminArgs {
  command: string
  fields: Record<string, unknown>
  target: string
  url: string
  username?: string
  password?: string
  json: boolean
  timeoutMs: number
}

class UsageError extends Error {}

const positiveInt = (flag: string, raw: string | undefined): number | undefined => {
  if (raw === undefined) return undefined
  const n = Number(raw)
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive whole number, got "${raw}"`)
  return n
}

function parseAdminArgs (argv: string[]): AdminArgs | 'help' {
  let parsed
  try {
    parsed = parseFlags({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        username: { type: 'string' },
        password: { type: 'string' },
        node: { type: 'string' },
        json: { type: 'boolean' },
        timeout: { type: 'string' },
        role: { type: 'string' },
        identity: { type: 'string' },
        prefix: { type: 'string' },
        transport: { type: 'string' },
        limit: { type: 'string' },
        after: { type: 'string' },
        client: { type: 'string' },
        seconds: { type: 'string' },
        help: { type: 'boolean', short: 'h' }
      }
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values: v, positionals } = parsed
  if (v.help === true || positionals.length === 0) return 'help'
  const name = positionals[0]
  const command = ALIASES[name] ?? name
  if (!COMMANDS.includes(command)) throw new UsageError(`unknown command "${name}"; commands: ${[...Object.keys(ALIASES), 'feeds.reset', 'retained.delete'].join(', ')}`)
  const rest = positionals.slice(1)
  const wantsOne = command === 'feeds.reset' || command === 'retained.delete'
  if (wantsOne && rest.length !== 1) throw new UsageError(`${command} takes one ${command === 'feeds.reset' ? '<feed>' : '<topic>'}`)
  if (!wantsOne && rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`)
  // Flags a command does not take are refused rather than ignored.
  const takes: Record<string, string[]> = {
    'clients.list': ['role', 'identity', 'prefix', 'transport', 'limit', 'after'],
    'clients.kick': ['client', 'identity'],
    'feeds.list': ['prefix', 'limit', 'after'],
    'node.drain': ['seconds']
  }
  for (const flag of ['role', 'identity', 'prefix', 'transport', 'limit', 'after', 'client', 'seconds'] as const) {
    if (v[flag] !== undefined && !(takes[command] ?? []).includes(flag)) throw new UsageError(`--${flag} does not apply to ${command}`)
  }
  const fields: Record<string, unknown> = {}
  const put = (key: string, value: unknown): void => { if (value !== undefined) fields[key] = value }
  put('role', v.role)
  put('identity', v.identity)
  put('prefix', v.prefix)
  put('transport', v.transport)
  put('limit', positiveInt('limit', v.limit))
  put('after', v.after)
  put('clientId', v.client)
  if (command === 'feeds.reset') put('feed', rest[0])
  if (command === 'retained.delete') put('topic', rest[0])
  if (command === 'clients.kick' && v.client === undefined && v.identity === undefined) throw new UsageError('kick needs --client <client id> or --identity <id>')
  const target = v.node ?? ALL_NODES
  if (command === 'node.drain') {
    if (v.seconds === undefined || !/^[0-9]+(\.[0-9]+)?$/.test(v.seconds)) throw new UsageError('drain needs --seconds <s> (a number, 0 or more)')
    if (target === ALL_NODES) throw new UsageError('drain needs --node <id>: one node at a time (all would empty the cluster)')
    put('seconds', Number(v.seconds))
  }
  if (command === 'node.undrain' && target === ALL_NODES) throw new UsageError('undrain needs --node <id>')
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(target)) throw new UsageError(`--node: "${target}" is not a node id (or all)`)
  const url = v.url ?? DEFAULT_ADMIN_URL
  try {
    const protocol = new URL(url).protocol
    if (!['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'].includes(protocol)) throw new UsageError(`--url: unsupported protocol "${protocol}" (use mqtt://, mqtts://, ws:// or wss://)`)
  } catch (err) {
    if (err instanceof UsageError) throw err
    throw new UsageError(`--url: invalid URL "${withoutPassword(url)}"`)
  }
  return { command, fields, target, url, username: v.username, password: v.password, json: v.json === true, timeoutMs: positiveInt('timeout', v.timeout) ?? DEFAULT_TIMEOUT_MS }
}

function defaultIO (): AdminIO {
  return {
    out: (text) => { process.stdout.write(`${text}\n`) },
    err: (text) => { process.stderr.write(`${text}\n`) }
  }
}

/** Connects; a refused login (CONNACK 4 or 5) or an unreachable broker is an Error saying so. */
async function connect (args: AdminArgs): Promise<MqttClient> {
  try {
    return await mqtt.connectAsync(args.url, {
      clientId: `tribune-admin-${randomBytes(4).toString('hex')}`,
      ...(args.username !== undefined ? { username: args.username } : {}),
      ...(args.password !== undefined ? { password: args.password } : {}),
      reconnectPeriod: 0,
      connectTimeout: args.timeoutMs,
      clean: true
    })
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code === 4 || code === 5) {
      throw new Error(`the broker refused the login (CONNACK ${code}: ${code === 4 ? 'bad user name or password' : 'not authorized'}); give an operator's credentials in the URL or with --username/--password`)
    }
    throw new Error(`cannot connect to ${withoutPassword(args.url)}: ${(err as Error).message}`)
  }
}

/** The exit code and the lines about errors and missing nodes of an outcome. */
function problems (outcome: AdminOutcome, target: string, timeoutMs: number): { code: number, lines: string[] } {
  const lines: string[] = []
  if (outcome.refused !== null) lines.push(`refused by ${outcome.refused.node}: ${outcome.refused.error ?? ''}`)
  for (const a of outcome.answers) if (!a.ok) lines.push(`${a.node}: error: ${a.error ?? ''}`)
  if (outcome.missing.length > 0) lines.push(`no answer within ${timeoutMs} ms from: ${outcome.missing.join(', ')}`)
  if (outcome.answers.length === 0 && outcome.refused === null && outcome.missing.length === 0) lines.push(`no answer within ${timeoutMs} ms from ${target === ALL_NODES ? 'any node' : target}`)
  return { code: lines.length > 0 ? 1 : 0, lines }
}

/**
 * `tribune admin <command> [arguments] [--url URL] [--username U] [--password P] [--node ID|all] [--json] [--timeout MS]`.
 * @param argv the arguments after `admin`
 * @returns exit code: 0 all answered without error, 1 an error answer, a missing node or a refusal, 2 bad arguments
 */
export async function adminMain (argv: string[], io: AdminIO = defaultIO()): Promise<number> {
  let args: AdminArgs | 'help'
  try {
    args = parseAdminArgs(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    io.err(`tribune admin: ${err.message}`)
    io.err('Run `tribune admin --help` for usage.')
    return 2
  }
  if (args === 'help') {
    io.out(USAGE)
    return argv.length === 0 ? 2 : 0
  }
  let client: MqttClient
  try {
    client = await connect(args)
  } catch (err) {
    io.err(`tribune admin: ${(err as Error).message}`)
    return 1
  }
  client.on('error', () => {}) // a connection lost during the request is reported by askNodes
  try {
    const outcome = await askNodes(client, { target: args.target, command: args.command, fields: args.fields, timeoutMs: args.timeoutMs })
    const { code, lines } = problems(outcome, args.target, args.timeoutMs)
    if (args.json) {
      io.out(JSON.stringify({ command: args.command, target: args.target, answers: outcome.answers, missing: outcome.missing, ...(outcome.refused !== null ? { refused: outcome.refused } : {}) }, null, 2))
    } else if (outcome.answers.some((a) => a.ok)) {
      io.out(renderAnswers(args.command, outcome.answers))
    }
    for (const line of lines) io.err(`tribune admin: ${line}`)
    return code
  } catch (err) {
    io.err(`tribune admin: ${(err as Error).message}`)
    return 1
  } finally {
    await client.endAsync(true).catch(() => {})
  }
}
