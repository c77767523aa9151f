// aedes-persistence-redis ships no type declarations; this is the part Tribune uses.
declare module 'aedes-persistence-redis/asyncPersistence.js' {
  import type { Redis } from 'ioredis'
  /** The async (promise) persistence that aedes 1.x expects, on Redis (sessions, subscriptions, QoS 1/2 state, wills). */
  export default class AsyncRedisPersistence {
    constructor (opts: { conn: Redis, maxSessionDelivery?: number })
    setup (broker: unknown): Promise<void>
    storeRetained (packet: { topic: string, payload: Buffer, qos: number, retain?: boolean, cmd?: string }): Promise<void>
    createRetainedStream (pattern: string): unknown
    createRetainedStreamCombi (patterns: string[]): unknown
    addSubscriptions (client: { id: string }, subs: unknown[]): Promise<void>
    subscriptionsByClient (client: { id: string }): Promise<unknown[]>
    cleanSubscriptions (client: { id: string }): Promise<void>
    cleanIncoming (client: { id: string }): Promise<void>
    incomingStorePacket (client: { id: string }, packet: unknown): Promise<void>
    outgoingStream (client: { id: string }): AsyncIterable<unknown>
    outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: unknown): Promise<void>
    outgoingUpdate (client: { id: string }, packet: unknown): Promise<void>
    outgoingClearMessageId (client: { id: string }, packet: { messageId?: number }): Promise<unknown>
    delWill (client: { id: string, brokerId?: string }): Promise<unknown>
    streamWill (brokers: Record<string, number>): AsyncIterable<unknown>
    destroy (): Promise<void>
  }
}
