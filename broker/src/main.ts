/**
 * Wiring only: config -> auth -> stores -> broker -> listeners. Returns a handle that reloads auth and closes
 * everything in order.
 */
import { shareEncodings } from './delivery.js'
import type { AddressInfo, Server } from 'node:net'
import type { Aedes, Client } from 'aedes'
import type { WebSocketServer, WebSocket } from 'ws'
import type { Duplex } from 'node:stream'
import { resolve as resolvePath } from 'node:path'
import { ADMISSION_DEFAULTS, ConfigError, resolveConfig, type BrokerOptions, type BrokerConfig } from './config.js'
import { createLogger, type Logger } from './log.js'
import { openStores, type NodeStores } from './stores.js'
import { FeedHub } from './feeds/hub.js'
import { Feeds, type OutgoingQueue } from './feeds/feeds.js'
import { createBroker, type IncomingStore } from './broker.js'
import { subscriptionsNoLongerAllowed } from './hooks/subscribe.js'
import { listenTcp, type ConnectionHandler } from './listeners/tcp.js'
import { listenWs } from './listeners/ws.js'
import { listenHttp, type HttpRoutes } from './listeners/http.js'
import { loadPages, pageHandler } from './listeners/pages.js'
import { Access, type AccessClient } from './auth/access.js'
import { Authenticator } from './auth/authenticator.js'
import type { Method } from './auth/schema.js'
import { planListeners, isLoopback, type PlannedListener } from './listeners/plan.js'
import { Admission, openFileCount, openFileLimit } from './admission/admission.js'
import { asDeliveringClient, asFeedClient, connectedClients, handleConnection, messageStream } from './aedes-internals.js'
import { closeClient, markDisconnect } from './disconnect-reason.js'
import { Drain } from './drain.js'
import { formatPeer } from './connection-log.js'
import type { RefusedHandler } from './listeners/guard.js'
import { NodeMetrics } from './metrics/node-metrics.js'
import { clientFigures } from './metrics/clients.js'
import type { NodeStats } from './metrics/stats.js'
import { AdminService } from './admin/service.js'
import { NodeDirectory } from './admin/nodes.js'
import { createAdminNode, type NodeControls } from './admin/node.js'

/** A running broker node. */
export interface BrokerNode {
  config: Readonly<BrokerConfig>
  aedes: Aedes
  /** The bound port of the first MQTT over TCP and the first WebSocket listener (useful when 0 was asked for). */
  tcpPort: number
  wsPort: number
  /** Bound ports by listener name (`mqtt:1883`, `ws:8080`, `mqtts:8883`, `wss:8443`, in config order). */
  ports: Record<string, number>
  log: Logger
  /**
   * Applies a new configuration's `auth` section without a restart: clients whose credential is gone or revoked,
   * and clients holding a subscription their new rules refuse, are disconnected (reason `revoked`, their wills not
   * published), nobody else. Other options need a restart (they are reported, not applied).
   * @returns the number of clients disconnected
   * @throws ConfigError when the new configuration is invalid (the old one stays in force)
   */
  reload: (options: BrokerOptions) => Promise<number>
  /** Stops accepting, closes clients, flushes and closes the store. Safe to call twice. */
  close: () => Promise<void>
  /** The node's admission control: its limits and counts of connections taken and refused. */
  admission: Admission
  /**
   * Drains the node (drain.ts): new connections are refused from now on (`draining`: CONNACK 3, HTTP 503 with
   * Retry-After), `/readyz` answers 503 at once, and the clients it holds are disconnected at an even rate over
   * `seconds` (viewers first, operators last), so they reconnect to other nodes without a herd. A drain under way is
   * planned again over the new `seconds`.
   * @param seconds 0 (all at once) to 86,400
   * @param opts `exit: true` closes the node once the drain is done (SIGTERM with --drain-seconds); otherwise it stays
   *   up, empty and refusing new connections, until {@link BrokerNode.undrain}
   * @returns resolves when every client is gone (or the drain was stopped, or the node closed, first)
   * @throws RangeError (a rejection) for `seconds` out of range; Error when the node is closing
   */
  drain: (seconds: number, opts?: { exit?: boolean }) => Promise<void>
  /** True from {@link BrokerNode.drain} until {@link BrokerNode.undrain}. */
  readonly draining: boolean
  /**
   * Takes new connections again after a drain (a drain under way stops where it is: the clients still connected
   * stay). Does nothing when the node is not draining.
   */
  undrain: () => void
  /** The node's metrics (metrics/node-metrics.ts): counters, the prom-client registry behind `GET /metrics`. */
  metrics: NodeMetrics
  /** The node's statistics, read now: the document `$SYS/<node-id>/stats` carries (metrics/stats.ts). */
  stats: () => NodeStats
}

