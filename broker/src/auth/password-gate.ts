/**
 * A bound on the password checks of a node. Each check is a scrypt hash (auth/secrets.ts: 16 MiB, about 50 ms of one
 * thread) run on libuv's thread pool (UV_THREADPOOL_SIZE, 4 by default), which the embedded store's LevelDB, file
 * reads and other crypto share: a storm of CONNECTs with any user name and password would otherwise queue minutes of
 * hashing in front of everything else on the pool (a valid login and a feed publish each waited 24 s behind 1,000 of
 * them). So at most {@link PasswordGate.maxInFlight} checks run at once (well under the pool's size, so the pool
 * always has threads for the rest), at most {@link PasswordGate.maxQueued} wait, and beyond that a check is refused
 * at once (the caller answers CONNACK 3, server unavailable). A waiting check whose client has gone meanwhile is
 * skipped: its hash is never computed. Unknown user names go through the same gate (their dummy hash counts), so a
 * refusal or a wait says nothing about which names exist.
 */

/** What {@link PasswordGate.run} gives when it did not run the check. */
export type GateRefusal = 'busy' | 'gone'

interface Waiting {
  job: () => Promise<unknown>
  gone: () => boolean
  resolve: (value: unknown) => void
  reject: (err: unknown) => void
}

/** Threads of libuv's pool (Node's default 4; UV_THREADPOOL_SIZE sets it, up to 1024). */
export function threadPoolSize (env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.UV_THREADPOOL_SIZE)
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4
}

export class PasswordGate {
  readonly maxInFlight: number
  readonly maxQueued: number
  #inFlight = 0
  readonly #queue: Waiting[] = []

  /**
   * @param maxInFlight checks run at once (default: half the thread pool, at least 1)
   * @param maxQueued checks waiting for a slot (default: 8 per slot, about 0.2 s of waiting)
   */
  constructor (maxInFlight = Math.max(1, Math.floor(threadPoolSize() / 2)), maxQueued = 8 * maxInFlight) {
    this.maxInFlight = maxInFlight
    this.maxQueued = maxQueued
  }

  /** Checks running now, and waiting. */
  get load (): { inFlight: number, queued: number } {
    return { inFlight: this.#inFlight, queued: this.#queue.length }
  }

  /**
   * Runs `job` (a password check) when a slot is free.
   * @param gone true once the check is no longer wanted (its client's connection closed): then it is not run
   * @returns the job's result; `'busy'` at once when every slot is taken and the queue is full; `'gone'` when `gone()`
   *   was true before the job started
   */
  async run<T> (job: () => Promise<T>, gone: () => boolean): Promise<T | GateRefusal> {
    if (gone()) return 'gone'
    if (this.#inFlight < this.maxInFlight) return await this.#start(job)
    if (this.#queue.length >= this.maxQueued) return 'busy'
    return await new Promise<T | GateRefusal>((resolve, reject) => {
      this.#queue.push({ job, gone, resolve: resolve as (value: unknown) => void, reject })
    })
  }

  async #start<T> (job: () => Promise<T>): Promise<T> {
    this.#inFlight++
    try {
      return await job()
    } finally {
      this.#inFlight--
      this.#next()
    }
  }

  /** Starts the first waiting check still wanted; those whose client has gone are answered `'gone'`. */
  #next (): void {
    while (this.#inFlight < this.maxInFlight && this.#queue.length > 0) {
      const w = this.#queue.shift() as Waiting
      if (w.gone()) {
        w.resolve('gone')
        continue
      }
      this.#start(w.job).then(w.resolve, w.reject)
    }
  }
}
