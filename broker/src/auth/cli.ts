/**
 * `tribune hash-password`: makes the stored form of a secret for the auth section.
 *   tribune hash-password            reads a password from stdin (one line), prints its scrypt hash (auth.users[].password)
 *   tribune hash-password --api-key  makes a new API key, prints the key (give it to the app) and its sha256 (for the config)
 *   tribune hash-password --api-key --key K   prints the sha256 of an existing key K
 */
import { parseFlags } from '../../../client/src/flags.js'
import { apiKeyDigest, hashPassword, newApiKey } from './secrets.js'

const USAGE = `Usage: tribune hash-password [--api-key [--key KEY]]

Without options: reads a password (one line) from standard input and prints its scrypt hash,
for "password" in an auth.users entry.
--api-key: prints a new random API key and its SHA-256 digest, for "sha256" in an auth.apiKeys entry;
with --key KEY, the digest of that key.
`

/** Runs `tribune hash-password`. @returns 0, or 2 for a bad command line or an empty password */
export async function hashPasswordMain (argv: string[]): Promise<number> {
  let values
  try {
    values = parseFlags({ args: argv, options: { 'api-key': { type: 'boolean' }, key: { type: 'string' }, help: { type: 'boolean' } } }).values
  } catch (err) {
    console.error(`tribune hash-password: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (values.help === true) {
    console.log(USAGE)
    return 0
  }
  if (values['api-key'] === true) {
    const key = values.key ?? newApiKey()
    console.log(JSON.stringify({ key, sha256: apiKeyDigest(key) }))
    return 0
  }
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  if (password.length === 0) {
    console.error('tribune hash-password: empty password on standard input')
    return 2
  }
  console.log(await hashPassword(password))
  return 0
}
