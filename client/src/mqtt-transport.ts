// FeedTransport over MQTT.js: what FeedSubscription needs (subscribe, unsubscribe, messages, connection changes) on
// the viewer's current MQTT.js client. Imports only standard APIs (and MQTT.js's types).

import type { MqttClient } from 'mqtt'
import { SubackFailureError, type FeedTransport, type QoS } from './feed-subscription.js'

/**
 * {@link FeedTransport} over the MQTT.js client in use (read through `client()` at each call, since a viewer with
 * several broker URLs has one client per URL); reference-counts filters shared by several subscriptions.
 */
export class MqttFeedTransport implements FeedTransport {
  readonly #client: () => MqttClient
  readonly #isConnected: () => boolean
  readonly #counts = new Map<string, number>()
  readonly #messageListeners = new Set<(topic: string, payload: Uint8Array | string) => void>()
  readonly #connectionListeners = new Set<(connected: boolean) => void>()
  /** Set when the viewer closes: no more packets are sent. */
  closing = false

  /**
   * @param client returns the MQTT.js client in use.
   * @param isConnected true while that client is connected (CONNACK 0 received, connection not lost).
   */
  constructor (client: () => MqttClient, isConnected: () => boolean) {
    this.#client = client
    this.#isConnected = isConnected
  }

  get connected (): boolean {
    return !this.closing && this.#isConnected()
  }

  async subscribe (filter: string, qos: QoS): Promise<void> {
    this.#counts.set(filter, (this.#counts.get(filter) ?? 0) + 1)
    if (!this.connected) throw new Error('not connected')
    const granted = await this.#client().subscribeAsync(filter, { qos })
    if (granted.some((g) => (g.qos & 0x80) !== 0)) throw new SubackFailureError()
  }

  async unsubscribe (filter: string): Promise<void> {
    const count = (this.#counts.get(filter) ?? 1) - 1
    if (count > 0) {
      this.#counts.set(filter, count)
      return
    }
    this.#counts.delete(filter)
    if (!this.connected) return
    await this.#client().unsubscribeAsync(filter)
  }

  onMessage (listener: (topic: string, payload: Uint8Array | string) => void): () => void {
    this.#messageListeners.add(listener)
    return () => { this.#messageListeners.delete(listener) }
  }

  onConnectionChange (listener: (connected: boolean) => void): () => void {
    this.#connectionListeners.add(listener)
    return () => { this.#connectionListeners.delete(listener) }
  }

  /** Hands an incoming PUBLISH to every message listener. */
  dispatchMessage (topic: string, payload: Uint8Array): void {
    for (const listener of [...this.#messageListeners]) listener(topic, payload)
  }

  /** Tells every connection listener that the connection went up (true) or down (false). */
  dispatchConnection (connected: boolean): void {
    for (const listener of [...this.#connectionListeners]) listener(connected)
  }
}
