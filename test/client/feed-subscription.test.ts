import { describe, expect, it } from 'vitest'
import type { FeedEnvelope, ResetNotice } from '../../client/src/envelope.js'
import {
  canTransition, FEED_TRANSITIONS, FeedSubscription, SubackFailureError, type FeedState, type FeedSubscriptionOptions, type FeedStateChange, type FeedTransport, type QoS
} from '../../client/src/feed-subscription.js'

const FEED = 'matches/2022-12-18-argentina-france/events'
const ALL = `$replay/all/${FEED}`
const after = (seq: number, epoch = 'e1'): string => `$replay/after-${seq}@${epoch}/${FEED}`

interface Deferred { resolve: () => void, reject: (err: Error) => void }

/** A fake transport: records calls, acks at once (or on demand), delivers messages synchronously. */
class FakeTransport implements FeedTransport {
  connected: boolean
  autoAck = true
  calls: string[] = []
  readonly pending: Array<{ op: string, filter: string, deferred: Deferred }> = []
  refuse = new Set<string>()
  /** SUBSCRIBEs that fail without a refusal (lost before their SUBACK). */
  fail = new Set<string>()
  readonly #messageListeners = new Set<(topic: string, payload: Uint8Array | string) => void>()
  readonly #connectionListeners = new Set<(up: boolean) => void>()

  constructor (connected = true) {
    this.connected = connected
  }

  async subscribe (filter: string, qos: QoS): Promise<void> {
    this.calls.push(`sub ${filter} q${qos}`)
    await this.#ack('sub', filter)
  }

  async unsubscribe (filter: string): Promise<void> {
    this.calls.push(`unsub ${filter}`)
    await this.#ack('unsub', filter)
  }

