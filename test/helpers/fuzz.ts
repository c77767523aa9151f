/**
 * Fuzz plumbing: a seeded PRNG and MQTT 3.1.1 input for hostile-client fuzzing. Packets of every type built with
 * mqtt-packet `generate`, mutated copies (bit flips, truncation, inserted bytes, wrong Remaining Length, duplicates,
 * reserved types 0 and 15, wrong fixed-header flags), and random bytes, grouped into one burst per connection.
 * Everything a connection sends is a pure function of (seed, connection index): `planConnection(seed, i)` gives the
 * same bytes every time, so a failing connection can be replayed on its own.
 */
import mqttPacket from 'mqtt-packet'

/** A small fast seeded PRNG (mulberry32). */
export class Rng {
  #state: number

  constructor (seed: number) {
    this.#state = seed >>> 0
  }

  /** The next unsigned 32-bit integer. */
  next (): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }

  /** A float in [0, 1). */
  float (): number {
    return this.next() / 4294967296
  }

  /** An integer in [0, n). */
  int (n: number): number {
    return Math.floor(this.float() * n)
  }

  /** An integer in [lo, hi]. */
  range (lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }

  chance (p: number): boolean {
    return this.float() < p
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]
  }

  /** Picks a value by weight: [[weight, value], ...]. */
  weighted<T>(choices: ReadonlyArray<readonly [number, T]>): T {
    let total = 0
    for (const [w] of choices) total += w
    let r = this.float() * total
    for (const [w, v] of choices) {
      r -= w
      if (r < 0) return v
    }
    return choices[choices.length - 1][1]
  }

  bytes (n: number): Buffer {
    const out = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff
    return out
  }
}

/** The PRNG of connection `index` under `seed` (independent streams, so one connection can be replayed alone). */
export function connectionRng (seed: number, index: number): Rng {
  // splitmix32-style mixing of (seed, index)
  let z = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
  return new Rng((z ^ (z >>> 16)) >>> 0)
}

/** The seed from FUZZ_SEED (decimal or 0x hex), else a fresh random one. */
export function fuzzSeed (env = process.env.FUZZ_SEED): number {
  if (env !== undefined && env.trim() !== '') {
    const n = Number(env.trim())
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`FUZZ_SEED must be an integer in 0..2^32-1, not ${env}`)
    return n
  }
  return Math.floor(Math.random() * 0x100000000) >>> 0
}

// ---------------------------------------------------------------------------------------------------------------
// Topics, filters, payloads

/** The feed the honest clients use; fuzzers publish to it too (their messages get seqs like anyone's). */
export const HONEST_FEED = 'matches/f/events'
const FEED_IDS = ['f', 'a', 'b', 'z9'] as const
/** The feeds fuzzers publish to (mutations may add others). */
export const FUZZ_FEEDS: readonly string[] = FEED_IDS.map((id) => `matches/${id}/events`)
/** Pool sizes bound the state a fuzz run may legitimately leave behind (retained messages, persistent sessions). */
export const PERSISTENT_IDS = 24
const RETAIN_TOPICS = ['matches/f/state', 'matches/a/state', 'fz/r/1', 'fz/r/2', 'fz/r/3', 'a', '/', 'fz/ü/😀']

const SEGMENTS = ['a', 'b', 'matches', 'f', 'events', 'state', '', ' ', 'é', '😀', '$SYS', 'x'.repeat(200)]
const WILD = ['+', '#', '$replay', '\u0000', 'a+', '#a']

/** 1 to 5 random levels; `wild` is the chance of each level being a wildcard or otherwise special. */
function randomLevels (rng: Rng, wild: number): string {
  const n = rng.range(1, 5)
  const parts: string[] = []
  for (let i = 0; i < n; i++) parts.push(rng.chance(wild) ? rng.pick(WILD) : rng.pick(SEGMENTS))
  const topic = parts.join('/')
  return topic === '' ? 'a' : wild === 0 && topic.startsWith('$') ? `a/${topic}` : topic
}

const feedTopic = (rng: Rng): string => `matches/${rng.pick(FEED_IDS)}/events`

function replayForm (rng: Rng): string {
  return rng.weighted<() => string>([
    [3, () => 'all'],
    [2, () => `last-${rng.range(0, 20)}`],
    [1, () => `last-${rng.pick(['999999999', '1000000000', '-1', '', '0x10', '1e3', '01'])}`],
    [2, () => `after-${rng.range(0, 2000)}@${rng.pick(['abc', 'x'.repeat(64), 'x'.repeat(65), '', '9f1c2a7b3e04', 'ü'])}`],
    [1, () => `after-${rng.pick(['999999999999999', '9999999999999999', '-5', ''])}@e`],
    [1, () => rng.pick(['', 'ALL', 'al', 'last', 'after', '+', 'all '])]
  ])()
}

