/**
 * Hashing and checking secrets: scrypt for passwords (node:crypto, RFC 7914), SHA-256 for API keys (long random
 * keys need no slow hash, and a digest lookup takes the same time whatever the key), constant-time comparisons.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 }

/** The hash format: `scrypt$N$r$p$<salt base64>$<hash base64>`. */
export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const hash = await derive(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keylen)
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${hash.toString('base64')}`
}

/**
 * Checks a password against a hash made by {@link hashPassword}, in constant time for a given hash.
 * @returns false for a wrong password or a malformed hash
 */
export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [N, r, p] = parts.slice(1, 4).map(Number)
  const salt = Buffer.from(parts[4], 'base64')
  const expected = Buffer.from(parts[5], 'base64')
  if (!Number.isInteger(N) || N < 2 || N > 1 << 20 || expected.length === 0) return false
  const actual = await derive(password, salt, N, r, p, expected.length)
  return timingSafeEqual(actual, expected)
}

/** The hex SHA-256 of an API key, as stored in the config. */
export function apiKeyDigest (key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex')
}

/** A new API key: 32 random bytes, base64url (43 characters). */
export function newApiKey (): string {
  return randomBytes(32).toString('base64url')
}

async function derive (password: string, salt: Buffer, N: number, r: number, p: number, keylen: number): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => {
      if (err !== null) reject(err)
      else resolve(key)
    })
  })
}
