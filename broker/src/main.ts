/**
 * Wiring only: config -> stores -> broker -> listeners. Returns a handle that closes everything in order.
 */
import type { AddressInfo } from 'node:net'
import type { Aedes } from 'aedes'
import { resolveConfig, type BrokerOptions, type BrokerConfig } from './config.js'
import { createLogger, type Logger } from './log.js'
import { openDatabase } from './store/db.js'
import { CachedRetainedPersistence } from './store/persistence.js'
import { LevelFeedStore } from './feeds/level-store.js'
import { FeedHub } from './feeds/hub.js'
import { Feeds, type MessageStream, type OutgoingQueue } from './feeds/feeds.js'
import { createBroker, type IncomingStore } from './broker.js'
import { listenTcp } from './listeners/tcp.js'
import { listenWs } from './listeners/ws.js'

/** A running broker node. */
export interface BrokerNode {
  config: Readonly<BrokerConfig>
  aedes: Aedes
  /** The bound ports (useful when 0 was asked for). */
  tcpPort: number
  wsPort: number
  log: Logger
  /** Stops accepting, closes clients, flushes and closes the store. Safe to call twice. */
  close: () => Promise<void>
}

/**
 * Starts a broker node: the embedded store under `dataDir`, aedes with feeds, MQTT over TCP and WebSocket, /healthz.
 * @param options broker options (see config.ts); validated here
 * @throws ConfigError for a bad option; Error naming the data dir or the address when the store or a port cannot be opened
 */
export async function startBroker (options: BrokerOptions = {}, logger?: Logger): Promise<BrokerNode> {
  const config = resolveConfig(options)
  const log = logger ?? createLogger(config.logLevel)
  const db = await openDatabase(config.dataDir)
  const persistence = new CachedRetainedPersistence((db as unknown as { sublevel: (name: string, opts: object) => unknown }).sublevel('aedes', { valueEncoding: 'buffer' }))
  const store = new LevelFeedStore(db as never, config.feedHistory)
  const hub = new FeedHub(store, { history: config.feedHistory, onError: (err, feed) => log.error({ err, feed }, 'feed hub') })
  const feeds = new Feeds({
    filters: config.feeds,
    store,
    hub,
    outgoing: persistence as unknown as OutgoingQueue,
    maxReplaysPerClient: config.maxReplaysPerClient,
    // The PUBLISH that carries an envelope adds a fixed header (<= 5 bytes), a topic (2 + length) and a packet id (2).
    maxEnvelopeBytes: config.maxPacketSize - Math.min(1024, Math.floor(config.maxPacketSize / 4))
  })
  let aedes: Aedes
  try {
    aedes = await createBroker({ persistence: persistence as unknown as IncomingStore, feeds, log })
    await feeds.listen((aedes as unknown as { mq: MessageStream }).mq)
  } catch (err) {
    await db.close()
    throw err
  }
  const onRefused = (peer: string, reason: string): void => log.warn({ peer, reason }, 'connection closed by the guard')
  const limits = { maxPacketSize: config.maxPacketSize, maxQueuedBytes: config.maxQueuedBytes }
  const handle = aedes.handle as unknown as Parameters<typeof listenTcp>[3]
  const health = (): { status: number, body: unknown } => ({
    status: aedes.closed ? 503 : 200,
    body: { status: aedes.closed ? 'closing' : 'ok', id: aedes.id, clients: aedes.connectedClients, ...hub.stats() }
  })
  const shutdown = async (): Promise<void> => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    hub.close()
    await store.close()
    await persistence.destroy()
    await db.close()
  }
  // A port that cannot be bound ends the start cleanly: nothing is left open to keep the process alive.
  const tcp = await listenTcp(config.host, config.port, limits, handle, onRefused)
    .catch(async (err: Error) => { await shutdown(); throw err })
  const web = await listenWs(config.host, config.wsPort, config.wsPath, limits, handle, { health }, onRefused)
    .catch(async (err: Error) => {
      tcp.close()
      await shutdown()
      throw err
    })
  const tcpPort = (tcp.address() as AddressInfo).port
  const wsPort = (web.server.address() as AddressInfo).port
  log.info({ id: aedes.id, host: config.host, tcpPort, wsPort, wsPath: config.wsPath, dataDir: config.dataDir, feeds: config.feeds }, 'broker listening')

  let closing: Promise<void> | null = null
  const close = async (): Promise<void> => {
    closing ??= (async () => {
      tcp.close()
      web.server.close()
      for (const ws of web.wss.clients) ws.terminate()
      web.wss.close()
      await shutdown()
      web.server.closeAllConnections()
      log.info({ id: aedes.id }, 'broker closed')
    })()
    await closing
  }
  return { config, aedes, tcpPort, wsPort, log, close }
}