/**
 * Starts a broker node: the embedded store under `dataDir`, aedes with feeds and access control, the listeners.
 * Without an `auth` section it runs in local mode: loopback addresses only, every local client may do anything.
 * @param options broker options (see config.ts); validated here
 * @throws ConfigError for a bad option or a non-loopback listener without auth; Error naming the data dir, a key
 *   file or the address when the store, a file or a port cannot be opened
 */
export async function startBroker (options: BrokerOptions = {}, logger?: Logger): Promise<BrokerNode> {
  const config = resolveConfig(options)
  const startedAt = Date.now()
  const log = logger ?? createLogger(config.logLevel, config.logFormat)
  const metrics = new NodeMetrics(config.metrics === 'on')
  const planned = planListeners(config)
  const access = await createAccess(config, planned, log)
  let aedes: Aedes | undefined
  const clientTable = (): Readonly<Record<string, Client>> => connectedClients(aedes)
  const stores = await openStores(config, log, (id) => {
    const client: AccessClient | undefined = clientTable()[id]
    return client === undefined ? undefined : { clean: client.clean, identity: access.identity(client)?.id }
  }, (id, byNode) => {
    const client = clientTable()[id]
    if (client !== undefined) markDisconnect(client, 'takeover', `by a new connection on node ${byNode}`)
  }, (seconds) => metrics.redisRoundTrip(seconds))
  const { persistence, feeds: store } = stores
  if (stores.sessionOwners !== undefined) access.useSessionOwners(stores.sessionOwners)
  const hub = new FeedHub(store, { history: config.feedHistory, onError: (err, feed) => log.error({ err, feed }, 'feed hub') })
  const feeds = new Feeds({
    filters: config.feeds,
    store,
    hub,
    outgoing: persistence as unknown as OutgoingQueue,
    maxReplaysPerClient: config.maxReplaysPerClient,
    // The PUBLISH that carries an envelope adds a fixed header (5), a topic (2 + at most maxTopicLength, plus the
    // `$replay/after-<seq>@<epoch>/` prefix of up to 100 bytes) and a packet id (2): leave room for them.
    maxEnvelopeBytes: config.maxPacketSize - Math.min(config.maxTopicLength + 128, Math.floor(config.maxPacketSize / 4))
  })
  // The broker publishes admin answers and heartbeats once aedes exists (no hook runs for its own messages).
  const publish = (topic: string, payload: Buffer, qos: 0 | 1): void => {
    aedes?.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, (err?: Error) => {
      if (err != null) log.warn({ topic, reason: err.message }, 'publishing as the broker failed')
    })
  }
  const directory = new NodeDirectory(stores.nodeId, config.heartbeatInterval, () => publish(`$SYS/${stores.nodeId}/heartbeat`, Buffer.from(stores.nodeId), 0))
  const admin = new AdminService({ nodeId: stores.nodeId, access, log, nodes: () => directory.live(), publish: (topic, payload) => publish(topic, payload, 1) })
  try {
    // In a cluster, before this node's birth: the live nodes answer it with a heartbeat.
    if (stores.mq !== undefined) await directory.listen(stores.mq)
    const limits = {
      maxTopicLength: config.maxTopicLength,
      maxTopicLevels: config.maxTopicLevels,
      maxSubscriptionsPerClient: config.maxSubscriptionsPerClient,
      maxKeepalive: config.maxKeepalive,
      keepaliveZero: config.keepaliveZero,
      connectTimeoutMs: config.connectTimeoutMs
    }
    const liveness = { idleTimeoutMs: config.idleTimeoutMs, wsPingIntervalMs: config.wsPingIntervalMs }
    aedes = await createBroker({ id: stores.nodeId, persistence: persistence as unknown as IncomingStore, mq: stores.mq, heartbeatInterval: config.heartbeatInterval, feeds, access, log, limits, liveness, metrics: metrics.observers, admin })
    await feeds.listen(messageStream(aedes))
    if (stores.mq === undefined) await directory.listen(messageStream(aedes))
  } catch (err) {
    await new Promise<void>((resolve) => aedes !== undefined ? aedes.close(() => resolve()) : (stores.mq !== undefined ? stores.mq.close(resolve) : resolve()))
    await stores.close().catch(() => {})
    metrics.close()
    throw err
  }
  const broker: Aedes = aedes
  // Wills an earlier run left (it died: its clients are gone) are due, before any client connects: a client coming
  // back with the same id must not find its new will deleted as the old one.
  await publishOrphanWills(broker, stores, log)
  // After a cut in the message stream: list the feeds again (some may have been created meanwhile), then catch up.
  stores.onResubscribed(() => {
    void (async () => {
      await store.watchLive?.().catch((err: Error) => log.warn({ err }, 'listing feeds failed'))
      await hub.resync()
    })()
  })
  // Listener names are `<protocol>:<port>` (listeners/plan.ts).
  const onRefused: RefusedHandler = (peer, close) => log.warn({ transport: peer.listener?.split(':')[0], listener: peer.listener, peer: formatPeer(peer.ipAddress, peer.port), reason: close.detail }, 'connection closed by the guard')
  const admission = createAdmission(config, log)
  access.useAdmission(admission)
  const roleRank: Record<string, number> = { viewer: 0, publisher: 1, operator: 2 }
  const drain = new Drain({
    clients: () => Object.values(clientTable()),
    // Viewers first, then publishers, then operators (and local-mode clients, all operators): see drain.ts.
    rank: (client) => roleRank[access.identity(client)?.role ?? 'viewer'] ?? 0,
    disconnect: (client) => closeClient(client, 'drain', 'the node is draining'),
    admission,
    log
  })
  broker.on('clientReady', (client: Client) => drain.connected(client))
  /** node.drain over $admin (admin/commands/node-drain.ts answers once it has started): resolves when it is done. */
  const startDrain = async (seconds: number): Promise<void> => {
    if (closing !== null) throw new Error('drain: the node is closing')
    await drain.start(seconds)
  }
  const counters = metrics.observers?.counters ?? null
  const limits = { maxPacketSize: config.maxPacketSize, maxQueuedBytes: config.maxQueuedBytes, packetTimeoutMs: config.packetTimeoutMs, connectTimeoutMs: config.connectTimeoutMs, counters }
  // Messages are encoded once for all their subscribers (delivery.ts). Every connection's `$replay` subscriptions end
  // when its stream closes, even when aedes loses its disconnect event (a takeover racing a close).
  const handle: ConnectionHandler = (stream, req) => {
    const client = handleConnection(broker, stream, req)
    shareEncodings(asDeliveringClient(client), counters)
    stream.once('close', () => feeds.disconnected(asFeedClient(client)))
    return client
  }
  const health = (): { status: number, body: unknown } => ({
    status: broker.closed ? 503 : 200,
    // Counted from the table of clients: aedes' own counter drifts when a takeover races a close.
    body: {
      status: broker.closed ? 'closing' : 'ok',
      id: broker.id,
      clients: Object.keys(clientTable()).length,
      store: stores.kind,
      storeReachable: stores.ready(),
      ...hub.stats(),
      admission: admission.stats()
    }
  })
  const ready = (): { status: number, body: unknown } => {
    const reasons = [
      ...(broker.closed ? ['closing'] : []),
      ...(stores.ready() ? [] : [`${stores.kind} store unreachable`]),
      ...(drain.draining ? ['draining: refusing new connections'] : []),
      ...(admission.overloaded ? ['overloaded: refusing new connections'] : []),
      ...(admission.full ? ['at max connections'] : [])
    ]
    return { status: reasons.length === 0 ? 200 : 503, body: { ready: reasons.length === 0, id: broker.id, reasons } }
  }
  metrics.attach({
    id: broker.id,
    startedAt,
    storeKind: stores.kind,
    storeReachable: stores.ready,
    store: stores.figures,
    clients: () => clientFigures(clientTable(), access),
    hub: () => hub.stats(),
    admission: () => admission.stats()
  })
  const registry = metrics.registry
  const pageFiles = config.ui ? loadPages() : null
  if (config.ui && pageFiles === null) log.warn('the pages are not built (npm run build): / and /ops answer 404')
  const routes: HttpRoutes = {
    health,
    ready,
    ...(registry === null ? {} : { metrics: async () => ({ contentType: registry.contentType, text: await registry.text() }) }),
    ...(config.ui ? { pages: (wsPath: string) => pageHandler(pageFiles, wsPath) } : {})
  }
  await admin.listen(messageStream(broker), createAdminNode({ broker, access, feeds, retained: stores.retained, config, directory, controls: { stats: () => ({ ...metrics.stats() }), drain: async (seconds) => { await startDrain(seconds) }, undrain: () => drain.stop(), draining: () => drain.draining } }))
  const shutdown = async (): Promise<void> => {
    metrics.close()
    admission.close()
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    hub.close()
    await stores.close()
  }
  const servers: Server[] = []
  const wsServers: Array<{ wss: WebSocketServer, open: Set<WebSocket> }> = []
  const tcpOpen: Array<Set<Duplex>> = []
  const ports: Record<string, number> = {}
  try {
    for (const l of planned) {
      const spec = { name: l.name, host: l.host, port: l.port, tls: l.tls, requestCert: l.methods?.includes('cert') ?? access.local === false }
      if (l.protocol === 'mqtt' || l.protocol === 'mqtts') {
        const { server, open } = await listenTcp(spec, limits, handle, onRefused, admission)
        admission.attach(server)
        servers.push(server)
        tcpOpen.push(open)
        ports[l.name] = (server.address() as AddressInfo).port
      } else {
        const web = await listenWs({ ...spec, path: l.path }, limits, handle, routes, onRefused, admission)
        admission.attach(web.server)
        servers.push(web.server)
        wsServers.push(web)
        ports[l.name] = (web.server.address() as AddressInfo).port
      }
    }
    if (config.metricsPort !== undefined) {
      const server = await listenHttp(config.host, config.metricsPort, routes)
      servers.push(server)
      ports.metrics = (server.address() as AddressInfo).port
    }
  } catch (err) {
    for (const s of servers) s.close()
    await shutdown()
    throw err
  }
  const portOf = (protocol: string): number => ports[planned.find((l) => l.protocol === protocol)?.name ?? ''] ?? 0
  const tcpPort = portOf('mqtt')
  const wsPort = portOf('ws')
  log.info({ id: broker.id, tcpPort, wsPort, ports, store: stores.kind, ui: config.ui && pageFiles !== null, dataDir: stores.kind !== 'embedded' ? undefined : config.dataDir === ':memory:' ? config.dataDir : resolvePath(config.dataDir), feeds: config.feeds, auth: access.local ? 'local' : 'on' }, 'broker listening')
  metrics.startSys(broker.id, config.sysInterval, (topic, payload) => {
    broker.publish({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false }, (err?: Error) => {
      if (err != null) log.warn({ topic, err }, 'publishing $SYS statistics failed')
    })
  })
  if (access.local) {
    log.warn('no auth section: listening on loopback only, and every local client may publish, subscribe and administer (add an auth section to accept other clients)')
  }

  const reload = async (next: BrokerOptions): Promise<number> => {
    const nextConfig = resolveConfig(next)
    if (nextConfig.auth === undefined || config.auth === undefined) {
      throw new ConfigError('reload: switching between local mode and an auth section needs a restart')
    }
    const auth = await Authenticator.create(nextConfig.auth).catch((err: Error) => { throw new ConfigError(`reload: ${err.message}`) })
    const clients = Object.values(clientTable())
    const gone = await access.reload(auth, clients)
    for (const client of gone) closeClient(client, 'revoked', 'its credential was removed, revoked or changed by a reload')
    // A client keeping its credential may have lost rights (a new role, narrower rules, a deny rule): one holding a
    // filter its new rules refuse is disconnected, and at its next SUBSCRIBE of that filter gets 0x80. Checked once
    // here rather than per message for every client; a persistent session's stored filter refused again is removed
    // when the session is restored. Like a credential revoked, its will is not published (Access.revoke).
    const stale = clients.filter((client) => !access.revoked(client) && !client.closed && subscriptionsNoLongerAllowed(access, client).length > 0)
    for (const client of stale) {
      access.revoke(client)
      closeClient(client, 'revoked', `a reload took away subscriptions it held: ${subscriptionsNoLongerAllowed(access, client).join(', ')}`)
    }
    const changed = (Object.keys(nextConfig) as Array<keyof BrokerConfig>).filter((k) => k !== 'auth' && JSON.stringify(nextConfig[k]) !== JSON.stringify(config[k]))
    log.info({ disconnected: gone.length + stale.length, notApplied: changed }, changed.length > 0 ? 'auth reloaded; other changed options need a restart' : 'auth reloaded')
    return gone.length + stale.length
  }

  let closing: Promise<void> | null = null
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      drain.close()
      // Why the clients' connections end, for their disconnect lines (a drained one keeps `drain`).
      for (const client of Object.values(clientTable())) markDisconnect(client, 'shutdown')
      for (const s of servers) s.close()
      for (const { wss, open } of wsServers) {
        for (const ws of open) ws.terminate()
        wss.close()
      }
      await shutdown()
      // Connections aedes did not close: those that never sent a CONNECT (else they would wait for its timeout).
      for (const open of tcpOpen) for (const socket of open) socket.destroy()
      for (const s of servers) (s as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
      log.info({ id: broker.id }, 'broker closed')
    })()
    await closing
  }
  const node: BrokerNode = {
    config,
    aedes: broker,
    tcpPort,
    wsPort,
    ports,
    log,
    reload,
    close,
    admission,
    metrics,
    stats: () => metrics.stats(),
    drain: async (seconds, opts = {}) => {
      if (closing !== null) throw new Error('drain: the node is closing')
      const completed = await drain.start(seconds)
      if (completed && opts.exit === true) await close()
    },
    get draining () { return drain.draining },
    undrain: () => drain.stop()
  }
  return node
}

