// The operations page's side of the broker's `$admin` topics (README "Admin over MQTT"): a request goes to
// `$admin/<node-id | all>/<command>` as {"requestId", ...fields}; each addressed node answers on
// `$admin/response/<client id>/<requestId>` with {"node", "ok", "result", "nodes"} (nodes: the live nodes it knows).
import type { StateWatch, Viewer } from '../../../client/src/index.js'
import type { AdminAnswer } from '../../../client/src/admin/answer.js'

export type { AdminAnswer }

/** A client id as one topic level, as the broker writes it in answer topics (RFC 3986 percent-encoding). */
export function encodeClientId (clientId: string): string {
  return encodeURIComponent(clientId).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/**
 * Sends requests over a viewer's connection and hands every answer to `onAnswer`. The viewer's client id changes
 * with each connection, so {@link AdminChannel.connected} must be called on each `connect` (it subscribes to that
 * connection's answers topic).
 */
export class AdminChannel {
  readonly #viewer: Viewer
  readonly #onAnswer: (answer: AdminAnswer) => void
  #watch: StateWatch | null = null
  #prefix = ''
  #counter = 0

  constructor (viewer: Viewer, onAnswer: (answer: AdminAnswer) => void) {
    this.#viewer = viewer
    this.#onAnswer = onAnswer
  }

  /** The viewer (re)connected: listens to the answers for its new client id. */
  connected (): void {
    void this.#watch?.close()
    this.#prefix = `$admin/response/${encodeClientId(this.#viewer.mqttClient.options.clientId ?? '')}`
    this.#watch = this.#viewer.watchState(`${this.#prefix}/#`, ({ topic, payload }) => {
      if (!topic.startsWith(`${this.#prefix}/`) || payload === null || typeof payload !== 'object') return
      this.#onAnswer(payload as AdminAnswer)
    })
  }

  /** Asks `target` (a node id, or `all`) to run `command`; answers come to `onAnswer`. Dropped while offline. */
  ask (command: string, target = 'all', fields: Record<string, unknown> = {}): void {
    if (!this.#viewer.connected) return
    const requestId = `ops-${Date.now().toString(36)}-${++this.#counter}`
    this.#viewer.mqttClient.publish(`$admin/${target}/${command}`, JSON.stringify({ requestId, ...fields }), { qos: 1 }, () => {})
  }
}
