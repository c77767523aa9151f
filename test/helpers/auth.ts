/**
 * Test plumbing for auth: the shipped examples/secure.json with every listener on a free loopback port, its sample
 * credentials, and JWTs signed with the test keys in examples/tls.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT, importPKCS8 } from 'jose'
import type { IClientOptions } from 'mqtt'
import type { BrokerOptions } from '../../broker/src/config.js'

export const EXAMPLES = join(import.meta.dirname, '../../examples')
const tls = (f: string): string => join(EXAMPLES, 'tls', f)
export const tlsFile = (f: string): Buffer => readFileSync(tls(f))

/** The sample credentials documented in README and examples/secure.json. */
export const SAMPLE = {
  apiKey: 'tv-app-example-key-do-not-use-in-production',
  publisher: { username: 'scores-svc', password: 'publisher-password-example' },
  operator: { username: 'ops', password: 'operator-password-example' },
  hs256: 'example-hs256-secret-change-me-0123456789',
  issuer: 'https://auth.example.com',
  audience: 'tribune'
}

/**
 * examples/secure.json with file paths made absolute, every listener on port 0 at 127.0.0.1, in memory.
 * @param allMethods when true every listener accepts every method (for the method x transport table)
 */
export function secureConfig (allMethods = false): BrokerOptions {
  const cfg = JSON.parse(readFileSync(join(EXAMPLES, 'secure.json'), 'utf8'))
  cfg.host = '127.0.0.1'
  cfg.dataDir = ':memory:'
  cfg.logLevel = 'silent'
  for (const l of cfg.listeners) {
    l.port = 0
    if (l.tls !== undefined) for (const k of Object.keys(l.tls)) l.tls[k] = join(EXAMPLES, l.tls[k])
    if (allMethods) delete l.auth
  }
  cfg.auth.jwt.publicKeyFiles = cfg.auth.jwt.publicKeyFiles.map((f: string) => join(EXAMPLES, f))
  cfg.auth.jwt.jwksFile = join(EXAMPLES, cfg.auth.jwt.jwksFile)
  return cfg
}

/** Signs a JWT for the tests. `alg` HS256 uses the sample secret; RS256 and ES256 the test keys in examples/tls. */
export async function token (claims: Record<string, unknown>, opts: { alg?: 'HS256' | 'RS256' | 'ES256', expiresIn?: string | number, notBefore?: string | number, issuer?: string, audience?: string, secret?: string, kid?: string } = {}): Promise<string> {
  const alg = opts.alg ?? 'HS256'
  let jwt = new SignJWT(claims).setProtectedHeader({ alg, ...(opts.kid !== undefined ? { kid: opts.kid } : {}) }).setIssuedAt()
    .setIssuer(opts.issuer ?? SAMPLE.issuer).setAudience(opts.audience ?? SAMPLE.audience).setExpirationTime(opts.expiresIn ?? '10m')
  if (opts.notBefore !== undefined) jwt = jwt.setNotBefore(opts.notBefore)
  if (alg === 'HS256') return await jwt.sign(new TextEncoder().encode(opts.secret ?? SAMPLE.hs256))
  const pem = readFileSync(tls(alg === 'RS256' ? 'jwt-rs256.key' : 'jwt-es256.key'), 'utf8')
  return await jwt.sign(await importPKCS8(pem, alg))
}

/** MQTT.js TLS options for a client certificate from examples/tls (`scores-svc`, `stranger`, or `rogue`: untrusted CA). */
export function clientCert (name: 'scores-svc' | 'stranger' | 'rogue'): IClientOptions {
  const base = name === 'rogue' ? 'rogue' : `client-${name}`
  return { key: tlsFile(`${base}.key`), cert: tlsFile(`${base}.pem`), ca: tlsFile('ca.pem'), rejectUnauthorized: true, servername: 'localhost' }
}