/**
 * Publishes the wills an earlier run of this node left behind (MQTT 3.1.1 section 3.1.2.5), each once, then deletes
 * it; resolves when all are done. Each goes through authorizePublish, as aedes' own will sweep does (a will on a feed
 * topic is stamped like any feed message); a will it refuses is deleted unpublished.
 */
async function publishOrphanWills (broker: Aedes, stores: NodeStores, log: Logger): Promise<void> {
  const wills = await stores.orphanWills().catch((err: Error) => {
    log.warn({ err }, 'reading wills left by an earlier run failed')
    return []
  })
  await Promise.all(wills.map(async (will) => {
    const packet = { cmd: 'publish' as const, topic: will.topic, payload: will.payload, qos: will.qos as 0 | 1 | 2, retain: will.retain, dup: false }
    const refused = await new Promise<Error | null>((resolve) => broker.authorizePublish(null, packet, (err) => resolve(err ?? null)))
    if (refused === null) await new Promise<void>((resolve) => broker.publish(packet, () => resolve()))
    await stores.delWill(will).catch((err: Error) => log.warn({ clientId: will.clientId, err }, 'deleting a published will failed'))
    if (refused === null) log.info({ clientId: will.clientId, topic: will.topic }, 'published the will of a client of an earlier run of this node')
    else log.warn({ clientId: will.clientId, topic: will.topic, reason: refused.message }, 'will of a client of an earlier run refused; deleted')
  }))
}

