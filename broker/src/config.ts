/**
 * Broker configuration: one typed schema, read from defaults, an optional JSON file (`--config`),
 * TRIBUNE_* environment variables and command-line flags, in rising order of precedence.
 * Every bad value is refused at start with a message that names the option and the value.
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { z } from 'zod'
import { isValidFilter } from './feeds/topic-filter.js'
import { authSchema, listenerSchema } from './auth/schema.js'

/** One option: its schema, the flag and variable that set it, and the line `--help` prints. */
interface OptionSpec {
  key: keyof BrokerConfig
  flag: string
  env: string
  /** Converts the flag/env string into the value the schema checks. */
  parse: (raw: string) => unknown
  doc: string
  /**
   * A flag without a value (`--no-ui`): given, it sets the option to false; its variable still takes `on` or `off`.
   */
  boolean?: true
}

/**
 * Admission defaults, measured on one node of a 2-core machine (`npm run bench -- --only storm`, bench/RESULTS.md
 * "Admission"; the README's "Admission control" gives the figures behind each):
 *  - maxConnRate 800/s: a WebSocket join with auth and `$replay` (20 messages + state) costs the node about 450 µs,
 *    so 800 joins/s take a third of a core, and refusing a storm of 3 times the rate (answers, sheds and the clients'
 *    retries) about as much again: in such storms the viewers' p99 stayed within 1.25-1.96 times its level before,
 *    where at 1,000/s it reached 1.6-2.0 times and at 1,200/s 2.6-6 times;
 *  - maxConnBurst 250: joins at once lifted the viewers' p99 0.9-1.7 times at 250, 1.4-2.6 at 500, 1.9-3.8 at 1,000;
 *  - maxConnections 20,000: about 12 KB per idle viewer (240 MB), and one message to 20,000 viewers keeps the loop
 *    about 260-300 ms (131-148 ms at 10,000);
 *  - overloadLagMs 500: above that turn, so that a goal delivered to a full node is not taken for overload;
 *  - maxRefusalRate 1,200/s: a clear refusal costs 160-180 µs, so at most about a fifth of a core goes to them, in
 *    bursts of a tenth of a second's worth; beyond, a connection shed at accept costs 35-45 µs.
 */
export const ADMISSION_DEFAULTS = { maxConnections: 20_000, maxConnRate: 800, maxConnBurst: 250, overloadLagMs: 500, maxRefusalRate: 1200 } as const

const REDIS_URL = /^rediss?:\/\/[^\s/]+(\/\d{1,5})?\/?$/
const port = z.number().int().min(0).max(65535)
const topicFilter = z.string().min(1).refine((f) => isValidFilter(f), 'must be an MQTT topic filter without $ prefix ("+" and "#" only as whole levels, "#" last)')

/**
 * How the Redis options fit together: sentinels and a master name go together; with sentinels, `redis` (optional)
 * gives only the user, password and database, its host being the master name (`redis://:secret@mymaster/2`), since
 * the sentinels say where the master is; `redisMinReplicas` needs Redis.
 */
function checkRedisTarget (cfg: { redis?: string, redisSentinels?: string[], redisMasterName?: string, redisMinReplicas: number }, ctx: z.RefinementCtx): void {
  const issue = (key: string, message: string): void => { ctx.addIssue({ code: 'custom', path: [key], message }) }
  if (cfg.redisSentinels !== undefined && cfg.redisMasterName === undefined) issue('redisSentinels', 'needs a master name too (--redis-master-name, redisMasterName: the name the sentinels monitor the master by)')
  if (cfg.redisMasterName !== undefined && cfg.redisSentinels === undefined) issue('redisMasterName', 'needs sentinels too (--redis-sentinels, redisSentinels: the sentinels that know this master)')
  if (cfg.redisSentinels !== undefined && cfg.redisMasterName !== undefined && cfg.redis !== undefined && REDIS_URL.test(cfg.redis)) {
    const url = new URL(cfg.redis)
    if (url.protocol === 'rediss:') issue('redis', 'rediss:// (TLS) is not supported with --redis-sentinels')
    else if (url.hostname !== cfg.redisMasterName.toLowerCase() || url.port !== '') {
      issue('redis', `with --redis-sentinels it gives only [user:password@] and /database, its host being the master name: redis://[user:password@]${cfg.redisMasterName}[/database] (the sentinels say where the master is)`)
    }
  }
  if (cfg.redisMinReplicas > 0 && cfg.redis === undefined && cfg.redisSentinels === undefined) issue('redisMinReplicas', 'needs Redis (--redis or --redis-sentinels): the embedded store has no replicas')
}

