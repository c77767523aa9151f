/**
 * MQTT over TCP: a net.Server with TCP_NODELAY on (aedes leaves Nagle on otherwise: ~43 ms round trips),
 * each connection behind the connection guard (packet size, slow consumer), handed to aedes.
 */
import net from 'node:net'
import { guardConnection, type ConnectionLimits } from './guard.js'

/** What a listener hands each connection to: aedes' `handle(stream, req)`. */
export type ConnectionHandler = (stream: import('node:stream').Duplex, req: { connDetails: ConnDetails }) => unknown

/** Where a connection comes from, in the shape aedes keeps as `client.connDetails`. */
export interface ConnDetails {
  ipAddress: string
  port: number
  ipFamily: number
  isWebsocket: boolean
}

/**
 * Starts an MQTT over TCP listener.
 * @param limits packet size and queued bytes per connection; a connection over a limit is closed, nobody else
 * @param onRefused called with the peer address and the reason when the guard closes a connection
 * @returns the listening server (its address() gives the port when `port` was 0)
 * @throws when the port cannot be bound (e.g. EADDRINUSE), with the address in the message
 */
export async function listenTcp (host: string, port: number, limits: ConnectionLimits, handle: ConnectionHandler,
  onRefused: (peer: string, reason: string) => void): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    const connDetails: ConnDetails = {
      ipAddress: socket.remoteAddress ?? '',
      port: socket.remotePort ?? 0,
      ipFamily: socket.remoteFamily === 'IPv6' ? 6 : 4,
      isWebsocket: false
    }
    socket.on('error', () => {}) // aedes reports errors of the wrapped stream; a reset socket must not crash the node
    const { stream } = guardConnection(socket, limits, (reason) => onRefused(`${connDetails.ipAddress}:${connDetails.port}`, reason))
    handle(stream, { connDetails })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`MQTT TCP listener on ${host}:${port}: ${err.message}`)))
    server.listen(port, host, () => resolve())
  })
  return server
}
