/**
 * The `auth` and `listeners` sections of the broker configuration (zod). Secrets are stored hashed: API keys as
 * SHA-256 digests (keys are long random strings), passwords as scrypt hashes made by `tribune hash-password`.
 */
import { z } from 'zod'
import { isValidRule, ROLES } from './acl.js'

const filterOrSys = z.string().min(1).refine(isValidRule, {
  error: (issue) => `${JSON.stringify(issue.input)} is not a topic filter: \`+\` and \`#\` as whole levels, \`#\` last (a level may also be a prefix followed by \`+\`, e.g. \`test-+\`)`
})
/**
 * Topic rules (auth/acl.ts): allow lists, and deny lists that win over them (`"deny": {"publish": [...], "subscribe":
 * [...]}`), e.g. subscribe `#` except `internal/#`.
 */
const rules = z.object({
  publish: z.array(filterOrSys).default([]),
  subscribe: z.array(filterOrSys).default([]),
  deny: z.object({
    publish: z.array(filterOrSys).default([]),
    subscribe: z.array(filterOrSys).default([])
  }).strict().optional()
}).strict()
const role = z.enum(ROLES)

/** Authentication methods a listener can accept. */
export const METHODS = ['anonymous', 'apikey', 'password', 'jwt', 'cert'] as const
export type Method = typeof METHODS[number]

export const authSchema = z.object({
  /**
   * True in the shipped example: its secrets are printed in the README, so a node with them refuses to listen on an
   * address other than loopback. Remove it once the credentials are your own.
   */
  sampleCredentials: z.boolean().default(false),
  /** Topic filters viewers may read (and publishers write), e.g. the feeds and their state topics. */
  publicFilters: z.array(filterOrSys).min(1).default(['matches/+/events', 'matches/+/state']),
  /** Rules that replace a role's defaults. */
  roles: z.object({ viewer: rules.optional(), publisher: rules.optional(), operator: rules.optional() }).strict().default({}),
  /**
   * Clients without credentials get this role (viewer unless said otherwise) on listeners that accept `anonymous`.
   * `persistentSessions`: whether they may use clean session off (default false: CONNACK 5). All anonymous clients
   * are one identity, so any of them may take over an anonymous session by its client id (Mosquitto's behaviour).
   */
  anonymous: z.object({ role: role.default('viewer'), persistentSessions: z.boolean().default(false) }).strict().optional(),
  apiKeys: z.array(z.object({
    id: z.string().min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the hex SHA-256 of the key (tribune hash-password --api-key)'),
    role: role.default('viewer'),
    rules: rules.optional(),
    revoked: z.boolean().default(false)
  }).strict()).default([]),
  users: z.array(z.object({
    username: z.string().min(1),
    password: z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'must be a hash made by `tribune hash-password`'),
    role: role,
    rules: rules.optional()
  }).strict()).default([]),
  jwt: z.object({
    /** HS256 secrets (at least 32 characters); several allow rotation. */
    secrets: z.array(z.string().min(32, 'an HS256 secret needs at least 32 characters')).default([]),
    /** PEM files of RS256/ES256 public keys. */
    publicKeyFiles: z.array(z.string().min(1)).default([]),
    /** A JWKS file (JSON {"keys": [...]}) of public keys. */
    jwksFile: z.string().min(1).optional(),
    issuer: z.union([z.string(), z.array(z.string())]).optional(),
    audience: z.union([z.string(), z.array(z.string())]).optional(),
    /** The claim that names the role (viewer unless present). */
    roleClaim: z.string().default('role'),
    /** The claim that may carry topic rules {publish, subscribe}, narrowing the role's. */
    rulesClaim: z.string().default('tribune_rules')
  }).strict().optional(),
  certs: z.array(z.object({
    /** The certificate subject's common name (CN). */
    cn: z.string().min(1),
    role: role,
    rules: rules.optional()
  }).strict()).default([]),
  /** Failed logins from one address are answered after a delay that doubles up to this, in ms. */
  maxFailedLoginDelayMs: z.number().int().min(0).max(60_000).default(5000)
}).strict()

export type AuthConfig = z.infer<typeof authSchema>

export const listenerSchema = z.object({
  /** mqtt: MQTT over TCP; ws: MQTT over WebSocket (with /healthz); mqtts and wss: the same over TLS. */
  protocol: z.enum(['mqtt', 'ws', 'mqtts', 'wss']),
  host: z.string().min(1).optional(),
  port: z.number().int().min(0).max(65535),
  path: z.string().startsWith('/').optional(),
  /** The methods this listener accepts (default: every method the auth section configures). */
  auth: z.array(z.enum(METHODS)).optional(),
  tls: z.object({ cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1).optional() }).strict().optional()
}).strict().refine((l) => (l.protocol === 'mqtts' || l.protocol === 'wss') === (l.tls !== undefined), 'mqtts and wss listeners need tls {cert, key}; others take none')

export type ListenerConfig = z.infer<typeof listenerSchema>