/**
 * A topic name for PUBLISH and wills. With chance `fatal` one the broker answers by closing the connection
 * ($ topics, wildcards, U+0000, empty); else feeds (the honest one too), state topics and other plain names.
 */
function publishTopic (rng: Rng, fatal: number): string {
  if (rng.chance(fatal)) {
    return rng.weighted<() => string>([
      [2, () => `$replay/${replayForm(rng)}/${feedTopic(rng)}`],
      [2, () => `$SYS/${randomLevels(rng, 0)}`],
      [1, () => rng.pick(['$', '$share/g/t', '$replay', '$SYS'])],
      [2, () => randomLevels(rng, 0.5)],
      [2, () => rng.pick(['', '#', '+', 'matches/+/events', 'matches/#', 'a\u0000b', 'matches/f\u0000/events'])]
    ])()
  }
  return rng.weighted<() => string>([
    [10, () => feedTopic(rng)],
    [4, () => HONEST_FEED],
    [3, () => `matches/${rng.pick(FEED_IDS)}/state`],
    [3, () => randomLevels(rng, 0)],
    [0.3, () => rng.pick(['\uffff', '/', 'x'.repeat(rng.range(1000, 3000)), `${HONEST_FEED}/`, `/${HONEST_FEED}`, 'matches//events'])]
  ])()
}

/**
 * A SUBSCRIBE/UNSUBSCRIBE filter. With chance `fatal` one the broker answers by closing the connection (empty,
 * misplaced wildcards); else ordinary and wildcard filters and `$replay` forms, valid or refused with 0x80.
 */
function filter (rng: Rng, fatal: number): string {
  if (rng.chance(fatal)) {
    return rng.weighted<() => string>([
      [2, () => randomLevels(rng, 0.5)],
      [1, () => rng.pick(['', 'a/#/b', 'a+', '#/a', 'a/b#', `$replay/all/${HONEST_FEED}/#/x`, `$replay/#/${HONEST_FEED}`, '$replay/#/matches/#'])]
    ])()
  }
  return rng.weighted<() => string>([
    [3, () => `$replay/${replayForm(rng)}/${feedTopic(rng)}`],
    [2, () => `$replay/all/${HONEST_FEED}`],
    [2, () => `$replay/${rng.pick(['all', 'last-3', '+'])}/${rng.pick(['matches/+/events', 'matches/#', '#', '$SYS/x', `$replay/all/${HONEST_FEED}`, `${HONEST_FEED}/x`, 'matches/f\u0000/events', 'matches//events', 'a/b', ''])}`],
    [1, () => rng.pick(['$replay', '$replay/', '$replay//', '$replay/#', '$replay/+/+/+/+', '$replay/all', '$replay/all/'])],
    [3, () => feedTopic(rng)],
    [2, () => rng.pick(['#', '+', '+/+', '+/+/+', 'matches/+/events', 'matches/#', '$SYS/#', '$share/g/#', '/#', '+/#', 'matches/a\u0000b/events', '\u0000'])],
    [3, () => randomLevels(rng, 0)],
    [0.3, () => 'x'.repeat(rng.range(1000, 3000))]
  ])()
}

/** A PUBLISH or will payload: JSON (with resend ids), text, control characters, non-UTF-8 bytes, sometimes large. */
function payload (rng: Rng): Buffer {
  return rng.weighted<() => Buffer>([
    [2, () => Buffer.alloc(0)],
    [3, () => Buffer.from(JSON.stringify({ id: `dup-${rng.int(8)}`, fuzz: rng.int(1000) }))],
    [3, () => Buffer.from(rng.pick(['{}', '[]', 'null', '1', '"s"', '{"id":5}', '{"seq":1,"epoch":"x"}', '{"reset":true}', '{"a":12345678901234567890}', '{', '\u0000']))],
    [3, () => rng.bytes(rng.range(1, 64))],
    [1, () => Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80])],
    [1, () => Buffer.alloc(rng.range(100, 1500), rng.int(32))], // control characters: the envelope escapes them
    [1, () => rng.bytes(rng.range(1000, 5000))]
  ])()
}

