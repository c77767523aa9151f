/**
 * Access control for the broker's hooks: the identity of each connection, and what it may do.
 * One place answers, for a client: may it connect (credentials, will topic, client id), publish to a topic,
 * subscribe to a filter, receive a message. Without an auth section every client is the local operator and may do
 * anything (the broker then listens on loopback only; see main.ts); the broker's own `$` prefixes are guarded by the
 * hooks (hooks/context.ts), not here.
 */
import { LOCAL_IDENTITY, type Authenticator, type Identity, type Refusal } from './authenticator.js'
import { deniesSubscriptions, isDeniedFilter, isDeniedTopic, mayPublish, maySubscribe, mayReceive } from './acl.js'
import type { Method } from './schema.js'
import { LoginThrottle } from './throttle.js'
import { PasswordGate } from './password-gate.js'

/** What access needs to know of an aedes client. */
export interface AccessClient {
  readonly id: string
  readonly clean: boolean
  readonly connDetails?: { ipAddress?: string, listener?: string, certCN?: string, certError?: string } | null
  /** True once the connection has closed (aedes `client.closed`). */
  readonly closed?: boolean
}

/** Where refusals for want of capacity are counted and logged with the admission refusals (admission/admission.ts). */
export interface BusyRefusals {
  /** One CONNECT refused with CONNACK 3 because the node's password checks were all taken, on `listener`. */
  refuse: (reason: 'login-busy', listener: string) => void
}

/** Who owns each persistent session, across nodes. */
export interface SessionOwners {
  /**
   * Claims client id `clientId` for identity `identity` when it connects.
   * @returns false when a persistent session with this id belongs to another identity
   */
  claim: (clientId: string, identity: string, clean: boolean) => Promise<boolean>
}

/** A CONNECT to check. */
export interface ConnectRequest {
  username?: string
  password?: Buffer
  will?: { topic: string } | null
  /** The identity of the connection that holds this client id now, if any (MQTT 3.1.1 section 3.1.4 takeover). */
  holder?: AccessClient
}

export class Access {
  #auth: Authenticator | null
  readonly #listenerMethods: ReadonlyMap<string, readonly Method[] | null>
  readonly #identities = new WeakMap<AccessClient, Identity>()
  /** Clients a reload disconnects: they may publish nothing more, their will included (see {@link revoke}). */
  readonly #revoked = new WeakSet<AccessClient>()
  readonly #throttle = new LoginThrottle()
  /** The node's bound on password checks (scrypt on the thread pool), kept across reloads. */
  readonly #gate = new PasswordGate()
  #busy: BusyRefusals | undefined
  #sessionOwners: SessionOwners | undefined
  /**
   * Set once an identity whose rules deny some subscriptions has connected: from then on deliveries to clean sessions
   * are checked per message too (a granted wildcard may overlap a denied filter). Until then they cost nothing.
   */
  #someDeny = false

  /**
   * @param auth the authenticator, or null for local mode
   * @param listenerMethods methods accepted per listener name (null: every configured method)
   */
  constructor (auth: Authenticator | null, listenerMethods: ReadonlyMap<string, readonly Method[] | null>) {
    this.#auth = auth
    this.#listenerMethods = listenerMethods
  }

  /**
   * Where the owners of persistent sessions are kept (the store: store/persistence.ts on disk, cluster/persistence.ts
   * in Redis for every node): a client id whose session belongs to another identity gets CONNACK 2, so nobody takes
   * over or wipes another's session, after a restart too.
   */
  useSessionOwners (owners: SessionOwners): void {
    this.#sessionOwners = owners
  }

  /** Counts CONNECTs refused because the node's password checks were all taken (CONNACK 3) as admission refusals. */
  useAdmission (busy: BusyRefusals): void {
    this.#busy = busy
  }

  /** The node's bound on password checks (auth/password-gate.ts). */
  get passwordGate (): PasswordGate {
    return this.#gate
  }

  /** True in local mode (no auth section). */
  get local (): boolean {
    return this.#auth === null
  }

