// aedes-persistence-level ships no type declarations; this is the part Tribune uses.
declare module 'aedes-persistence-level/asyncPersistence.js' {
  import type { Readable } from 'node:stream'
  /** The async (promise) persistence that aedes 1.x expects, on an abstract-level database. */
  export default class AsyncLevelPersistence {
    constructor (db: unknown)
    setup (broker: unknown): Promise<void>
    storeRetained (packet: { topic: string, payload: Buffer, qos: number, retain?: boolean, cmd?: string }): Promise<void>
    createRetainedStream (pattern: string): Readable
    createRetainedStreamCombi (patterns: string[]): Readable
    outgoingEnqueue (sub: { clientId: string }, packet: unknown): Promise<void>
    /** Queues `packet` for each of `subs` (aedes passes one per matching filter). */
    outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: unknown): Promise<void>
    outgoingClearMessageId (client: { id: string }, packet: unknown): Promise<unknown>
    cleanSubscriptions (client: { id: string }): Promise<void>
    addSubscriptions (client: { id: string }, subs: unknown[]): Promise<void>
    subscriptionsByClient (client: { id: string }): Promise<unknown[]>
    incomingStorePacket (client: { id: string }, packet: unknown): Promise<void>
    cleanIncoming (client: { id: string }): Promise<void>
    outgoingStream (client: { id: string }): AsyncIterable<unknown>
    putWill (client: { id: string }, packet: unknown): Promise<unknown>
    delWill (client: { id: string }): Promise<unknown>
    /** Stored wills, all of them without `brokers`; with it, those whose node id is not a key of it. */
    streamWill (brokers?: Record<string, number>): AsyncIterable<unknown>
    destroy (): Promise<void>
  }
}
