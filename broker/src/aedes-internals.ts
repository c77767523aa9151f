/**
 * The one seam to aedes' internals: what Tribune reads or calls on aedes 1.2.0 (with patches/aedes+1.2.0.patch) that
 * aedes' type declarations (node_modules/aedes/types) leave out. The rest of the code uses aedes' public types and these
 * accessors, never a cast of its own; if a new aedes moves one of these, this file (and
 * test/broker/aedes-internals.test.ts, which checks each at run time) is what changes.
 */
import type { Duplex } from 'node:stream'
import type { Aedes, Client } from 'aedes'
import type { ConnDetails } from './listeners/tcp.js'
import type { MessageStream } from './feeds/feeds.js'
import type { FeedClient } from './feeds/client-sink.js'
import type { DeliveringClient } from './delivery.js'

/** The fields of an aedes broker (aedes.js) its types leave out. */
interface BrokerInternals {
  /** Connected clients by client id (aedes.js `this.clients`, a prototype-less object). */
  clients: Record<string, Client>
  /** The message stream between nodes: mqemitter, or mqemitter-redis in a cluster (aedes.js `this.mq`). */
  mq: MessageStream
  /** Drops a client from `clients`, emits `clientDisconnect`, publishes `$SYS/<id>/disconnect/clients`. */
  unregisterClient: (client: Client) => void
}

/** A will as the CONNECT packet carries it (MQTT 3.1.1 section 3.1.3.2, 3.1.3.3). */
export interface ConnectWill {
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
}

/** The fields of an aedes client (lib/client.js) its types leave out. */
interface ClientInternals {
  /** The will of the CONNECT being handled, set by lib/handlers/connect.js `init` before `authenticate` runs. */
  _will?: ConnectWill | null
  /** Its subscriptions by topic filter (lib/handlers/subscribe.js `addSubs`). */
  subscriptions: Record<string, { qos: number } | undefined>
  /** `req.connDetails` of `broker.handle(stream, req)`: where the connection came from (listeners/tcp.ts). */
  connDetails: ConnDetails | null
  /** Set by lib/handlers/index.js when the client sent DISCONNECT [MQTT-3.14.4-3] (its will is then not published). */
  _disconnected?: boolean
}

const brokerInternals = (broker: Aedes): BrokerInternals => broker as unknown as BrokerInternals
const clientInternals = (client: Client): ClientInternals => client as unknown as ClientInternals

/** The clients connected to `broker` by client id (empty before it exists). Read only: aedes owns the table. */
export function connectedClients (broker: Aedes | null | undefined): Readonly<Record<string, Client>> {
  return broker == null ? {} : brokerInternals(broker).clients
}

/** The message stream `broker` publishes through (every node's messages in a cluster). */
export function messageStream (broker: Aedes): MessageStream {
  return brokerInternals(broker).mq
}

/**
 * Takes `client` out of `broker`'s table, as its close does (aedes.js `unregisterClient`): for a connection that closed
 * while aedes was registering it (a takeover racing a close), whose close ran before it was in the table.
 */
export function unregisterClient (broker: Aedes, client: Client): void {
  brokerInternals(broker).unregisterClient(client)
}

/** Listens to `broker`'s `error` event (persistence failures, the will sweep), which aedes' types do not declare. */
export function onBrokerError (broker: Aedes, listener: (err: Error) => void): void {
  (broker as unknown as NodeJS.EventEmitter).on('error', listener)
}

/**
 * Hands a connection to aedes (`broker.handle`). aedes keeps `req.connDetails` as the client's `connDetails` (its types
 * want an http.IncomingMessage there, which is what aedes' own WebSocket example passes).
 * @returns the aedes client of the connection
 */
export function handleConnection (broker: Aedes, stream: Duplex, req: { connDetails: ConnDetails }): Client {
  return broker.handle(stream, req as never)
}

/** Where `client`'s connection came from (the listener's ConnDetails), or null. */
export function connDetailsOf (client: Client): ConnDetails | null {
  return clientInternals(client).connDetails ?? null
}

/** The will of the CONNECT being handled, readable from `preConnect` on (MQTT 3.1.1 section 3.1.2.5); null for none. */
export function connectWillOf (client: Client): ConnectWill | null {
  return clientInternals(client)._will ?? null
}

/** `client`'s subscriptions by topic filter. Read only: aedes owns them. */
export function subscriptionsOf (client: Client): Readonly<Record<string, { qos: number } | undefined>> {
  return clientInternals(client).subscriptions
}

/**
 * `client` as the feeds see it (feeds/client-sink.ts FeedClient): besides its public fields, `connackSent` (set by
 * lib/handlers/connect.js `doConnack`) and `deliverQoS` (lib/client.js; replaced by delivery.ts).
 */
export function asFeedClient (client: Client): FeedClient {
  return client as unknown as FeedClient
}

/**
 * `client` as delivery.ts replaces its deliveries (DeliveringClient): `deliver0`, `deliverQoS`, `duplicates`,
 * `_nextId`, `errored`, `waitForDrain`, `broker.authorizeForward` of lib/client.js.
 */
export function asDeliveringClient (client: Client): DeliveringClient {
  return client as unknown as DeliveringClient
}

/**
 * Starts `broker`'s message counter (aedes.js `counter`) at `value` at least. aedes names every message it publishes
 * `<broker id>:<counter>` (aedes-packet `brokerId`, `brokerCounter`): the stored copy of a message queued for a
 * persistent session has that name in either store, and clients' duplicate filter (lib/client.js `dedupe`) drops a
 * message whose counter is not above the last one seen from that broker id. The counter starts at 0 in each run.
 */
export function startMessageCounterAt (broker: Aedes, value: number): void {
  const internals = broker as unknown as { counter: number }
  internals.counter = Math.max(internals.counter, value)
}

/**
 * Makes `id` (1..65535) the packet identifier `client` gives its next QoS 1/2 PUBLISH without one (lib/client.js
 * `_nextId`, taken and incremented by lib/qos-packet.js and delivery.ts). `client` is an aedes client, as aedes passes
 * it to the persistence (`outgoingStream`).
 */
export function setNextPacketIdentifier (client: object, id: number): void {
  (client as { _nextId: number })._nextId = id
}

/** Whether `client` ended its connection with a DISCONNECT packet (MQTT 3.1.1 section 3.14), as aedes noted it. */
export function sentDisconnect (client: Client): boolean {
  return clientInternals(client)._disconnected === true
}

/**
 * The will `client` holds once its CONNECT is complete (lib/handlers/connect.js `storeWill`), or null. aedes passes this
 * very object to `authorizePublish` when it publishes the will from the client's close (lib/client.js `close`), before
 * it clears it: a hook can tell a will from a PUBLISH by identity (MQTT 3.1.1 section 3.1.2.5).
 */
export function willOf (client: Client): ConnectWill | null {
  return (client as unknown as { will?: ConnectWill | null }).will ?? null
}
