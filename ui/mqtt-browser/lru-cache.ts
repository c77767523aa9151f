// `LRUCache` as MQTT.js uses it (MQTT 5 topic aliases only: get, set, size, with a `max`), on a Map: in place of the
// 49 KB lru-cache package, which a viewer on MQTT 3.1.1 never calls.

/** A least-recently-used map of at most `max` entries. */
export class LRUCache<K, V> {
  readonly max: number
  readonly #map = new Map<K, V>()

  constructor ({ max }: { max: number }) {
    this.max = max
  }

  get size (): number {
    return this.#map.size
  }

  get (key: K): V | undefined {
    if (!this.#map.has(key)) return undefined
    const value = this.#map.get(key) as V
    this.#map.delete(key)
    this.#map.set(key, value)
    return value
  }

  set (key: K, value: V): this {
    this.#map.delete(key)
    this.#map.set(key, value)
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as K)
    return this
  }

  has (key: K): boolean {
    return this.#map.has(key)
  }

  delete (key: K): boolean {
    return this.#map.delete(key)
  }

  clear (): void {
    this.#map.clear()
  }
}
