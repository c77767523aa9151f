/**
 * How each transport turns a connection away, cheaply, before the MQTT or authentication work of a real one:
 *  - MQTT over TCP: the client's first bytes (its CONNECT) are read, not parsed, and answered with CONNACK return code
 *    3, "server unavailable" (MQTT 3.1.1 section 3.2.2.3), then the connection is closed. Reading first matters: a
 *    socket closed with unread input is reset, and a reset can drop the CONNACK before the client reads it;
 *  - MQTT over TLS: closed before the handshake (the handshake is the expensive part, and no CONNACK can go out
 *    without it);
 *  - WebSocket: the HTTP upgrade (or any other request but the node's monitoring routes) is answered
 *    `503 Service Unavailable` with `Retry-After`, before any WebSocket is made (RFC 9110 section 15.6.4 and 10.2.3);
 *    over TLS (wss) the connection is closed before the handshake, as MQTT over TLS.
 * A refused connection that does not finish within {@link REFUSED_LINGER_MS} is dropped, whatever it sends meanwhile.
 * The listeners here are shared by every refused connection: no closure per connection.
 */
import type { Socket } from 'node:net'
import type { ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { RefusalReason } from './admission.js'

/** CONNACK, remaining length 2, no session present, return code 3: server unavailable (MQTT 3.1.1 section 3.2). */
export const CONNACK_SERVER_UNAVAILABLE = Buffer.from([0x20, 0x02, 0x00, 0x03])

/** How long a refused connection may take to send its first bytes, read its answer and close, ms (short: a refused
 * connection holds a file descriptor, and is not counted against --max-connections). */
export const REFUSED_LINGER_MS = 2000

function ignore (): void {}
function drop (socket: Duplex): void { socket.destroy() }
function answerUnavailable (this: Socket): void {
  this.pause() // nothing more is read: a client that keeps sending cannot keep the connection busy
  this.end(CONNACK_SERVER_UNAVAILABLE)
}

/**
 * Closes `socket` after {@link REFUSED_LINGER_MS} whatever it does meanwhile (an absolute timer, not an idle one: a
 * client trickling bytes must not keep a refused connection, and its file descriptor, for ever).
 */
export function closeSoon (socket: Duplex): void {
  socket.on('error', ignore)
  if (socket.destroyed) return // closed already (an address over its own limits: admission.ts)
  setTimeout(drop, REFUSED_LINGER_MS, socket).unref()
}

/** Refuses an MQTT over TCP connection with CONNACK 3 once its first bytes arrive. */
export function refuseMqtt (socket: Socket): void {
  closeSoon(socket)
  if (socket.destroyed) return
  socket.once('data', answerUnavailable)
}

/** Refuses an MQTT over TLS connection before its handshake: the TCP connection is closed. */
export function refuseTls (socket: Socket): void {
  socket.on('error', ignore)
  socket.destroy()
}

/**
 * Answers a WebSocket upgrade request with 503 and Retry-After, and closes.
 * @param socket the upgrade's socket (the request has been read)
 * @param retryAfter seconds the client should wait before it tries this node again
 */
export function refuseUpgrade (socket: Duplex, reason: RefusalReason, retryAfter: number): void {
  closeSoon(socket)
  const body = `server unavailable (${reason}): try again in ${retryAfter} s\n`
  socket.end(`HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${retryAfter}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

/**
 * Answers an HTTP request on a connection refused at accept with 503 and Retry-After, and closes the connection.
 * @param retryAfter seconds the client should wait before it tries this node again
 */
export function refuseRequest (res: ServerResponse, reason: RefusalReason, retryAfter: number): void {
  const body = `server unavailable (${reason}): try again in ${retryAfter} s\n`
  res.writeHead(503, { 'retry-after': String(retryAfter), connection: 'close', 'content-type': 'text/plain' })
  res.end(body)
}
