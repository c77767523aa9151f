/**
 * `config.get`: the node's effective options (defaults, file, variables and flags merged), secrets replaced by
 * `"(redacted)"`: password hashes, API key digests, JWT secrets, and the password in the Redis URL.
 */
import { z } from 'zod'
import type { BrokerConfig } from '../../config.js'
import { command } from '../command.js'

const REDACTED = '(redacted)'

export const configGet = command({
  name: 'config.get',
  summary: 'the node\'s effective options, secrets redacted',
  args: z.object({}).strict(),
  run: (node) => redactConfig(node.config())
})

/** A copy of `config` without its secrets (see the module comment). */
export function redactConfig (config: Readonly<BrokerConfig>): unknown {
  const copy = structuredClone(config) as BrokerConfig
  if (copy.redis !== undefined) copy.redis = copy.redis.replace(/\/\/([^@/]*)@/, (_m, auth: string) => `//${auth.includes(':') ? `${auth.split(':')[0]}:${REDACTED}` : REDACTED}@`)
  const auth = copy.auth
  if (auth !== undefined) {
    for (const u of auth.users) u.password = REDACTED
    for (const k of auth.apiKeys) k.sha256 = REDACTED
    if (auth.jwt !== undefined) auth.jwt.secrets = auth.jwt.secrets.map(() => REDACTED)
  }
  return copy
}