/** Open files kept free for the node's own growth (listeners, a store's new files, Redis reconnects, logs), beyond
 * the files it has open when admission is set up; a quarter of a limit under 1,024. */
const SPARE_FILES = 256
/** Below this many connections a lowered limit is worth a warning even when the default was asked. */
const FEW_CONNECTIONS = 1000

/**
 * The node's admission control from the configuration. `maxConnections` is lowered to the process' open-file limit
 * less the files the node has open already and {@link SPARE_FILES} when that is lower: past it, accepting fails
 * (EMFILE) instead of refusing clearly.
 */
function createAdmission (config: BrokerConfig, log: Logger): Admission {
  let maxConnections = config.maxConnections
  const files = openFileLimit()
  const own = openFileCount()
  const spare = files === undefined ? SPARE_FILES : Math.min(SPARE_FILES, Math.floor(files / 4))
  const reserved = own + spare
  if (maxConnections > 0 && files !== undefined && maxConnections > files - reserved) {
    const lowered = Math.max(1, files - reserved)
    // A warning when the operator asked for more, or when few are left; the default lowered to thousands is said
    // quietly (a warning at every start is noise).
    const level = maxConnections === ADMISSION_DEFAULTS.maxConnections && lowered >= FEW_CONNECTIONS ? 'info' : 'warn'
    log[level]({ maxConnections, openFileLimit: files, ownFiles: own, lowered }, `max connections lowered to ${lowered}: the open-file limit is ${files}, less the ${own} files the node has open and ${spare} kept for more (raise it with ulimit -n)`)
    maxConnections = lowered
  }
  return new Admission({
    maxConnections,
    maxConnRate: config.maxConnRate,
    maxConnBurst: config.maxConnBurst,
    maxConnsPerAddress: config.maxConnsPerAddress,
    maxConnRatePerAddress: config.maxConnRatePerAddress,
    overloadLagMs: config.overloadLagMs,
    maxRefusalRate: config.maxRefusalRate,
    // Refused connections wait up to 2 s for their answer, each holding a file: once the connections held and the
    // refused ones still open reach the open-file limit less the node's own files and half the spare, new ones are shed at accept (no file),
    // so the node never runs out.
    maxSocketsOpen: files === undefined ? 0 : Math.max(16, files - own - Math.ceil(spare / 2))
  }, log)
}

