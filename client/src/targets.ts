// Which broker URL to try next: a list of URLs (several nodes, or a load balancer and fallbacks) in an order shuffled
// once per client, so that the viewers of a node that dies spread over the others instead of all picking the same
// next one; the client stays on a URL while it works and moves to the next one in the order on any failure. Pure
// logic (the random source is injected), standard APIs only, so it runs in Node and in the browser.
// Several regions (independent clusters, each with its own Redis) are several such lists: a client stays in a region
// while it works there, and moves to the next region only when its own is unreachable (RegionRotation).

/** One broker URL or a list of them (the nodes of one cluster), as given to `Viewer.connect` or `Publisher.connect`. */
export type BrokerUrls = string | readonly string[]

/**
 * Several regions, each an independent cluster given by its {@link BrokerUrls} (its nodes, or its load balancer and
 * fallbacks); for a viewer, its own region first.
 */
export interface BrokerRegions {
  readonly regions: readonly BrokerUrls[]
}

/** What `Viewer.connect` and `Publisher.connect` take: one region's URLs, or `{regions: [...]}`. */
export type BrokerTarget = BrokerUrls | BrokerRegions

/** True if `target` is the `{regions: [...]}` form. */
export function isRegions (target: BrokerTarget): target is BrokerRegions {
  return typeof target === 'object' && target !== null && !Array.isArray(target) && 'regions' in target
}

/**
 * Normalises a {@link BrokerTarget} to one URL list per region (one region for plain {@link BrokerUrls}).
 * @throws RangeError if there is no region, a region has no URL, an entry is not a non-empty string, or one URL is
 *   listed in two regions (a node belongs to one cluster).
 */
export function regionList (target: BrokerTarget): string[][] {
  if (!isRegions(target)) return [urlList(target)]
  if (!Array.isArray(target.regions) || target.regions.length === 0) throw new RangeError('no region given: regions must be a non-empty list of URL lists')
  const seen = new Map<string, number>()
  return target.regions.map((urls, index) => {
    let list: string[]
    try {
      list = urlList(urls)
    } catch (err) {
      throw new RangeError(`region ${index}: ${(err as Error).message}`)
    }
    for (const url of list) {
      const other = seen.get(url)
      if (other !== undefined && other !== index) throw new RangeError(`${withoutPassword(url)} is listed in region ${other} and region ${index}: a node belongs to one region`)
      seen.set(url, index)
    }
    return list
  })
}

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
 * The regions of a client and the URL to try in each: one {@link TargetRotation} per region (each shuffled once), and
 * the region in use. {@link RegionRotation.next} moves within the region (a node failed), {@link
 * RegionRotation.nextRegion} to the next region, round and round (the region is unreachable); a region left and
 * come back to goes on from the URL it was at.
 */
export class RegionRotation {
  readonly #regions: readonly TargetRotation[]
  #index = 0

  /**
   * @param target one region's URLs, or `{regions}` (see {@link regionList}).
   * @param random random source in [0, 1) for each region's shuffle; default Math.random.
   * @throws RangeError as {@link regionList}.
   */
  constructor (target: BrokerTarget, random: () => number = Math.random) {
    this.#regions = Object.freeze(regionList(target).map((urls) => new TargetRotation(urls, random)))
  }

  /** How many regions. */
  get count (): number {
    return this.#regions.length
  }

  /** The index of the region in use (0: the first given). */
  get region (): number {
    return this.#index
  }

  /** The URL in use, or to try now, in the region in use. */
  get current (): string {
    return this.#regions[this.#index].current
  }

  /** The URLs of the region in use, in the order they are tried. */
  get order (): readonly string[] {
    return this.#regions[this.#index].order
  }

  /** Every region's URLs, each in the order they are tried. */
  get regions (): ReadonlyArray<readonly string[]> {
    return this.#regions.map((r) => r.order)
  }

  /** Moves to the next URL of the region in use and returns it. */
  next (): string {
    return this.#regions[this.#index].next()
  }

  /** Moves to the next region (back to the first after the last) and returns its index. */
  nextRegion (): number {
    this.#index = (this.#index + 1) % this.#regions.length
    return this.#index
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
