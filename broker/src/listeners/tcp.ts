/**
 * MQTT over TCP, and over TLS (MQTT 3.1.1 section 4.2 and 5.4): TCP_NODELAY on (aedes leaves Nagle on otherwise:
 * ~43 ms round trips) and TCP keepalive, each connection behind the connection guard (packet size, slow consumer),
 * handed to aedes.
 * On TLS listeners that accept client certificates, a verified certificate's CN goes with the connection.
 */
import net from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import type { Duplex } from 'node:stream'
import { guardConnection, type ConnectionLimits, type RefusedHandler } from './guard.js'
import type { Admission } from '../admission/admission.js'
import { refuseMqtt, refuseTls } from '../admission/refuse.js'
import { TCP_KEEPALIVE_IDLE_MS } from './liveness.js'

/**
 * Options of every accepted socket: TCP_NODELAY, and TCP keepalive (probes once idle for
 * {@link TCP_KEEPALIVE_IDLE_MS}), so a peer whose host is gone is found even when its client sends nothing (keep
 * alive 0; listeners/liveness.ts).
 */
export const SOCKET_OPTIONS = { noDelay: true, keepAlive: true, keepAliveInitialDelay: TCP_KEEPALIVE_IDLE_MS } as const

/** What a listener hands each connection to: aedes' `handle(stream, req)`. */
export type ConnectionHandler = (stream: Duplex, req: { connDetails: ConnDetails }) => unknown

/** Where a connection comes from, in the shape aedes keeps as `client.connDetails`, plus the listener and TLS CN. */
export interface ConnDetails {
  ipAddress: string
  port: number
  ipFamily: number
  isWebsocket: boolean
  /** The name of the listener it came in on (e.g. `mqtt:1883`). */
  listener: string
  /** The CN of a client certificate the TLS listener verified against its CA. */
  certCN?: string
  /** Why a client certificate that was presented is not trusted. */
  certError?: string
}

/** TLS files of a listener: PEM paths. `ca` verifies client certificates. */
export interface TlsFiles {
  cert: string
  key: string
  ca?: string
}

/** One listener to open. */
export interface ListenSpec {
  name: string
  host: string
  port: number
  tls?: TlsFiles
  /** Ask TLS clients for a certificate (they may still connect without one and use other credentials). */
  requestCert?: boolean
}

/**
 * Reads a listener's TLS files into node:tls options.
 * @throws Error naming the file that cannot be read
 */
export function tlsOptions (files: TlsFiles, requestCert: boolean): tls.TlsOptions {
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file)
    } catch (err) {
      throw new Error(`tls.${what}: cannot read ${file} (${(err as Error).message})`)
    }
  }
  return {
    cert: read('cert', files.cert),
    key: read('key', files.key),
    ca: files.ca !== undefined ? read('ca', files.ca) : undefined,
    requestCert,
    rejectUnauthorized: false // a client without a (valid) certificate may still log in another way
  }
}

/** Why a TLS peer's certificate was not trusted, when one was presented and refused. */
export function certError (socket: tls.TLSSocket): string | undefined {
  if (socket.authorized) return undefined
  const cert = socket.getPeerCertificate()
  if (cert === null || Object.keys(cert).length === 0) return undefined
  return String(socket.authorizationError ?? 'unknown error')
}

/** The CN of a TLS peer's certificate, when it was verified against the listener's CA. */
export function verifiedCN (socket: tls.TLSSocket): string | undefined {
  if (!socket.authorized) return undefined
  const cn = socket.getPeerCertificate()?.subject?.CN
  return typeof cn === 'string' && cn.length > 0 ? cn : undefined
}

/**
 * Starts an MQTT over TCP (or TLS) listener. Each new connection first passes admission control (admission/): a
 * refused one gets CONNACK 3 (TCP) or is closed before its TLS handshake (TLS), without reaching aedes.
 * @param limits packet size and queued bytes per connection; a connection over a limit is closed, nobody else
 * @param admission the node's admission control: decides on each accepted socket, and is told when a taken one closes
 * @param onRefused called with the peer and the reason when the guard closes a connection
 * @returns the listening server (its address() gives the port when `port` was 0), and the sockets open (each from
 *   its accept until it closes), for shutdown
 * @throws when the port cannot be bound (e.g. EADDRINUSE) or a TLS file cannot be read, naming it
 */
export async function listenTcp (spec: ListenSpec, limits: ConnectionLimits, handle: ConnectionHandler,
  onRefused: RefusedHandler, admission: Admission): Promise<{ server: net.Server, open: Set<Duplex> }> {
  const open = new Set<Duplex>()
  const forget = (socket: Duplex): boolean => open.delete(socket)
  // One listener for every taken socket (no closure per connection); the address was read (and so kept) at accept.
  const released = function (this: net.Socket): void { admission.release(this.remoteAddress ?? '') }
  const admit = (raw: net.Socket): boolean => {
    if (admission.admit(raw.remoteAddress ?? '', spec.name, raw) !== null) return false
    raw.on('close', released)
    return true
  }
  const onSocket = (socket: net.Socket): void => {
    const connDetails: ConnDetails = {
      ipAddress: socket.remoteAddress ?? '',
      port: socket.remotePort ?? 0,
      ipFamily: socket.remoteFamily === 'IPv6' ? 6 : 4,
      isWebsocket: false,
      listener: spec.name
    }
    if (socket instanceof tls.TLSSocket) {
      connDetails.certCN = verifiedCN(socket)
      connDetails.certError = certError(socket)
    }
    socket.on('error', () => {}) // aedes reports errors of the wrapped stream; a reset socket must not crash the node
    open.add(socket)
    handle(guardConnection(socket, limits, connDetails, onRefused, forget), { connDetails })
  }
  let server: net.Server
  if (spec.tls !== undefined) {
    // TLS: a plain TCP server accepts, and hands the sockets it takes to the TLS server (which has no port of its
    // own), so that a refused connection costs no handshake.
    const tlsServer = tls.createServer({ ...tlsOptions(spec.tls, spec.requestCert === true) }, onSocket)
    tlsServer.on('tlsClientError', () => {}) // a failed handshake closes that socket only
    server = net.createServer(SOCKET_OPTIONS, (raw) => {
      if (admit(raw)) tlsServer.emit('connection', raw)
      else refuseTls(raw)
    })
  } else {
    server = net.createServer(SOCKET_OPTIONS, (socket) => {
      if (admit(socket)) onSocket(socket)
      else refuseMqtt(socket)
    })
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`listener ${spec.name} on ${spec.host}:${spec.port}: ${err.message}`)))
    server.listen(spec.port, spec.host, () => resolve())
  })
  return { server, open }
}