const messageId = (rng: Rng): number => rng.chance(0.9) ? rng.range(1, 64) : rng.pick([0, 1, 65535, rng.range(1, 65535)])
const qos = (rng: Rng): 0 | 1 | 2 => rng.pick([0, 1, 2] as const)
const text = (rng: Rng, max: number): string => rng.chance(0.7)
  ? rng.bytes(rng.range(0, max)).toString('base64').slice(0, max)
  : rng.pick(['', 'é', '😀', '\u0000', 'admin', 'x'.repeat(max)])

// ---------------------------------------------------------------------------------------------------------------
// Packets

/** Packet types (MQTT 3.1.1 section 2.2.1); 0 and 15 are reserved. */
export const PACKET_TYPES = ['reserved0', 'connect', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp',
  'subscribe', 'suback', 'unsubscribe', 'unsuback', 'pingreq', 'pingresp', 'disconnect', 'reserved15'] as const

function gen (packet: object, protocolVersion = 4): Buffer | null {
  try {
    return mqttPacket.generate(packet as never, { protocolVersion } as never)
  } catch {
    return null // mqtt-packet refuses some of what is asked; the caller falls back
  }
}

export interface ConnectOptions {
  clientId: string
  clean: boolean
  will: boolean
  /** Chance of a will topic the broker refuses ($ topics: CONNACK 5; wildcards, U+0000: closed). */
  fatal?: number
}

/** A CONNECT the broker should accept (unless its will is on a $ topic): MQTT 3.1.1 or 3.1, with random extras. */
export function validConnect (rng: Rng, opts: ConnectOptions): Buffer {
  const v31 = rng.chance(0.1)
  const packet: Record<string, unknown> = {
    cmd: 'connect',
    protocolId: v31 ? 'MQIsdp' : 'MQTT',
    protocolVersion: v31 ? 3 : 4,
    clean: opts.clean,
    clientId: opts.clientId,
    keepalive: rng.pick([0, 1, 5, 30, 60, 65535])
  }
  if (opts.will) packet.will = { topic: publishTopic(rng, opts.fatal ?? 0.05), payload: payload(rng), qos: qos(rng), retain: rng.chance(0.3) }
  if (rng.chance(0.3)) {
    packet.username = text(rng, 40)
    if (rng.chance(0.7)) packet.password = Buffer.from(text(rng, 40))
  }
  return gen(packet) ?? gen({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: opts.clientId, keepalive: 30 }) as Buffer
}

const str16 = (s: string | Buffer): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s) : s
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length & 0xffff)
  return Buffer.concat([len, b])
}

function varint (n: number): Buffer {
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return Buffer.from(out)
}

/** A client id and clean flag for a fuzzed CONNECT: persistent sessions only from the bounded pool. */
function anyConnectId (rng: Rng): { clientId: string, clean: boolean } {
  const clean = rng.chance(0.85)
  if (!clean) return { clientId: `fzp-${rng.int(PERSISTENT_IDS)}`, clean }
  return { clientId: rng.chance(0.2) ? '' : `fzc-${rng.int(1e9)}`, clean }
}

/** A CONNECT built by hand with random flags (reserved bit, will/QoS/retain, user/password), name and level. */
function randomFlagsConnect (rng: Rng): Buffer {
  const flags = rng.int(256)
  const parts = [
    str16(rng.weighted([[6, 'MQTT'], [1, 'MQIsdp'], [1, 'MQTX'], [1, ''], [1, 'mqtt']])),
    Buffer.from([rng.weighted([[6, 4], [2, 3], [1, 5], [1, rng.int(256)]]), flags]),
    Buffer.from([rng.int(256), rng.int(256)]),
    // Clean session off (flag 0x02 clear) takes an id from the persistent pool, so the sessions a run may leave are bounded.
    str16((flags & 0x02) === 0 ? `fzp-${rng.int(PERSISTENT_IDS)}` : rng.chance(0.8) ? `fzr-${rng.int(1e9)}` : '')
  ]
  if ((flags & 0x04) !== 0) parts.push(str16(publishTopic(rng, 0.3)), str16(payload(rng).subarray(0, 200)))
  if ((flags & 0x80) !== 0) parts.push(str16(text(rng, 20)))
  if ((flags & 0x40) !== 0) parts.push(str16(text(rng, 20)))
  const body = Buffer.concat(parts)
  return Buffer.concat([Buffer.from([0x10]), varint(body.length), body])
}

