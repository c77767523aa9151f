// A minimal typed event emitter that runs in Node and in the browser (no `node:events` import).
// The event map names each event and the tuple of arguments its listeners receive, in the style of
// @types/node's `EventEmitter<T>`: `{ state: [change: StateChange]; error: [error: Error] }`.

/** An event map: event name -> tuple of listener arguments (an interface or a type literal). */
export type EventMap<E> = { [K in keyof E]: unknown[] }

/** The listener type for event `K` of map `E`. */
export type Listener<E extends EventMap<E>, K extends keyof E> = (...args: E[K]) => void

/**
 * A small typed event emitter (subset of Node's EventEmitter API: on / once / off / emit / listenerCount).
 *
 * Differences from Node's EventEmitter, on purpose: an `error` event with no listener is dropped rather than
 * thrown (a viewer must not crash a page or a process because nobody listens), and a listener that throws
 * does not stop the other listeners: the first error is rethrown after all listeners ran.
 */
export class TypedEmitter<E extends EventMap<E>> {
  readonly #listeners = new Map<keyof E, Array<Listener<E, keyof E>>>()

  /**
   * Adds `listener` for `event` (called on every emit, in registration order).
   * @returns this, for chaining.
   */
  on<K extends keyof E> (event: K, listener: Listener<E, K>): this {
    const list = this.#listeners.get(event) ?? []
    list.push(listener as Listener<E, keyof E>)
    this.#listeners.set(event, list)
    return this
  }

  /**
   * Adds `listener` for the next `event` only.
   * @returns this, for chaining.
   */
  once<K extends keyof E> (event: K, listener: Listener<E, K>): this {
    const wrapper = (...args: E[K]): void => {
      this.off(event, wrapper)
      listener(...args)
    }
    return this.on(event, wrapper)
  }

  /**
   * Removes one registration of `listener` for `event` (no-op if absent).
   * @returns this, for chaining.
   */
  off<K extends keyof E> (event: K, listener: Listener<E, K>): this {
    const list = this.#listeners.get(event)
    if (list === undefined) return this
    const i = list.indexOf(listener as Listener<E, keyof E>)
    if (i >= 0) list.splice(i, 1)
    if (list.length === 0) this.#listeners.delete(event)
    return this
  }

  /** Removes every listener of `event`, or of all events when `event` is omitted. */
  removeAllListeners (event?: keyof E): this {
    if (event === undefined) this.#listeners.clear()
    else this.#listeners.delete(event)
    return this
  }

  /** Number of listeners currently registered for `event`. */
  listenerCount (event: keyof E): number {
    return this.#listeners.get(event)?.length ?? 0
  }

  /**
   * Calls every listener of `event` synchronously with `args`.
   * @returns true if there was at least one listener.
   * @throws the first error thrown by a listener, after all listeners ran.
   */
  emit<K extends keyof E> (event: K, ...args: E[K]): boolean {
    const list = this.#listeners.get(event)
    if (list === undefined || list.length === 0) return false
    let failure: { error: unknown } | undefined
    for (const listener of [...list]) {
      try {
        listener(...args)
      } catch (error) {
        failure ??= { error }
      }
    }
    if (failure !== undefined) throw failure.error
    return true
  }
}