  async #ack (op: string, filter: string): Promise<void> {
    if (op === 'sub' && this.refuse.has(filter)) throw new SubackFailureError('Subscribe error: Unspecified error')
    if (op === 'sub' && this.fail.has(filter)) throw new Error('Connection closed')
    if (this.autoAck) return
    await new Promise<void>((resolve, reject) => { this.pending.push({ op, filter, deferred: { resolve, reject } }) })
  }

  /** Acks the oldest pending operation. */
  ackNext (): void {
    const next = this.pending.shift()
    if (next === undefined) throw new Error('nothing pending')
    next.deferred.resolve()
  }

  onMessage (listener: (topic: string, payload: Uint8Array | string) => void): () => void {
    this.#messageListeners.add(listener)
    return () => { this.#messageListeners.delete(listener) }
  }

  onConnectionChange (listener: (up: boolean) => void): () => void {
    this.#connectionListeners.add(listener)
    return () => { this.#connectionListeners.delete(listener) }
  }

  send (topic: string, message: unknown): void {
    const payload = typeof message === 'string' ? message : new TextEncoder().encode(JSON.stringify(message))
    for (const listener of [...this.#messageListeners]) listener(topic, payload)
  }

  setConnected (up: boolean): void {
    this.connected = up
    if (!up) {
      for (const p of this.pending.splice(0)) p.deferred.reject(new Error('Connection closed'))
    }
    for (const listener of [...this.#connectionListeners]) listener(up)
  }
}

const flush = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 0)) }

const envelope = (seq: number, epoch = 'e1'): FeedEnvelope => ({ seq, epoch, ts: 1671375600000 + seq, data: { id: `ev-${seq}` } })

function watch (transport: FeedTransport, options?: FeedSubscriptionOptions) {
  const delivered: number[] = []
  const states: FeedStateChange[] = []
  const resets: ResetNotice[] = []
  const errors: Error[] = []
  const sub = new FeedSubscription(FEED, transport, options, (e) => { delivered.push(e.seq) })
  sub.on('state', (c) => { states.push(c) })
  sub.on('reset', (n) => { resets.push(n) })
  sub.on('error', (e) => { errors.push(e) })
  return { sub, delivered, states, resets, errors }
}

const path = (states: FeedStateChange[]): string[] => states.map((s) => `${s.old}->${s.new}`)

describe('FeedSubscription state machine', () => {
  it('allows only the documented transitions', () => {
    expect(canTransition('idle', 'subscribing')).toBe(true)
    expect(canTransition('subscribing', 'live')).toBe(true)
    expect(canTransition('live', 'resubscribing')).toBe(true)
    expect(canTransition('resubscribing', 'live')).toBe(true)
    expect(canTransition('live', 'subscribing')).toBe(false)
    expect(canTransition('idle', 'live')).toBe(false)
    for (const s of Object.keys(FEED_TRANSITIONS) as FeedState[]) {
      expect(canTransition('closed', s)).toBe(false)
      if (s !== 'closed') expect(canTransition(s, 'closed')).toBe(true)
    }
  })

  it('subscribes $replay/all by default and goes idle -> subscribing -> live with reasons', async () => {
    const t = new FakeTransport()
    const { sub, states } = watch(t)
    expect(sub.state).toBe('idle')
    sub.start()
    expect(sub.state).toBe('subscribing')
    await flush()
    expect(t.calls).toEqual([`sub ${ALL} q1`])
    expect(sub.state).toBe('live')
    expect(states).toEqual([
      { old: 'idle', new: 'subscribing', reason: 'start' },
      { old: 'subscribing', new: 'live', reason: `subscribed ${ALL}` }
    ])
    expect(() => { sub.start() }).toThrow(/state live/)
  })

  it('subscribes $replay/last-<n> and $replay/after-<seq>@<epoch> per `from`', async () => {
    const t1 = new FakeTransport()
    watch(t1, { from: 'last-5' }).sub.start()
    const t2 = new FakeTransport()
    const { sub } = watch(t2, { from: { seq: 7, epoch: 'e1' } })
    sub.start()
    const t3 = new FakeTransport()
    watch(t3, { from: 'after-3@e9' as 'all' }).sub.start()
    await flush()
    expect(t1.calls).toEqual([`sub $replay/last-5/${FEED} q1`])
    expect(t2.calls).toEqual([`sub ${after(7)} q1`])
    expect(t3.calls).toEqual([`sub ${after(3, 'e9')} q1`])
    expect(sub.position).toEqual({ seq: 7, epoch: 'e1' })
  })

  it('rejects invalid feeds and starts', () => {
    const t = new FakeTransport()
    expect(() => new FeedSubscription('matches/+/events', t)).toThrow(RangeError)
    expect(() => new FeedSubscription(FEED, t, { from: 'last-x' as 'all' })).toThrow(RangeError)
    expect(() => new FeedSubscription(FEED, t, { from: 'last--1' as 'all' })).toThrow(RangeError)
    expect(() => new FeedSubscription(FEED, t, { from: { seq: 1, epoch: 'a/b' } })).toThrow(RangeError)
  })

  it('waits for a connection before the first SUBSCRIBE', async () => {
    const t = new FakeTransport(false)
    const { sub } = watch(t)
    sub.start()
    await flush()
    expect(t.calls).toEqual([])
    expect(sub.state).toBe('subscribing')
    t.setConnected(true)
    await flush()
    expect(t.calls).toEqual([`sub ${ALL} q1`])
    expect(sub.state).toBe('live')
  })
})

describe('FeedSubscription delivery', () => {
  it('delivers in seq order exactly once and drops duplicates', async () => {
    const t = new FakeTransport()
    const { sub, delivered } = watch(t)
    const events: number[] = []
    sub.on('message', (e) => { events.push(e.seq) })
    sub.start()
    await flush()
    for (const seq of [1, 2, 2, 1, 3, 3, 4]) t.send(ALL, envelope(seq))
    expect(delivered).toEqual([1, 2, 3, 4])
    expect(events).toEqual([1, 2, 3, 4])
    expect(sub.position).toEqual({ seq: 4, epoch: 'e1' })
    expect(sub.stats).toMatchObject({ delivered: 4, duplicates: 3, gaps: 0 })
  })

  it('passes the envelope fields through', async () => {
    const t = new FakeTransport()
    const got: FeedEnvelope[] = []
    const sub = new FeedSubscription(FEED, t, {}, (e) => { got.push(e) })
    sub.start()
    await flush()
    t.send(ALL, { seq: 1, epoch: 'e1', ts: 5, data: 'not json' })
    expect(got).toEqual([{ seq: 1, epoch: 'e1', ts: 5, data: 'not json' }])
  })

  it('ignores messages on other topics (plain feed topic, other filters)', async () => {
    const t = new FakeTransport()
    const { sub, delivered } = watch(t)
    sub.start()
    await flush()
    t.send(FEED, envelope(1))
    t.send(`$replay/last-3/${FEED}`, envelope(1))
    t.send('$replay/all/matches/other/events', envelope(1))
    expect(delivered).toEqual([])
    t.send(ALL, envelope(1))
    expect(delivered).toEqual([1])
  })

  it('reports invalid payloads on `error` without delivering them', async () => {
    const t = new FakeTransport()
    const { sub, delivered, errors } = watch(t)
    sub.start()
    await flush()
    t.send(ALL, 'not json')
    t.send(ALL, { seq: 'x', epoch: 'e1', ts: 1 })
    t.send(ALL, envelope(1))
    expect(delivered).toEqual([1])
    expect(errors.map((e) => e.message)).toEqual([
      `invalid message on ${ALL}: feed payload is not JSON`,
      `invalid message on ${ALL}: envelope seq is not an integer >= 1`
    ])
  })

  it('keeps going when the app callback throws (reported on `error`)', async () => {
    const t = new FakeTransport()
    const seen: number[] = []
    const sub = new FeedSubscription(FEED, t, {}, (e) => {
      seen.push(e.seq)
      if (e.seq === 1) throw new Error('app bug')
    })
    const errors: string[] = []
    sub.on('error', (e) => { errors.push(e.message) })
    sub.start()
    await flush()
    t.send(ALL, envelope(1))
    t.send(ALL, envelope(2))
    expect(seen).toEqual([1, 2])
    expect(errors).toEqual(['app bug'])
  })
})

describe('FeedSubscription gaps', () => {
  it('on a gap, does not deliver out of order: unsubscribes, resubscribes after the position, fills in', async () => {
    const t = new FakeTransport()
    const { sub, delivered, states } = watch(t)
    const gaps: unknown[] = []
    sub.on('gap', (g) => { gaps.push(g) })
    sub.start()
    await flush()
    t.send(ALL, envelope(1))
    t.send(ALL, envelope(2))
    t.send(ALL, envelope(4)) // 3 missing
    expect(delivered).toEqual([1, 2])
    expect(gaps).toEqual([{ expected: 3, got: 4 }])
    expect(sub.state).toBe('resubscribing')
    t.send(ALL, envelope(5)) // old filter: ignored from now on
    await flush()
    expect(t.calls).toEqual([`sub ${ALL} q1`, `unsub ${ALL}`, `sub ${after(2)} q1`])
    expect(sub.state).toBe('live')
    expect(sub.filter).toBe(after(2))
    for (const seq of [3, 4, 5]) t.send(after(2), envelope(seq))
    t.send(ALL, envelope(6))
    expect(delivered).toEqual([1, 2, 3, 4, 5])
    expect(path(states)).toEqual(['idle->subscribing', 'subscribing->live', 'live->resubscribing', 'resubscribing->live'])
    expect(states[2].reason).toBe('gap: expected seq 3, got 4')
    expect(states[3].reason).toBe(`resubscribed ${after(2)}`)
  })

  it('while resubscribing, ignores gaps but delivers in-order envelopes', async () => {
    const t = new FakeTransport()
    t.autoAck = false
    const { sub, delivered } = watch(t, { from: { seq: 2, epoch: 'e1' } })
    sub.start()
    await flush()
    t.ackNext() // SUBACK of after-2
    await flush()
    expect(sub.state).toBe('live')
    t.send(after(2), envelope(3))
    t.send(after(2), envelope(5)) // gap -> resubscribe after-3
    await flush()
    expect(t.calls.at(-1)).toBe(`unsub ${after(2)}`)
    t.ackNext() // UNSUBACK
    await flush()
    expect(t.calls.at(-1)).toBe(`sub ${after(3)} q1`)
    // broker may send before the SUBACK (MQTT 3.1.1 section 3.8.4): in order is delivered, gap ignored
    t.send(after(3), envelope(4))
    t.send(after(3), envelope(6))
    expect(sub.state).toBe('resubscribing')
    expect(sub.stats.gaps).toBe(1)
    t.ackNext()
    await flush()
    expect(sub.state).toBe('live')
    t.send(after(3), envelope(5))
    t.send(after(3), envelope(6))
    expect(delivered).toEqual([3, 4, 5, 6])
  })

  it('ignores messages on the old filter until its UNSUBACK, even if the new filter string is the same', async () => {
    const t = new FakeTransport()
    t.autoAck = false
    const { sub, delivered } = watch(t, { from: { seq: 2, epoch: 'e1' } })
    sub.start()
    await flush()
    t.ackNext()
    await flush()
    t.send(after(2), envelope(4)) // gap at the first message: resubscribe with the same filter string
    await flush()
    expect(t.calls).toEqual([`sub ${after(2)} q1`, `unsub ${after(2)}`])
    t.send(after(2), envelope(3)) // in flight from the old subscription: ignored
    expect(delivered).toEqual([])
    t.ackNext()
    await flush()
    expect(t.calls.at(-1)).toBe(`sub ${after(2)} q1`)
    t.send(after(2), envelope(3))
    expect(delivered).toEqual([3])
  })

  it('gives up (error + closed) when a gap persists after maxGapRetries resubscribes', async () => {
    const t = new FakeTransport()
    const { sub, errors, delivered } = watch(t, { maxGapRetries: 2 })
    sub.start()
    await flush()
    t.send(ALL, envelope(1))
    await flush()
    for (let i = 0; i < 3; i++) {
      t.send(sub.filter ?? '', envelope(3))
      await flush()
    }
    expect(sub.state).toBe('closed')
    expect(errors.map((e) => e.message)).toEqual([`feed ${FEED}: gap at seq 2 persists after 2 resubscribes`])
    expect(delivered).toEqual([1])
    expect(t.calls.filter((c) => c.startsWith('sub '))).toHaveLength(3)
  })

  it('counts gap retries per position: progress resets the count', async () => {
    const t = new FakeTransport()
    const { sub, errors, delivered } = watch(t, { maxGapRetries: 1 })
    sub.start()
    await flush()
    t.send(ALL, envelope(1))
    for (let seq = 2; seq <= 4; seq++) {
      t.send(sub.filter ?? '', envelope(seq + 1)) // gap
      await flush()
      t.send(sub.filter ?? '', envelope(seq)) // filled by the resubscription
    }
    expect(errors).toEqual([])
    expect(delivered).toEqual([1, 2, 3, 4])
    expect(sub.stats.gaps).toBe(3)
    expect(sub.state).toBe('live')
  })
})

describe('FeedSubscription reconnects', () => {
  it('after a reconnect, unsubscribes the old filter and resubscribes after the last delivered position', async () => {
    const t = new FakeTransport()
    const { sub, delivered, states } = watch(t, { from: 'last-3' })
    sub.start()
    await flush()
    const first = `$replay/last-3/${FEED}`
    for (const seq of [8, 9, 10]) t.send(first, envelope(seq))
    t.setConnected(false)
    expect(sub.state).toBe('resubscribing')
    await flush()
    expect(t.calls).toEqual([`sub ${first} q1`])
    t.setConnected(true)
    await flush()
    expect(t.calls).toEqual([`sub ${first} q1`, `unsub ${first}`, `sub ${after(10)} q1`])
    t.send(after(10), envelope(10))
    t.send(after(10), envelope(11))
    expect(delivered).toEqual([8, 9, 10, 11])
    expect(states.map((s) => `${s.new}:${s.reason}`)).toEqual([
      'subscribing:start', `live:subscribed ${first}`, 'resubscribing:disconnected', `live:resubscribed ${after(10)}`
    ])
  })

  it('resubscribes with the initial filter if nothing was delivered yet', async () => {
    const t = new FakeTransport()
    const { sub } = watch(t, { from: 'last-3' })
    sub.start()
    await flush()
    t.setConnected(false)
    t.setConnected(true)
    await flush()
    expect(t.calls.at(-1)).toBe(`sub $replay/last-3/${FEED} q1`)
  })

  it('survives a disconnect before the SUBACK', async () => {
    const t = new FakeTransport()
    t.autoAck = false
    const { sub, states } = watch(t)
    sub.start()
    await flush()
    t.setConnected(false) // rejects the pending SUBSCRIBE: not an error
    await flush()
    expect(sub.state).toBe('resubscribing')
    t.autoAck = true
    t.setConnected(true)
    await flush()
    expect(sub.state).toBe('live')
    expect(t.calls).toEqual([`sub ${ALL} q1`, `unsub ${ALL}`, `sub ${ALL} q1`])
    expect(path(states)).toEqual(['idle->subscribing', 'subscribing->resubscribing', 'resubscribing->live'])
  })

  it('pairs every subscribe with one unsubscribe over reconnects and close', async () => {
    const t = new FakeTransport()
    const { sub } = watch(t)
    sub.start()
    await flush()
    t.send(ALL, envelope(1))
    t.setConnected(false)
    t.setConnected(true)
    await flush()
    t.setConnected(false)
    t.setConnected(true)
    await flush()
    await sub.close()
    const count = (prefix: string, filter: string): number => t.calls.filter((c) => c.startsWith(`${prefix} ${filter}`)).length
    for (const filter of [ALL, after(1)]) expect(count('sub', filter)).toBe(count('unsub', filter))
  })
})

describe('FeedSubscription resets', () => {
  it('on a reset notice: emits reset, clears the position, delivers what follows from scratch', async () => {
    const t = new FakeTransport()
    const { sub, delivered, resets } = watch(t, { from: { seq: 10, epoch: 'e1' } })
    sub.start()
    await flush()
    const notice = { reset: true, epoch: 'e2', reason: 'epoch-changed' }
    t.send(after(10), notice)
    expect(resets).toEqual([notice])
    expect(sub.position).toBeUndefined()
    t.send(after(10), envelope(1, 'e2'))
    t.send(after(10), envelope(2, 'e2'))
    expect(delivered).toEqual([1, 2])
    expect(sub.position).toEqual({ seq: 2, epoch: 'e2' })
    t.setConnected(false)
    t.setConnected(true)
    await flush()
    expect(t.calls.at(-1)).toBe(`sub ${after(2, 'e2')} q1`)
  })

  it('a trimmed reset delivers from the oldest held seq, whatever it is', async () => {
    const t = new FakeTransport()
    const { sub, delivered, resets } = watch(t, { from: { seq: 3, epoch: 'e1' } })
    sub.start()
    await flush()
    t.send(after(3), { reset: true, epoch: 'e1', reason: 'trimmed' })
    t.send(after(3), envelope(50))
    t.send(after(3), envelope(51))
    expect(resets).toEqual([{ reset: true, epoch: 'e1', reason: 'trimmed' }])
    expect(delivered).toEqual([50, 51])
  })

  it('after a reset with nothing delivered since, a reconnect subscribes $replay/all', async () => {
    const t = new FakeTransport()
    const { sub } = watch(t, { from: 'last-2' })
    sub.start()
    await flush()
    t.send(`$replay/last-2/${FEED}`, { reset: true, epoch: 'e2', reason: 'epoch-changed' })
    t.setConnected(false)
    t.setConnected(true)
    await flush()
    expect(t.calls.at(-1)).toBe(`sub ${ALL} q1`)
  })

  it('a reset notice with epoch null (feed without history yet) empties the position; reconnect uses all', async () => {
    const t = new FakeTransport()
    const { sub, delivered, resets } = watch(t, { from: { seq: 4, epoch: 'e1' } })
    sub.start()
    await flush()
    t.send(after(4), { reset: true, epoch: null, reason: 'epoch-changed' })
    expect(resets).toEqual([{ reset: true, epoch: null, reason: 'epoch-changed' }])
    t.setConnected(false)
    t.setConnected(true)
    await flush()
    expect(t.calls.at(-1)).toBe(`sub ${ALL} q1`)
    t.send(ALL, envelope(1, 'e9'))
    expect(delivered).toEqual([1])
    expect(sub.position).toEqual({ seq: 1, epoch: 'e9' })
  })

  it('an envelope of a new epoch without a notice also resets (reset event, then delivered)', async () => {
    const t = new FakeTransport()
    const { sub, delivered, resets } = watch(t)
    sub.start()
    await flush()
    t.send(ALL, envelope(7))
    t.send(ALL, envelope(1, 'e2'))
    expect(resets).toEqual([{ reset: true, epoch: 'e2', reason: 'epoch-changed' }])
    expect(delivered).toEqual([7, 1])
    expect(sub.position).toEqual({ seq: 1, epoch: 'e2' })
  })
})

describe('FeedSubscription failures and close', () => {
  it('a refused SUBSCRIBE while connected: error event, then closed', async () => {
    const t = new FakeTransport()
    t.refuse.add(ALL)
    const { sub, errors, states } = watch(t)
    sub.start()
    await flush()
    expect(sub.state).toBe('closed')
    expect(errors[0].message).toBe(`subscribe ${ALL} refused: Subscribe error: Unspecified error`)
    expect(states.at(-1)).toEqual({ old: 'subscribing', new: 'closed', reason: `subscribe refused: ${ALL}` })
    expect(t.calls).toEqual([`sub ${ALL} q1`, `unsub ${ALL}`])
  })

  it('a SUBSCRIBE lost before its SUBACK while the client still counts as connected (a silent broker) is not a refusal: sent again, then live', async () => {
    const t = new FakeTransport()
    t.fail.add(ALL)
    const { sub, errors } = watch(t)
    sub.start()
    await flush()
    expect(sub.state).toBe('subscribing')
    expect(errors).toEqual([])
    t.fail.delete(ALL)
    await new Promise((resolve) => setTimeout(resolve, 1100))
    await flush()
    expect(sub.state).toBe('live')
    // The failed one is released (each SUBSCRIBE pairs with one UNSUBSCRIBE), then sent again.
    expect(t.calls).toEqual([`sub ${ALL} q1`, `unsub ${ALL}`, `sub ${ALL} q1`])
  })

  it('close() unsubscribes, goes closed once, and ignores later messages and connections', async () => {
    const t = new FakeTransport()
    const { sub, delivered, states } = watch(t)
    sub.start()
    await flush()
    await sub.close('bye')
    await sub.close('again')
    expect(t.calls).toEqual([`sub ${ALL} q1`, `unsub ${ALL}`])
    expect(states.at(-1)).toEqual({ old: 'live', new: 'closed', reason: 'bye' })
    expect(states.filter((s) => s.new === 'closed')).toHaveLength(1)
    t.send(ALL, envelope(1))
    t.setConnected(false)
    t.setConnected(true)
    await flush()
    expect(delivered).toEqual([])
    expect(t.calls).toHaveLength(2)
  })

  it('close() before start goes idle -> closed without transport calls', async () => {
    const t = new FakeTransport()
    const { sub, states } = watch(t)
    await sub.close()
    expect(states).toEqual([{ old: 'idle', new: 'closed', reason: 'closed' }])
    expect(t.calls).toEqual([])
  })
})
