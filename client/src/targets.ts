// Which broker URL to try next: a list of URLs (several nodes, or a load balancer and fallbacks) in an order shuffled
// once per client, so that the viewers of a node that dies spread over the others instead of all picking the same
// next one; the client stays on a URL while it works and moves to the next one in the order on any failure. Pure
// logic (the random source is injected), standard APIs only, so it runs in Node and in the browser.

/** One broker URL or a list of them, as given to `Viewer.connect` or `Publisher.connect`. */
export type BrokerUrls = string | readonly string[]

/**
 * Normalises {@link BrokerUrls} to a new array.
 * @throws RangeError if the list is empty or an entry is not a non-empty string.
 */
export function urlList (urls: BrokerUrls): string[] {
  const list = typeof urls === 'string' ? [urls] : [...urls]
  if (list.length === 0) throw new RangeError('no broker URL given')
  for (const url of list) {
    if (typeof url !== 'string' || url.length === 0) throw new RangeError(`invalid broker URL ${JSON.stringify(url)}`)
  }
  return list
}

/**
 * A copy of `items` in random order (Fisher-Yates): every order is equally likely when `random` is uniform.
 * @param random a function returning numbers in [0, 1); inject a seeded one in tests.
 */
export function shuffled<T> (items: readonly T[], random: () => number = Math.random): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)))
    const swap = out[i]
    out[i] = out[j]
    out[j] = swap
  }
  return out
}

/**
 * The order in which a client tries its broker URLs: shuffled once at creation, then followed round and round.
 * `current` is the URL in use (or being tried); {@link TargetRotation.next} moves to the next one after a failure
 * or a lost connection. With one URL, `current` is always that URL.
 */
export class TargetRotation {
  readonly #order: readonly string[]
  #index = 0

  /**
   * @param urls the broker URLs (see {@link urlList}); the same URL may be listed twice to try it more often.
   * @param random random source in [0, 1) for the shuffle; default Math.random.
   * @throws RangeError if the list is empty or holds an empty entry.
   */
  constructor (urls: BrokerUrls, random: () => number = Math.random) {
    this.#order = Object.freeze(shuffled(urlList(urls), random))
  }

  /** The URLs in the order they are tried (the shuffled list). */
  get order (): readonly string[] {
    return this.#order
  }

  /** The URL in use, or to try now. */
  get current (): string {
    return this.#order[this.#index]
  }

  /** Moves to the next URL in the order (back to the first after the last) and returns it. */
  next (): string {
    this.#index = (this.#index + 1) % this.#order.length
    return this.current
  }
}

/**
 * `url` with its password, if any, replaced by `***`, for status lines, logs and error messages; also for strings
 * that do not parse as a URL (`scheme://user:password@...`).
 */
export function withoutPassword (url: string): string {
  try {
    const u = new URL(url)
    if (u.password === '') return url
    u.password = '***'
    return u.toString()
  } catch {
    return url.replace(/^([^:/?#]+:\/\/[^:/?#@]*):[^@/?#]*@/, '$1:***@') // scheme://user:password@...
  }
}