/** The validated, frozen broker configuration. Sizes in bytes, times in milliseconds. */
export const configSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: port.default(1883),
  wsPort: port.default(8080),
  wsPath: z.string().startsWith('/').default('/mqtt'),
  dataDir: z.string().min(1).default('./data'),
  feeds: z.array(topicFilter).min(1).default(['matches/+/events']),
  feedHistory: z.number().int().min(1).max(1_000_000).default(1000),
  maxPacketSize: z.number().int().min(64).max(256 * 1024 * 1024).default(256 * 1024),
  maxQueuedBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
  maxReplaysPerClient: z.number().int().min(1).max(100_000).default(256),
  maxSubscriptionsPerClient: z.number().int().min(1).max(1_000_000).default(512),
  maxTopicLength: z.number().int().min(16).max(65535).default(1024),
  maxTopicLevels: z.number().int().min(2).max(100).default(32),
  maxKeepalive: z.number().int().min(1).max(65535).default(1200),
  /** Keep alive 0 (MQTT 3.1.1 section 3.1.2.10): accepted, the connection watched for a dead peer; or CONNACK 2. */
  keepaliveZero: z.enum(['accept', 'refuse']).default('accept'),
  /**
   * ms without a byte from a keep alive 0 client before it is closed; 0 off (listeners/liveness.ts). 10 minutes by
   * default: a client that never sends anything (not even PINGREQ) would otherwise hold a connection slot for ever.
   */
  idleTimeoutMs: z.number().int().min(0).max(86_400_000).refine((v) => v === 0 || v >= 1000, 'must be 0 (off) or at least 1000 ms').default(600_000),
  /** ms a packet or WebSocket message that has begun has to be complete, whatever the keep alive; 0 off (listeners/slow-packet.ts). */
  packetTimeoutMs: z.number().int().min(0).max(600_000).refine((v) => v === 0 || v >= 1000, 'must be 0 (off) or at least 1000 ms').default(15_000),
  /** ms between WebSocket pings to a keep alive 0 client; an unanswered ping closes it at the next; 0 off. */
  wsPingIntervalMs: z.number().int().min(0).max(3_600_000).refine((v) => v === 0 || v >= 1000, 'must be 0 (off) or at least 1000 ms').default(60_000),
  connectTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  /** Seconds SIGTERM spends draining the node before it stops (drain.ts); 0: stop at once. */
  drainSeconds: z.number().int().min(0).max(86_400).default(0),
  /** Admission control (admission/admission.ts); 0 turns a limit off. Defaults from bench/RESULTS.md (see README). */
  maxConnections: z.number().int().min(0).default(ADMISSION_DEFAULTS.maxConnections),
  maxConnRate: z.number().int().min(0).default(ADMISSION_DEFAULTS.maxConnRate),
  maxConnBurst: z.number().int().min(1).default(ADMISSION_DEFAULTS.maxConnBurst),
  maxConnsPerAddress: z.number().int().min(0).default(0),
  maxConnRatePerAddress: z.number().int().min(0).default(0),
  overloadLagMs: z.number().int().min(0).max(60_000).default(ADMISSION_DEFAULTS.overloadLagMs),
  maxRefusalRate: z.number().int().min(0).default(ADMISSION_DEFAULTS.maxRefusalRate),
  /** A port of its own for /metrics, /healthz and /readyz (never shed, apart from the WebSocket listener's queue). */
  metricsPort: port.optional(),
  /** Metrics (metrics/): counted and served (`on`), or nothing counted on the message path (`off`, to measure their cost). */
  metrics: z.enum(['on', 'off'], 'must be on or off').default('on'),
  /** The pages (the scoreboard at `/`, the operations page at `/ops`) on every WebSocket listener (listeners/pages.ts). */
  ui: z.boolean().default(true),
  /** Seconds between `$SYS/<node-id>/stats` publications (metrics/sys.ts); 0 off. */
  sysInterval: z.number().int().min(0).max(86_400).default(10),
  /** Redis URL that makes this node a cluster member; without it the node uses the embedded store. */
  redis: z.string().regex(REDIS_URL, 'must be a redis:// or rediss:// URL: [user:password@]host[:port][/database number]').optional(),
  /**
   * Redis Sentinel: `host:port` of each sentinel watching the cluster's Redis (with `redisMasterName`). Every Redis
   * connection of the node then follows the master the sentinels elect (cluster/redis-target.ts).
   */
  redisSentinels: z.array(z.string().regex(/^[A-Za-z0-9_.:[\]-]+:\d{1,5}$/, 'must be host:port')).min(1).optional(),
  /** The name the sentinels know the master by (`sentinel monitor <name> ...`). */
  redisMasterName: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits, _ . or -').optional(),
  /**
   * Replicas a feed append must reach (Redis WAIT) before the publish is acknowledged and delivered; 0: as soon as the
   * master has it (feeds/replica-wait.ts).
   */
  redisMinReplicas: z.number().int().min(0).max(64).default(0),
  /** Start of every Redis key and channel the cluster uses; letters, digits and _ . : - only (no glob characters). */
  redisPrefix: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1 to 64 letters, digits, _ . : or - (no glob characters)').default('tribune:'),
  /** This node's id in `$SYS/<id>/...` topics and in Redis (default: host name and a random suffix). */
  nodeId: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits, _ . or -')
    .refine((id) => id !== 'all' && id !== 'response', 'all and response are reserved ($admin/all/... addresses every node, $admin/response/... carries answers)').optional(),
  /** How often a node tells the cluster it is alive, in ms; wills of a silent node are published after 3 to 7 of these. */
  heartbeatInterval: z.number().int().min(100).max(3_600_000).default(5000),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Log lines as JSON, or pretty (readable, one line each); unset: pretty when stdout is a terminal (log.ts). */
  logFormat: z.enum(['pretty', 'json'], 'must be pretty or json').optional(),
  /** Who may connect and what each may do; without it the broker runs in local mode (loopback only, no checks). */
  auth: authSchema.optional(),
  /** Listeners with their own auth methods; without it, MQTT on `port` and WebSocket on `wsPort` at `host`. */
  listeners: z.array(listenerSchema).min(1).optional()
}).strict().superRefine(checkRedisTarget)