/**
 * One valid packet (as mqtt-packet builds it) of type `type`, with random content; `fatal` is the chance of a topic
 * or filter the broker closes the connection for.
 */
export function validPacket (rng: Rng, type: (typeof PACKET_TYPES)[number], fatal = 0.3): Buffer {
  let out: Buffer | null = null
  switch (type) {
    case 'connect':
      out = rng.chance(0.4)
        ? randomFlagsConnect(rng)
        : validConnect(rng, { ...anyConnectId(rng), will: rng.chance(0.3), fatal })
      break
    case 'connack':
      out = gen({ cmd: 'connack', returnCode: rng.int(6), sessionPresent: rng.chance(0.5) })
      break
    case 'publish': {
      const retain = rng.chance(0.2)
      const q = qos(rng)
      out = gen({
        cmd: 'publish',
        topic: retain ? rng.pick(RETAIN_TOPICS) : publishTopic(rng, fatal),
        payload: payload(rng),
        qos: q,
        dup: q > 0 && rng.chance(0.2),
        retain,
        messageId: q > 0 ? messageId(rng) : undefined
      })
      break
    }
    case 'puback': case 'pubrec': case 'pubrel': case 'pubcomp': case 'unsuback':
      out = gen({ cmd: type, messageId: messageId(rng) })
      break
    case 'subscribe': {
      const n = rng.chance(0.02) ? rng.range(100, 300) : rng.range(1, 6)
      const subscriptions = Array.from({ length: n }, () => ({ topic: n > 50 ? `$replay/last-${rng.int(3)}/${feedTopic(rng)}` : filter(rng, fatal), qos: qos(rng) }))
      out = gen({ cmd: 'subscribe', messageId: messageId(rng), subscriptions })
      break
    }
    case 'suback':
      out = gen({ cmd: 'suback', messageId: messageId(rng), granted: [rng.pick([0, 1, 2, 128])] })
      break
    case 'unsubscribe':
      out = gen({ cmd: 'unsubscribe', messageId: messageId(rng), unsubscriptions: Array.from({ length: rng.range(1, 4) }, () => filter(rng, fatal)) })
      break
    case 'pingreq': case 'pingresp': case 'disconnect':
      out = gen({ cmd: type })
      break
    case 'reserved0':
      out = Buffer.from([0x00, 0x00])
      break
    case 'reserved15':
      out = Buffer.from([0xf0, 0x00])
      break
  }
  return out ?? Buffer.from([0xc0, 0x00]) // PINGREQ when mqtt-packet refused the random content
}

/** A valid packet of a type an MQTT client may send, weighted towards those that reach deep broker code. */
export function clientPacket (rng: Rng, connected = false, fatal = 0.3): Buffer {
  // Once connected, a second CONNECT, DISCONNECT or a server-to-client packet ends the connection: those are rarer.
  const rare = connected ? 0.2 : 1
  const type = rng.weighted<(typeof PACKET_TYPES)[number]>([
    [30, 'publish'], [14, 'subscribe'], [6, 'unsubscribe'], [6, 'puback'], [4, 'pubrec'], [6, 'pubrel'], [3, 'pubcomp'],
    [5, 'pingreq'], [rare, 'disconnect'], [2 * rare, 'connect'], [rare, 'connack'], [rare, 'suback'], [rare, 'unsuback'], [rare, 'pingresp']
  ])
  return validPacket(rng, type, fatal)
}

/** Any valid packet, every type equally likely (server-to-client ones too). */
export function anyPacket (rng: Rng): Buffer {
  return validPacket(rng, rng.pick(PACKET_TYPES.slice(1, 15)))
}

/** Random bytes: mostly short, sometimes starting like a packet header. */
export function randomBytes (rng: Rng): Buffer {
  const n = rng.weighted([[5, rng.range(1, 8)], [4, rng.range(9, 64)], [1, rng.range(65, 600)]])
  const b = rng.bytes(n)
  if (rng.chance(0.3)) b[0] = (rng.int(16) << 4) | rng.int(16)
  return b
}

/** The fixed header of a packet: type/flags byte, Remaining Length value and where the body starts; null if malformed. */
function fixedHeader (b: Buffer): { length: number, bodyStart: number } | null {
  let length = 0
  let mul = 1
  for (let i = 1; i < Math.min(b.length, 5); i++) {
    length += (b[i] & 0x7f) * mul
    mul *= 128
    if ((b[i] & 0x80) === 0) return { length, bodyStart: i + 1 }
  }
  return null
}