/**
 * Access control for the configuration: an authenticator when there is an auth section; otherwise local mode,
 * refused unless every listener is on a loopback address (as Mosquitto 2 does).
 */
async function createAccess (config: BrokerConfig, planned: PlannedListener[], log: Logger): Promise<Access> {
  const methods = new Map<string, readonly Method[] | null>(planned.map((l) => [l.name, l.methods ?? null]))
  if (config.auth === undefined) {
    const open = planned.filter((l) => !isLoopback(l.host))
    if (open.length > 0) {
      throw new ConfigError(`listener ${open[0].name} on ${open[0].host} is not a loopback address: add an auth section (see examples/secure.json), or listen on 127.0.0.1`)
    }
    return new Access(null, methods)
  }
  const exposed = planned.filter((l) => !isLoopback(l.host))
  if (config.auth.sampleCredentials && exposed.length > 0) {
    throw new ConfigError(`listener ${exposed[0].name} on ${exposed[0].host}: this auth section has "sampleCredentials": true, and sample credentials are public (the README prints them): replace them with your own (tribune hash-password), remove "sampleCredentials", or listen on 127.0.0.1`)
  }
  let auth: Authenticator
  try {
    auth = await Authenticator.create(config.auth)
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
  for (const l of planned) {
    const accepted = l.methods ?? auth.methods
    if (accepted.length === 0) log.warn({ listener: l.name }, 'this listener accepts no configured auth method: nobody can connect to it')
  }
  return new Access(auth, methods)
}