export type BrokerConfig = z.infer<typeof configSchema>
/** What callers may pass: every option optional. */
export type BrokerOptions = z.input<typeof configSchema>

const int = (raw: string): unknown => (/^-?\d+$/.test(raw.trim()) ? Number(raw) : raw)
const list = (raw: string): unknown => raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
const str = (raw: string): unknown => raw
/** `on`/`true` and `off`/`false` as booleans; anything else is left for the schema to refuse, naming it. */
const onOff = (raw: string): unknown => ({ on: true, true: true, off: false, false: false } as Record<string, boolean>)[raw.trim().toLowerCase()] ?? raw

/** The table of options: one row each, in the order `--help` lists them. */
export const options: OptionSpec[] = [
  { key: 'host', flag: 'host', env: 'TRIBUNE_HOST', parse: str, doc: 'address to listen on (default 127.0.0.1)' },
  { key: 'port', flag: 'port', env: 'TRIBUNE_PORT', parse: int, doc: 'MQTT over TCP port, 0 for any free port (default 1883)' },
  { key: 'wsPort', flag: 'ws-port', env: 'TRIBUNE_WS_PORT', parse: int, doc: 'HTTP port for MQTT over WebSocket and /healthz, 0 for any (default 8080)' },
  { key: 'wsPath', flag: 'ws-path', env: 'TRIBUNE_WS_PATH', parse: str, doc: 'WebSocket path (default /mqtt, subprotocol mqtt)' },
  { key: 'dataDir', flag: 'data-dir', env: 'TRIBUNE_DATA_DIR', parse: str, doc: 'directory of the embedded store, or :memory: for none (default ./data: a data/ folder in the working directory)' },
  { key: 'feeds', flag: 'feeds', env: 'TRIBUNE_FEEDS', parse: list, doc: 'comma-separated topic filters that are feeds (default matches/+/events)' },
  { key: 'feedHistory', flag: 'feed-history', env: 'TRIBUNE_FEED_HISTORY', parse: int, doc: 'messages of history kept per feed (default 1000)' },
  { key: 'maxPacketSize', flag: 'max-packet-size', env: 'TRIBUNE_MAX_PACKET_SIZE', parse: int, doc: 'largest MQTT packet accepted, in bytes (default 262144)' },
  { key: 'maxQueuedBytes', flag: 'max-queued-bytes', env: 'TRIBUNE_MAX_QUEUED_BYTES', parse: int, doc: 'unsent bytes a client may have for over 5 s (or 4 times as many at once) before it is closed as a slow consumer (default 4194304)' },
  { key: 'maxReplaysPerClient', flag: 'max-replays-per-client', env: 'TRIBUNE_MAX_REPLAYS_PER_CLIENT', parse: int, doc: '$replay subscriptions one client may hold; more get SUBACK 0x80 (default 256)' },
  { key: 'maxSubscriptionsPerClient', flag: 'max-subscriptions-per-client', env: 'TRIBUNE_MAX_SUBSCRIPTIONS_PER_CLIENT', parse: int, doc: 'topic filters one client may hold; more get SUBACK 0x80 (default 512)' },
  { key: 'maxTopicLength', flag: 'max-topic-length', env: 'TRIBUNE_MAX_TOPIC_LENGTH', parse: int, doc: 'longest topic name or filter, in bytes (default 1024)' },
  { key: 'maxTopicLevels', flag: 'max-topic-levels', env: 'TRIBUNE_MAX_TOPIC_LEVELS', parse: int, doc: 'most levels in a topic name or filter (default 32)' },
  { key: 'maxKeepalive', flag: 'max-keepalive', env: 'TRIBUNE_MAX_KEEPALIVE', parse: int, doc: 'largest keep alive a client may ask, in seconds; more gets CONNACK 2 (default 1200)' },
  { key: 'keepaliveZero', flag: 'keepalive-zero', env: 'TRIBUNE_KEEPALIVE_ZERO', parse: str, doc: 'accept|refuse a client asking for keep alive 0 (no keep alive); accepted, it is watched by TCP keepalive, WebSocket pings and --idle-timeout; refused, it gets CONNACK 2 (default accept)' },
  { key: 'idleTimeoutMs', flag: 'idle-timeout', env: 'TRIBUNE_IDLE_TIMEOUT', parse: int, doc: 'ms after which a client with keep alive 0 that sent nothing is disconnected; 0 off (default 600000: 10 minutes)' },
  { key: 'packetTimeoutMs', flag: 'packet-timeout', env: 'TRIBUNE_PACKET_TIMEOUT', parse: int, doc: 'ms a packet (or WebSocket message) a client has begun has to be complete, whatever its keep alive; a slower one is disconnected, so an unfinished packet holds memory for no longer; 0 off (default 15000)' },
  { key: 'wsPingIntervalMs', flag: 'ws-ping-interval', env: 'TRIBUNE_WS_PING_INTERVAL', parse: int, doc: 'ms between WebSocket pings to a client with keep alive 0; one unanswered by the next disconnects it; 0 off (default 60000)' },
  { key: 'connectTimeoutMs', flag: 'connect-timeout', env: 'TRIBUNE_CONNECT_TIMEOUT', parse: int, doc: 'ms a new connection has to send CONNECT (default 10000)' },
  { key: 'drainSeconds', flag: 'drain-seconds', env: 'TRIBUNE_DRAIN_SECONDS', parse: int, doc: 'seconds SIGTERM drains the node before it stops: new connections refused, /readyz 503 at once, clients disconnected at an even rate so they move to other nodes; a second SIGTERM (or SIGINT) stops at once; 0 stops at once (default 0)' },
  { key: 'maxConnections', flag: 'max-connections', env: 'TRIBUNE_MAX_CONNECTIONS', parse: int, doc: `connections the node holds at most (TCP, TLS, WebSocket); more are refused; 0 for no limit (default ${ADMISSION_DEFAULTS.maxConnections}, lowered to the open-file limit less the files the node has open and 256 more)` },
  { key: 'maxConnRate', flag: 'max-conn-rate', env: 'TRIBUNE_MAX_CONN_RATE', parse: int, doc: `new connections per second the node takes, all listeners together; 0 for no limit (default ${ADMISSION_DEFAULTS.maxConnRate})` },
  { key: 'maxConnBurst', flag: 'max-conn-burst', env: 'TRIBUNE_MAX_CONN_BURST', parse: int, doc: `new connections taken at once above the rate (token bucket size, at least 1; default ${ADMISSION_DEFAULTS.maxConnBurst})` },
  { key: 'maxConnsPerAddress', flag: 'max-conns-per-address', env: 'TRIBUNE_MAX_CONNS_PER_ADDRESS', parse: int, doc: 'connections one IP address may hold; 0 for no limit (default 0: behind a load balancer or NAT many viewers share one)' },
  { key: 'maxConnRatePerAddress', flag: 'max-conn-rate-per-address', env: 'TRIBUNE_MAX_CONN_RATE_PER_ADDRESS', parse: int, doc: 'new connections per second from one IP address; 0 for no limit (default 0)' },
  { key: 'overloadLagMs', flag: 'overload-lag-ms', env: 'TRIBUNE_OVERLOAD_LAG_MS', parse: int, doc: `event-loop lag, ms, beyond which the node refuses new connections until it recovers; 0 off (default ${ADMISSION_DEFAULTS.overloadLagMs})` },
  { key: 'maxRefusalRate', flag: 'max-refusal-rate', env: 'TRIBUNE_MAX_REFUSAL_RATE', parse: int, doc: `refusals (CONNACK 3, HTTP 503) the node answers a second, a tenth of them at once; beyond, new connections are closed at accept without an answer for 100 ms at a time (cheaper); 0 for no limit (default ${ADMISSION_DEFAULTS.maxRefusalRate})` },
  { key: 'metricsPort', flag: 'metrics-port', env: 'TRIBUNE_METRICS_PORT', parse: int, doc: 'HTTP port of its own for /metrics, /healthz and /readyz, on --host, answered even while a storm fills the WebSocket listener or new connections are shed; 0 for any (default: none, they are on the WebSocket port)' },
  { key: 'metrics', flag: 'metrics', env: 'TRIBUNE_METRICS', parse: str, doc: 'on|off: count and serve metrics (GET /metrics, $SYS statistics); off counts nothing on the message path, to measure what metrics cost (default on)' },
  { key: 'ui', flag: 'no-ui', env: 'TRIBUNE_UI', boolean: true, parse: onOff, doc: 'do not serve the pages (the scoreboard at /, the operations page at /ops) on the WebSocket listeners; TRIBUNE_UI=off does the same (default: served)' },
  { key: 'sysInterval', flag: 'sys-interval', env: 'TRIBUNE_SYS_INTERVAL', parse: int, doc: 'seconds between $SYS/<node-id>/stats publications (and the values that changed); 0 off (default 10)' },
  { key: 'redis', flag: 'redis', env: 'TRIBUNE_REDIS', parse: str, doc: 'redis://host:port URL: join the cluster linked by this Redis (default: none, embedded store)' },
  { key: 'redisSentinels', flag: 'redis-sentinels', env: 'TRIBUNE_REDIS_SENTINELS', parse: list, doc: 'comma-separated host:port of Redis sentinels (with --redis-master-name): every Redis connection follows the master they elect, so a dead master is replaced within seconds; --redis may then give only redis://[user:password@]<master name>[/database] (default: none)' },
  { key: 'redisMasterName', flag: 'redis-master-name', env: 'TRIBUNE_REDIS_MASTER_NAME', parse: str, doc: 'the name the sentinels monitor the master by (sentinel monitor <name> ...; with --redis-sentinels)' },
  { key: 'redisMinReplicas', flag: 'redis-min-replicas', env: 'TRIBUNE_REDIS_MIN_REPLICAS', parse: int, doc: 'Redis replicas a feed message must reach (WAIT) before it is acknowledged (QoS 1 PUBACK) and delivered; while fewer answer, publishes wait; 0: once the master has it (default 0)' },
  { key: 'redisPrefix', flag: 'redis-prefix', env: 'TRIBUNE_REDIS_PREFIX', parse: str, doc: 'start of every Redis key and channel of the cluster (default tribune:)' },
  { key: 'nodeId', flag: 'node-id', env: 'TRIBUNE_NODE_ID', parse: str, doc: 'this node\'s id in $SYS and $admin topics and Redis (all and response are reserved); a node refuses an id a live node of its cluster holds (default: host name and a random suffix)' },
  { key: 'heartbeatInterval', flag: 'heartbeat-interval', env: 'TRIBUNE_HEARTBEAT_INTERVAL', parse: int, doc: 'ms between a cluster node\'s heartbeats; a dead node\'s wills follow within 7 of them (default 5000)' },
  { key: 'logLevel', flag: 'log-level', env: 'TRIBUNE_LOG_LEVEL', parse: str, doc: 'fatal|error|warn|info|debug|trace|silent (default info)' },
  { key: 'logFormat', flag: 'log-format', env: 'TRIBUNE_LOG_FORMAT', parse: str, doc: 'pretty|json: one readable line per event, or JSON lines (default: pretty when stdout is a terminal, else json)' }
]

