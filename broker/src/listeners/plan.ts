/**
 * Which listeners to open: the `listeners` section when given, else MQTT over TCP on `port` and MQTT over
 * WebSocket on `wsPort`, both at `host`. Each gets a name (`<protocol>:<port>`) that logs and auth refer to.
 */
import type { BrokerConfig } from '../config.js'
import type { Method } from '../auth/schema.js'
import type { TlsFiles } from './tcp.js'

export interface PlannedListener {
  name: string
  protocol: 'mqtt' | 'ws' | 'mqtts' | 'wss'
  host: string
  port: number
  path: string
  /** Methods accepted here; null: every method the auth section configures. */
  methods: readonly Method[] | null
  tls?: TlsFiles
}

/** The listeners of a configuration, in order. */
export function planListeners (config: BrokerConfig): PlannedListener[] {
  if (config.listeners === undefined) {
    return [
      { name: `mqtt:${config.port}`, protocol: 'mqtt', host: config.host, port: config.port, path: config.wsPath, methods: null },
      { name: `ws:${config.wsPort}`, protocol: 'ws', host: config.host, port: config.wsPort, path: config.wsPath, methods: null }
    ]
  }
  return config.listeners.map((l, i) => ({
    name: `${l.protocol}:${l.port === 0 ? `#${i}` : l.port}`,
    protocol: l.protocol,
    host: l.host ?? config.host,
    port: l.port,
    path: l.path ?? config.wsPath,
    methods: l.auth ?? null,
    tls: l.tls
  }))
}

/** True for loopback addresses and names (127.0.0.0/8, ::1, localhost). */
export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}