export type Mutation = 'bitflip' | 'truncate' | 'insert' | 'overwrite' | 'length' | 'duplicate' | 'reserved-type' | 'flags' | 'splice'

/** A mutated copy of `packet` (`other` supplies a second packet for splicing). */
export function mutate (rng: Rng, packet: Buffer, other: () => Buffer): { bytes: Buffer, how: Mutation } {
  const how = rng.weighted<Mutation>([
    [5, 'bitflip'], [3, 'truncate'], [2, 'insert'], [2, 'overwrite'], [4, 'length'], [1, 'duplicate'],
    [2, 'reserved-type'], [3, 'flags'], [1, 'splice']
  ])
  const b = Buffer.from(packet)
  switch (how) {
    case 'bitflip': {
      const flips = rng.range(1, 4)
      for (let i = 0; i < flips; i++) {
        const at = rng.int(b.length)
        b[at] ^= 1 << rng.int(8)
      }
      return { bytes: b, how }
    }
    case 'truncate':
      return { bytes: b.subarray(0, rng.int(b.length)), how }
    case 'insert': {
      const at = rng.int(b.length + 1)
      return { bytes: Buffer.concat([b.subarray(0, at), rng.bytes(rng.range(1, 8)), b.subarray(at)]), how }
    }
    case 'overwrite': {
      const n = rng.range(1, 4)
      for (let i = 0; i < n; i++) b[rng.int(b.length)] = rng.pick([0x00, 0xff, 0x7f, 0x80, rng.int(256)])
      return { bytes: b, how }
    }
    case 'length': {
      const h = fixedHeader(b)
      if (h === null) return { bytes: b, how }
      const body = b.subarray(h.bodyStart)
      const encoded = rng.weighted<() => Buffer>([
        [3, () => varint(h.length + rng.range(1, 10))], // longer than sent: swallows what follows
        [3, () => varint(Math.max(0, h.length - rng.range(1, 10)))], // shorter: the rest is read as packets
        [1, () => varint(0)],
        [1, () => varint(rng.int(16384))],
        [1, () => varint(268435455)], // the largest Remaining Length
        [1, () => varint(rng.range(256 * 1024, 1024 * 1024))], // over the maximum packet size
        [1, () => Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f])], // a fifth length byte
        [1, () => Buffer.concat([varint(h.length).map((x) => x | 0x80), Buffer.from([0x00])])] // non-minimal encoding
      ])()
      return { bytes: Buffer.concat([b.subarray(0, 1), encoded, body]), how }
    }
    case 'duplicate':
      return { bytes: Buffer.concat(Array.from({ length: rng.range(2, 5) }, () => b)), how }
    case 'reserved-type':
      b[0] = (rng.chance(0.5) ? 0x00 : 0xf0) | (b[0] & 0x0f)
      return { bytes: b, how }
    case 'flags': {
      const type = b[0] >> 4
      // PUBLISH: QoS 3 is the invalid one; every other type has fixed flags (0, or 2 for PUBREL/SUBSCRIBE/UNSUBSCRIBE)
      const flags = type === 3 ? (b[0] & 0x09) | 0x06 : (b[0] & 0x0f) ^ rng.range(1, 15)
      b[0] = (type << 4) | flags
      return { bytes: b, how }
    }
    case 'splice': {
      const o = other()
      return { bytes: Buffer.concat([b.subarray(0, rng.int(b.length + 1)), o.subarray(rng.int(o.length + 1))]), how }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Connections

export type PacketKind = 'valid' | 'mutated' | 'random'

export interface ConnectionPlan {
  index: number
  transport: 'tcp' | 'ws'
  /** Starts with a CONNECT the broker should accept, so later packets reach session, subscribe and feed code. */
  deep: boolean
  packets: Array<{ kind: PacketKind, bytes: Buffer }>
  /**
   * How the bytes are written: TCP writes or WebSocket binary frames (packets may be split or coalesced), each after
   * a pause of `delayMs` (a deep connection pauses after its CONNECT: aedes refuses more than 42 packets queued
   * before CONNACK, and would otherwise read little past it).
   */
  writes: Array<{ delayMs: number, bytes: Buffer }>
  /**
   * Ends the burst with a PINGREQ and waits for the PINGRESP (or the broker closing) before ending: the broker
   * handles a client's packets in order, so everything sent before has then been handled, not cut off by the close.
   */
  sync: boolean
  /** How long to keep the connection after the last write, ms, before ending it. */
  holdMs: number
  /** destroy: drop the connection (TCP RST or close); end: half-close (TCP FIN, WebSocket close) and let the broker close. */
  ending: 'destroy' | 'end'
}

export interface PlanOptions {
  /** Share of connections over WebSocket (default 0.3). */
  wsShare?: number
  /** Share of connections that start with an accepted CONNECT (default 0.7). */
  deepShare?: number
}

/** Splits `bytes` into the chunks written to the wire. */
function chunk (rng: Rng, packets: Buffer[]): Buffer[] {
  const mode = rng.weighted([[4, 'per-packet'], [3, 'coalesced'], [3, 'random-split']] as const)
  if (mode === 'per-packet') return packets.filter((p) => p.length > 0)
  const all = Buffer.concat(packets)
  if (mode === 'coalesced' || all.length === 0) return all.length === 0 ? [] : [all]
  const out: Buffer[] = []
  let at = 0
  while (at < all.length) {
    const n = Math.min(all.length - at, rng.weighted([[3, rng.range(1, 3)], [3, rng.range(4, 40)], [1, rng.range(41, 2000)]]))
    out.push(all.subarray(at, at + n))
    at += n
  }
  return out
}

/**
 * Everything connection `index` sends under `seed`. Deep connections send a CONNECT the broker accepts (sometimes
 * a persistent session from a small pool of client ids), then mostly valid packets with some mutated and random
 * ones; shallow ones send anything, mostly mutated and random.
 */
export function planConnection (seed: number, index: number, opts: PlanOptions = {}): ConnectionPlan {
  const rng = connectionRng(seed, index)
  const transport = rng.chance(opts.wsShare ?? 0.3) ? 'ws' : 'tcp'
  const deep = rng.chance(opts.deepShare ?? 0.7)
  const packets: ConnectionPlan['packets'] = []
  const count = rng.weighted([[4, rng.range(1, 10)], [4, rng.range(11, 60)], [2, rng.range(61, 150)]])
  // Most packets after an invalid one are never read (the broker closes the connection), so deep connections keep
  // the share of invalid packets and of refused topics low, some at none at all.
  const bad = deep ? rng.pick([0, 0, 0.02, 0.05, 0.15]) : rng.pick([0.3, 0.7, 1])
  const fatal = deep ? rng.pick([0, 0.01, 0.03, 0.1]) : 0.3
  if (deep) {
    const persistent = rng.chance(0.25)
    const clientId = persistent ? `fzp-${rng.int(PERSISTENT_IDS)}` : rng.chance(0.1) ? '' : `fz-${index}`
    packets.push({ kind: 'valid', bytes: validConnect(rng, { clientId, clean: !persistent, will: rng.chance(0.2), fatal }) })
  }
  const mix: ReadonlyArray<readonly [number, PacketKind]> = [[1 - bad, 'valid'], [bad * 0.75, 'mutated'], [bad * 0.25, 'random']]
  while (packets.length < count) {
    const kind = rng.weighted(mix)
    if (kind === 'valid') {
      packets.push({ kind, bytes: deep ? clientPacket(rng, true, fatal) : anyPacket(rng) })
    } else if (kind === 'mutated') {
      const base = rng.chance(0.7) ? clientPacket(rng) : anyPacket(rng)
      packets.push({ kind, bytes: mutate(rng, base, () => anyPacket(rng)).bytes })
    } else {
      packets.push({ kind, bytes: randomBytes(rng) })
    }
  }
  const sync = deep && rng.chance(0.8)
  if (sync) packets.push({ kind: 'valid', bytes: Buffer.from([0xc0, 0x00]) })
  const pauseAfterConnect = deep && rng.chance(0.85)
  const writes = pauseAfterConnect
    ? [{ delayMs: 0, bytes: packets[0].bytes }, ...chunk(rng, packets.slice(1).map((p) => p.bytes)).map((bytes, i) => ({ delayMs: i === 0 ? rng.range(5, 25) : 0, bytes }))]
    : chunk(rng, packets.map((p) => p.bytes)).map((bytes) => ({ delayMs: 0, bytes }))
  for (const w of writes) if (rng.chance(0.05)) w.delayMs += rng.range(1, 10) // let the broker answer in between
  return {
    index,
    transport,
    deep,
    packets,
    writes,
    sync,
    holdMs: rng.weighted([[3, 0], [4, rng.range(1, 20)], [1, rng.range(21, 100)]]),
    ending: rng.chance(0.2) ? 'end' : 'destroy'
  }
}