/** Error for a refused option; `message` names the option, where it came from, and the bad value. */
export class ConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

/** The value at `path` in `input` (undefined when absent or not reachable). */
function valueAt (input: unknown, path: readonly PropertyKey[]): unknown {
  let at = input
  for (const p of path) {
    if (at === null || typeof at !== 'object') return undefined
    at = (at as Record<PropertyKey, unknown>)[p]
  }
  return path.length === 0 ? undefined : at
}

/** What a zod issue asks for, in the words of this project's messages ("must be ..."), not zod's. */
function describeIssue (issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys': return `unknown option(s) ${issue.keys.join(', ')}`
    case 'invalid_type': return issue.expected === 'number' || issue.expected === 'int' ? 'must be a whole number' : issue.expected === 'boolean' ? 'must be on or off (true or false in a config file)' : `must be a ${issue.expected}`
    case 'too_small': return issue.origin === 'array' ? `must hold at least ${String(issue.minimum)}` : issue.origin === 'string' ? `must be at least ${String(issue.minimum)} characters` : `must be >= ${String(issue.minimum)}`
    case 'too_big': return issue.origin === 'array' ? `must hold at most ${String(issue.maximum)}` : issue.origin === 'string' ? `must be at most ${String(issue.maximum)} characters` : `must be <= ${String(issue.maximum)}`
    case 'invalid_value': return issue.values.length > 2 ? `must be one of ${issue.values.map((v) => String(v)).join(', ')}` : `must be ${issue.values.map((v) => String(v)).join(' or ')}`
    default: return issue.message
  }
}