  /**
   * Checks a CONNECT. Failed logins are answered after a delay that grows per source address. A password is checked
   * within the node's bound (auth/password-gate.ts): beyond it, or when the client has gone before its turn, the
   * refusal is CONNACK 3 at once (counted with the admission refusals, reason `login-busy`), not a failed login.
   * @returns the identity, or a refusal with its CONNACK return code (2 identifier rejected, 3, 4, 5)
   */
  async connect (client: AccessClient, req: ConnectRequest): Promise<Identity | (Omit<Refusal, 'returnCode'> & { returnCode: 2 | 3 | 4 | 5 })> {
    const auth = this.#auth
    const address = client.connDetails?.ipAddress ?? ''
    let result: Identity | Refusal
    if (auth === null) {
      result = LOCAL_IDENTITY
    } else {
      const listener = client.connDetails?.listener ?? ''
      const methods = this.#listenerMethods.get(listener) ?? auth.methods
      const gone = (): boolean => client.closed === true
      result = await auth.authenticate({ methods, listener, username: req.username, password: req.password, certCN: client.connDetails?.certCN, certError: client.connDetails?.certError, gate: this.#gate, gone })
    }
    if ('returnCode' in result && result.unchecked !== undefined) {
      if (result.unchecked === 'busy') this.#busy?.refuse('login-busy', client.connDetails?.listener ?? '')
      return result
    }
    if ('returnCode' in result) {
      await new Promise((resolve) => setTimeout(resolve, this.#throttle.failed(address, auth?.maxFailedLoginDelayMs ?? 0)))
      return result
    }
    this.#throttle.succeeded(address)
    if (!client.clean && result.method === 'anonymous' && auth?.anonymousPersistentSessions !== true) {
      // A persistent session is state the broker keeps (and, in a cluster, writes to Redis for every message) until
      // the client comes back: only clients with a credential get one, unless auth.anonymous.persistentSessions.
      // MQTT 3.1.1 section 3.1.2.4.
      return { returnCode: 5, reason: 'not authorized: anonymous clients must use a clean session (auth.anonymous.persistentSessions is off)' }
    }
    if (req.will != null && auth !== null && !mayPublish(result.rules, req.will.topic)) {
      return { returnCode: 5, reason: `${result.id} may not publish its will to ${req.will.topic}` }
    }
    const holder = req.holder !== undefined ? this.#identities.get(req.holder) : undefined
    if (holder !== undefined && holder.id !== result.id) {
      return { returnCode: 2, reason: `client id ${JSON.stringify(client.id)} belongs to another identity` }
    }
    if (this.#sessionOwners !== undefined && !(await this.#sessionOwners.claim(client.id, result.id, client.clean))) {
      return { returnCode: 2, reason: `client id ${JSON.stringify(client.id)} holds a persistent session of another identity` }
    }
    this.#identities.set(client, result)
    if (deniesSubscriptions(result.rules)) this.#someDeny = true
    return result
  }

  /** The identity of a connected client (undefined before CONNECT has been accepted). */
  identity (client: AccessClient): Identity | undefined {
    return this.#identities.get(client)
  }

  /**
   * May `client` publish to topic name `topic` (an allow rule matches, no deny rule does)? Wills of gone clients
   * (client null) were checked at CONNECT. Local mode: yes.
   */
  mayPublish (client: AccessClient | null, topic: string): boolean {
    if (client !== null && this.#revoked.has(client)) return false
    if (client === null || this.#auth === null) return true
    const id = this.#identities.get(client)
    return id !== undefined && mayPublish(id.rules, topic)
  }

  /**
   * May `client` subscribe to topic filter `filter` (a `$replay` filter: to its feed)? No when no allow rule covers
   * it or a deny rule does; a filter that only overlaps a denied one is allowed (see {@link mayForward}). Local: yes.
   */
  maySubscribe (client: AccessClient, filter: string): boolean {
    if (this.#auth === null) return true
    const id = this.#identities.get(client)
    return id !== undefined && maySubscribe(id.rules, filter)
  }

  /**
   * May a message on `topic` go to `client`? Runs per message and per subscriber (aedes `authorizeForward`: live
   * messages, retained messages sent at SUBSCRIBE, a persistent session's queue on reconnect).
   *  - Persistent sessions: the full check (allow and deny), since messages queued for them may predate a reload of
   *    their rules (SIGHUP).
   *  - Clean sessions were checked at SUBSCRIBE (and again at each reload, which disconnects a client holding a
   *    filter its new rules refuse); only the deny rules are checked per message, because a granted wildcard may
   *    overlap a denied filter (`#` and a deny of `internal/#`; a `$replay` topic: its feed). Free until an identity
   *    with deny rules connects.
   */
  mayForward (client: AccessClient, topic: string): boolean {
    if (client.clean && !this.#someDeny) return true
    if (this.#auth === null) return true
    const id = this.#identities.get(client)
    if (id === undefined) return false
    if (client.clean) return topic.startsWith('$replay/') ? !isDeniedFilter(id.rules, topic) : !isDeniedTopic(id.rules, topic)
    return topic.startsWith('$replay/') ? maySubscribe(id.rules, topic) : mayReceive(id.rules, topic)
  }

  /**
   * Marks `client` as disconnected by a reload: from now on it may publish nothing, and its will is not published
   * (a connection the server ends on purpose is not the unexpected loss a will announces, MQTT 3.1.1 section
   * 3.1.2.5). Its identity stays known, for its disconnect log line.
   */
  revoke (client: AccessClient): void {
    this.#revoked.add(client)
  }

  /** Whether a reload disconnected `client` ({@link revoke}). */
  revoked (client: AccessClient): boolean {
    return this.#revoked.has(client)
  }

  /**
   * Swaps in a reloaded authenticator and applies it to connected clients: each keeps its connection with its
   * credential's current role and rules; those whose credential is gone, revoked or changed are returned, marked
   * {@link revoke}d (they must be disconnected).
   */
  async reload<C extends AccessClient> (auth: Authenticator, clients: Iterable<C>): Promise<C[]> {
    this.#auth = auth
    const gone: C[] = []
    for (const client of clients) {
      const id = this.#identities.get(client)
      if (id === undefined) continue
      const now = await auth.refresh(id)
      if (now === null || (now.method === 'anonymous' && !client.clean && !auth.anonymousPersistentSessions)) {
        this.#revoked.add(client)
        gone.push(client)
        continue
      }
      this.#identities.set(client, now)
      if (deniesSubscriptions(now.rules)) this.#someDeny = true
    }
    return gone
  }
}
