/**
 * Credentials in, identity out. Every connection ends CONNECT with an identity: who it is, its role, the method
 * that proved it, and its topic rules; or with a refusal carrying a CONNACK return code (MQTT 3.1.1 section
 * 3.2.2.3): 4 for bad credentials, 5 for not authorized (method not accepted on this listener, no credentials where
 * anonymous access is off). How credentials are presented in CONNECT:
 *   anonymous: no user name and no password;   API key: user name `apikey`, password the key;
 *   JWT: user name `jwt`, password the token;   password: user name and password;
 *   client certificate: a TLS client certificate whose CN is configured (on listeners that accept `cert`).
 */
import { covers, defaultRules, isValidRule, ROLES, type Role, type TopicRules } from './acl.js'
import type { AuthConfig, Method } from './schema.js'
import { apiKeyDigest, verifyPassword } from './secrets.js'
import { createJwtVerifier, type JwtVerifier } from './jwt.js'
import type { GateRefusal, PasswordGate } from './password-gate.js'

/** Who a connection is. `credential` names the config entry that proved it (for revocation on reload). */
export interface Identity {
  id: string
  role: Role
  method: Method | 'local'
  rules: TopicRules
  credential: string
}

/** What a reload needs to check an identity again; kept beside it, never logged. */
const proofs = new WeakMap<Identity, { passwordHash?: string, token?: string }>()

/**
 * A refused CONNECT: the CONNACK return code and a reason for the log (never a secret). Return code 3 (server
 * unavailable) when the password was not checked (auth/password-gate.ts): `unchecked` says why.
 */
export interface Refusal {
  returnCode: 3 | 4 | 5
  reason: string
  unchecked?: GateRefusal
}

/** What a CONNECT brings. */
export interface Presented {
  /** Methods the listener accepts. */
  methods: readonly Method[]
  /** The listener's name (`mqtt:1883`), for refusal reasons. */
  listener?: string
  username?: string
  password?: Buffer
  /** The CN of a verified TLS client certificate, if one was presented. */
  certCN?: string
  /** Why a presented client certificate was not trusted (e.g. its CA is not the listener's). */
  certError?: string
  /** The node's bound on password checks; without one a password is checked at once. */
  gate?: PasswordGate
  /** True once the client's connection has closed (a password check waiting then is skipped). */
  gone?: () => boolean
}

/** Rules that allow everything: local mode (no auth section), where the broker listens on loopback only. */
export const LOCAL_IDENTITY: Identity = Object.freeze({
  id: 'local',
  role: 'operator' as const,
  method: 'local' as const,
  rules: Object.freeze({ publish: ['#'], subscribe: ['#', '$SYS/#', '$admin/#'] }),
  credential: 'local'
})

export class Authenticator {
  readonly #config: AuthConfig
  readonly #roles: Record<Role, TopicRules>
  readonly #apiKeys: Map<string, AuthConfig['apiKeys'][number]>
  readonly #users: Map<string, AuthConfig['users'][number]>
  readonly #certs: Map<string, AuthConfig['certs'][number]>
  readonly #jwt: JwtVerifier | null

  private constructor (config: AuthConfig, jwt: JwtVerifier | null) {
    this.#config = config
    const defaults = defaultRules(config.publicFilters)
    this.#roles = Object.fromEntries(ROLES.map((r) => [r, config.roles[r] ?? defaults[r]])) as Record<Role, TopicRules>
    this.#apiKeys = new Map(config.apiKeys.map((k) => [k.sha256, k]))
    this.#users = new Map(config.users.map((u) => [u.username, u]))
    this.#certs = new Map(config.certs.map((c) => [c.cn, c]))
    this.#jwt = jwt
  }

  /**
   * Builds an authenticator from the auth section (reads JWT key files).
   * @throws Error naming a key file that cannot be used
   */
  static async create (config: AuthConfig): Promise<Authenticator> {
    const jwt = config.jwt !== undefined ? await createJwtVerifier(config.jwt) : null
    return new Authenticator(config, jwt)
  }