/** A bad value as an error message shows it: a secret's only by its length, a URL's password as `***`. */
function shownValue (path: readonly PropertyKey[], value: unknown): string {
  const secret = path.some((p) => typeof p === 'string' && /password|secret|token|sha256/i.test(p))
  if (secret && typeof value === 'string') return `a value of ${value.length} characters`
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value) // JSON shows Infinity as null
  return JSON.stringify(typeof value === 'string' ? value.replace(/\/\/[^@/\s]*@/, '//***@') : value)
}

/**
 * Validates options given in code (tests, embedding) and fills in defaults.
 * @throws ConfigError naming the first bad option, e.g. `port: must be <= 65535 (got 70000)`.
 */
export function resolveConfig (input: BrokerOptions, origin: Partial<Record<string, string>> = {}): Readonly<BrokerConfig> {
  const result = configSchema.safeParse(input)
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '')
      const where = origin[key] ?? (key === '' ? (origin[''] ?? 'config') : key)
      const rest = issue.path.slice(1).map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')
      const value = valueAt(input, issue.path)
      return `${where}${rest}: ${describeIssue(issue)}${value !== undefined && issue.code !== 'unrecognized_keys' ? ` (got ${shownValue(issue.path, value)})` : ''}`
    })
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`)
  }
  return Object.freeze(result.data)
}

/**
 * Reads the configuration for `tribune broker` from flags, environment and an optional JSON file.
 * @param flags parsed flag values by flag name (e.g. `{ 'ws-port': '9000', config: 'tribune.json', 'no-ui': true }`)
 * @param env environment variables (normally `process.env`)
 * @throws ConfigError naming the option, its source and the bad value; or the file and what is wrong with it.
 */
export function loadConfig (flags: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): Readonly<BrokerConfig> {
  const input: Record<string, unknown> = {}
  const origin: Record<string, string> = {}
  const file = typeof flags.config === 'string' ? flags.config : env.TRIBUNE_CONFIG
  if (file !== undefined) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      throw new ConfigError(`config file ${file}: cannot read it (${(err as Error).message})`)
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new ConfigError(`config file ${file}: not valid JSON (${(err as Error).message})`)
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConfigError(`config file ${file}: must hold a JSON object of options`)
    }
    origin[''] = `config file ${file}`
    resolveFilePaths(parsed as Record<string, unknown>, dirname(resolve(file)))
    for (const [key, value] of Object.entries(parsed)) {
      input[key] = value
      origin[key] = `${file}: ${key}`
    }
  }
  for (const spec of options) {
    const fromEnv = env[spec.env]
    if (fromEnv !== undefined && fromEnv !== '') {
      input[spec.key] = spec.parse(fromEnv)
      origin[spec.key] = spec.env
    }
    const fromFlag = flags[spec.flag]
    if (fromFlag !== undefined && fromFlag !== false) {
      input[spec.key] = spec.boolean === true ? false : spec.parse(String(fromFlag))
      origin[spec.key] = `--${spec.flag}`
    }
  }
  const config = resolveConfig(input as BrokerOptions, origin)
  if (file !== undefined) refuseUnusedByListeners(config, origin, file)
  return config
}

/**
 * With a `listeners` section, `port` and `wsPort` open nothing (each listener has its own port), and `host` and
 * `wsPath` only fill in listeners that set none. One of them given (flag, variable or file) where it would change
 * nothing is refused rather than ignored, so that nobody believes a port open or moved that is not.
 * @throws ConfigError naming the option, where it came from, and what to do instead
 */
function refuseUnusedByListeners (config: BrokerConfig, origin: Record<string, string>, file: string): void {
  const listeners = config.listeners
  if (listeners === undefined) return
  const unused = new Map<keyof BrokerConfig, string>([['port', 'each listener has its own port'], ['wsPort', 'each listener has its own port']])
  if (listeners.every((l) => l.host !== undefined)) unused.set('host', 'every listener sets its own host')
  if (!listeners.some((l) => (l.protocol === 'ws' || l.protocol === 'wss') && l.path === undefined)) unused.set('wsPath', 'no WebSocket listener goes without its own path')
  const lines = [...unused].filter(([key]) => origin[key] !== undefined).map(([key, why]) =>
    `${origin[key]}: not used when the config file sets "listeners" (${why}; got ${JSON.stringify(config[key])}): change the listeners in ${file}, or leave it out`)
  if (lines.length > 0) throw new ConfigError(`invalid configuration: ${lines.join('; ')}`)
}

/**
 * Makes the file paths of a config file (TLS files, JWT key files, a relative dataDir) relative to the file's own
 * folder, so a config works from any working directory. Values that are not strings are left for the schema to refuse.
 */
function resolveFilePaths (cfg: Record<string, unknown>, base: string): void {
  const fix = (obj: unknown, key: string): void => {
    if (obj === null || typeof obj !== 'object') return
    const o = obj as Record<string, unknown>
    if (typeof o[key] === 'string' && o[key] !== ':memory:' && !isAbsolute(o[key])) o[key] = resolve(base, o[key])
  }
  fix(cfg, 'dataDir')
  if (Array.isArray(cfg.listeners)) {
    for (const l of cfg.listeners) for (const k of ['cert', 'key', 'ca']) fix((l as { tls?: unknown }).tls, k)
  }
  const jwt = (cfg.auth as { jwt?: Record<string, unknown> } | undefined)?.jwt
  if (jwt !== undefined && jwt !== null) {
    fix(jwt, 'jwksFile')
    if (Array.isArray(jwt.publicKeyFiles)) jwt.publicKeyFiles = jwt.publicKeyFiles.map((f) => (typeof f === 'string' && !isAbsolute(f) ? resolve(base, f) : f))
  }
}

/** The `--help` text: every option with its flag, variable and default. */
export function helpText (): string {
  const fw = Math.max(...options.map((o) => o.flag.length))
  const ew = Math.max(...options.map((o) => o.env.length))
  const rows = options.map((o) => `  --${o.flag.padEnd(fw)} ${o.env.padEnd(ew)} ${o.doc}`)
  return [
    'Usage: tribune broker [options]',
    '',
    'Options (flag, environment variable, meaning); flags beat variables, which beat the config file:',
    ...rows,
    `  --${'config'.padEnd(fw)} ${'TRIBUNE_CONFIG'.padEnd(ew)} JSON file of options, keys as in camelCase (e.g. {"wsPort": 9000}),`,
    `  ${''.padEnd(fw + ew + 4)} plus "auth" and "listeners" (see README, Auth; examples/secure.json). With "listeners",`,
    `  ${''.padEnd(fw + ew + 4)} --port and --ws-port are refused (each listener has its own port); --host and --ws-path`,
    `  ${''.padEnd(fw + ew + 4)} fill in the listeners that set none, and are refused when none would use them`,
    `  --${'help'.padEnd(fw)} ${''.padEnd(ew)} show this text`,
    '',
    'Signals: SIGTERM stops cleanly, after draining for --drain-seconds when set (a second SIGTERM stops at once); SIGINT',
    'stops cleanly at once; SIGHUP re-reads the configuration and applies its auth section.'
  ].join('\n')
}