  /** The methods this configuration can check (a listener without its own list accepts these). */
  get methods (): Method[] {
    const out: Method[] = []
    if (this.#config.anonymous !== undefined) out.push('anonymous')
    if (this.#config.apiKeys.length > 0) out.push('apikey')
    if (this.#config.users.length > 0) out.push('password')
    if (this.#jwt !== null) out.push('jwt')
    if (this.#config.certs.length > 0) out.push('cert')
    return out
  }

  /** Whether anonymous clients may have persistent sessions (clean session off); `auth.anonymous.persistentSessions`. */
  get anonymousPersistentSessions (): boolean {
    return this.#config.anonymous?.persistentSessions === true
  }

  /** The longest delay for failed logins from one address, ms. */
  get maxFailedLoginDelayMs (): number {
    return this.#config.maxFailedLoginDelayMs
  }

  /** The rules of a role. */
  rulesOf (role: Role): TopicRules {
    return this.#roles[role]
  }

  /** Checks the credentials of a CONNECT. */
  async authenticate (p: Presented): Promise<Identity | Refusal> {
    const { username, password } = p
    if (username === 'apikey') return this.#allowed(p, 'apikey') ?? this.#apiKey(password)
    if (username === 'jwt') return this.#allowed(p, 'jwt') ?? await this.#token(password)
    if (username !== undefined) return this.#allowed(p, 'password') ?? await this.#password(username, password, p)
    if (password !== undefined) return { returnCode: 4, reason: 'a password without a user name' }
    if (p.certCN !== undefined && p.methods.includes('cert')) return this.#cert(p.certCN)
    if (p.certError !== undefined && p.methods.includes('cert')) return { returnCode: 5, reason: `client certificate not trusted: ${p.certError}` }
    if (p.methods.includes('anonymous') && this.#config.anonymous !== undefined) {
      const role = this.#config.anonymous.role
      return { id: 'anonymous', role, method: 'anonymous', rules: this.#roles[role], credential: 'anonymous' }
    }
    return { returnCode: 5, reason: `no credentials, and ${listenerName(p)} does not accept anonymous clients (it accepts: ${accepted(p)})` }
  }

  /**
   * The identity as this configuration sees it now (after a reload): same credential with its current role and
   * rules, or null when the credential is gone, revoked, or changed (a new password, a JWT no longer verifiable).
   */
  async refresh (identity: Identity): Promise<Identity | null> {
    const [kind, name] = splitOnce(identity.credential)
    const proof = proofs.get(identity)
    switch (kind) {
      case 'local': return identity
      case 'anonymous': {
        const anon = this.#config.anonymous
        return anon !== undefined ? { ...identity, role: anon.role, rules: this.#roles[anon.role] } : null
      }
      case 'apikey': {
        const entry = this.#config.apiKeys.find((k) => k.id === name && !k.revoked)
        return entry !== undefined ? { ...identity, role: entry.role, rules: entry.rules ?? this.#roles[entry.role] } : null
      }
      case 'user': {
        const user = this.#users.get(name)
        if (user === undefined || user.password !== proof?.passwordHash) return null
        return this.#remember({ ...identity, role: user.role, rules: user.rules ?? this.#roles[user.role] }, proof)
      }
      case 'cert': {
        const entry = this.#certs.get(name)
        return entry !== undefined ? { ...identity, role: entry.role, rules: entry.rules ?? this.#roles[entry.role] } : null
      }
      case 'jwt': {
        if (proof?.token === undefined) return null
        const again = await this.#token(Buffer.from(proof.token, 'utf8'))
        return 'returnCode' in again ? null : again
      }
      default: return null
    }
  }

  #remember (identity: Identity, proof: { passwordHash?: string, token?: string } | undefined): Identity {
    if (proof !== undefined) proofs.set(identity, proof)
    return identity
  }

  #allowed (p: Presented, method: Method): Refusal | null {
    // CONNACK 5 (not authorized), not 4: the credentials may be good, this listener does not take the method.
    return p.methods.includes(method) ? null : { returnCode: 5, reason: `${listenerName(p)} does not accept ${method} credentials (it accepts: ${accepted(p)})` }
  }

  #apiKey (password: Buffer | undefined): Identity | Refusal {
    if (password === undefined) return { returnCode: 4, reason: 'API key missing' }
    // A digest lookup: the time taken does not depend on how much of the key matched.
    const entry = this.#apiKeys.get(apiKeyDigest(password.toString('utf8')))
    if (entry === undefined) return { returnCode: 4, reason: 'unknown API key' }
    if (entry.revoked) return { returnCode: 4, reason: `API key ${entry.id} is revoked` }
    return { id: `apikey:${entry.id}`, role: entry.role, method: 'apikey', rules: entry.rules ?? this.#roles[entry.role], credential: `apikey:${entry.id}` }
  }

  async #password (username: string, password: Buffer | undefined, p: Presented): Promise<Identity | Refusal> {
    const user = this.#users.get(username)
    // Unknown users cost a hash too, so that timing does not tell which user names exist; it waits in the same gate.
    const hash = user?.password ?? DUMMY_HASH
    const check = async (): Promise<boolean> => await verifyPassword(password?.toString('utf8') ?? '', hash)
    const ok = p.gate !== undefined ? await p.gate.run(check, p.gone ?? never) : await check()
    if (ok === 'busy') return { returnCode: 3, reason: `server unavailable: too many password checks under way (${p.gate?.maxInFlight ?? 0} at once, ${p.gate?.maxQueued ?? 0} waiting)`, unchecked: ok }
    if (ok === 'gone') return { returnCode: 3, reason: 'connection closed before its password was checked', unchecked: ok }
    if (user === undefined || !ok || password === undefined) return { returnCode: 4, reason: `bad user name or password for user ${JSON.stringify(username)}` }
    return this.#remember({ id: `user:${username}`, role: user.role, method: 'password', rules: user.rules ?? this.#roles[user.role], credential: `user:${username}` }, { passwordHash: user.password })
  }

  async #token (password: Buffer | undefined): Promise<Identity | Refusal> {
    if (this.#jwt === null) return { returnCode: 5, reason: 'JWTs are not configured' }
    if (password === undefined) return { returnCode: 4, reason: 'JWT missing' }
    let claims
    try {
      claims = await this.#jwt.verify(password.toString('utf8'))
    } catch (err) {
      return { returnCode: 4, reason: `JWT refused: ${(err as Error).message}` }
    }
    const settings = this.#config.jwt
    const roleClaim = settings?.roleClaim ?? 'role'
    const claimed = claims[roleClaim] ?? 'viewer'
    if (typeof claimed !== 'string' || !(ROLES as readonly string[]).includes(claimed)) {
      return { returnCode: 5, reason: `JWT claim ${roleClaim} is not one of ${ROLES.join(', ')}` }
    }
    const role = claimed as Role
    const base = this.#roles[role]
    const narrowed = narrow(base, claims[settings?.rulesClaim ?? 'tribune_rules'])
    const sub = typeof claims.sub === 'string' ? claims.sub : '?'
    return this.#remember({ id: `jwt:${sub}`, role, method: 'jwt', rules: narrowed, credential: `jwt:${sub}` }, { token: password.toString('utf8') })
  }

  #cert (cn: string): Identity | Refusal {
    const entry = this.#certs.get(cn)
    if (entry === undefined) return { returnCode: 5, reason: `client certificate CN ${JSON.stringify(cn)} is not configured` }
    return { id: `cert:${cn}`, role: entry.role, method: 'cert', rules: entry.rules ?? this.#roles[entry.role], credential: `cert:${cn}` }
  }
}

/**
 * A token's own rules may only narrow its role's: each claimed allow filter must be covered by one of the role's;
 * the role's deny filters stay, and the token's own (`deny: {publish, subscribe}`, valid rule filters) are added.
 */
function narrow (base: TopicRules, claim: unknown): TopicRules {
  if (claim === null || typeof claim !== 'object') return base
  const pick = (claimed: unknown, allowed: readonly string[]): string[] =>
    Array.isArray(claimed) ? claimed.filter((f): f is string => typeof f === 'string' && allowed.some((a) => covers(a, f))) : [...allowed]
  const more = (claimed: unknown): string[] => Array.isArray(claimed) ? claimed.filter((f): f is string => typeof f === 'string' && isValidRule(f)) : []
  const c = claim as { publish?: unknown, subscribe?: unknown, deny?: { publish?: unknown, subscribe?: unknown } | null }
  const deny = {
    publish: [...(base.deny?.publish ?? []), ...more(c.deny?.publish)],
    subscribe: [...(base.deny?.subscribe ?? []), ...more(c.deny?.subscribe)]
  }
  return { publish: pick(c.publish, base.publish), subscribe: pick(c.subscribe, base.subscribe), deny }
}

function listenerName (p: Presented): string {
  return p.listener !== undefined && p.listener !== '' ? `listener ${p.listener}` : 'this listener'
}

function accepted (p: Presented): string {
  return p.methods.length > 0 ? p.methods.join(', ') : 'nothing configured'
}

function never (): boolean {
  return false
}

function splitOnce (s: string): [string, string] {
  const i = s.indexOf(':')
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)]
}

// A valid hash of a random password, checked for unknown users so they take as long as known ones.
const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='
