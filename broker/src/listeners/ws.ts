/**
 * MQTT over WebSocket (`ws` 8, each WebSocket guarded directly: listeners/guard.ts) on an HTTP server that also answers
 * `GET /metrics` (Prometheus text), `GET /healthz` (liveness) and `GET /readyz` (readiness): listeners/http.ts; and,
 * unless `--no-ui`, the pages: the scoreboard at `/`, the operations page at `/ops` (listeners/pages.ts).
 * Upgrades are accepted on one path (default `/mqtt`); the `mqtt` subprotocol is selected when offered (MQTT 3.1.1
 * section 6), and a client that offers none is accepted too. MQTT packets must come in binary frames [MQTT-6.0.0-1]:
 * a text frame closes the connection.
 */
import http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'
import type { Socket } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import { guardWebSocket, type ConnectionLimits, type RefusedHandler } from './guard.js'
import type { Admission } from '../admission/admission.js'
import type { RefusalReason } from '../admission/admission.js'
import { refuseUpgrade, refuseRequest, refuseTls, closeSoon } from '../admission/refuse.js'
import { TCP_KEEPALIVE_IDLE_MS } from './liveness.js'
import { tlsOptions, verifiedCN, certError, type ConnDetails, type ConnectionHandler, type ListenSpec } from './tcp.js'
import { answerRoute, badTarget, requestPathname, type HttpRoutes } from './http.js'

const noop = (): void => {}

/**
 * Starts the HTTP server with the WebSocket endpoint. A plain request to the WebSocket path gets 426 Upgrade Required
 * (`Upgrade: websocket`), to any other path but the routes of listeners/http.ts and the pages 404. Each connection passes admission
 * control (admission/) when it is accepted, as on the MQTT listeners, and counts as one connection from accept until
 * it closes, whether it upgrades or not (a connection that sends nothing holds a file descriptor all the same). A
 * refused one is answered 503 with Retry-After to its upgrade or request, before any WebSocket is made, and closed
 * within 2 s whatever it sends (admission/refuse.ts); over TLS it is closed before the handshake. `/metrics`,
 * `/healthz` and `/readyz` are answered on a refused connection too (probes on this port see the node's state).
 * @param limits packet size (also bounding each WebSocket message) and queued bytes per connection; the CONNECT
 *   timeout (ms) also bounds how long an HTTP connection may take to send its request
 * @param admission the node's admission control: decides on each accepted connection, and is told when a taken one
 *   closes
 * @returns the servers, and the WebSockets open (each from its upgrade until it closes), for shutdown
 * @throws when the port cannot be bound, naming the address
 */
export async function listenWs (spec: ListenSpec & { path: string }, limits: ConnectionLimits & { connectTimeoutMs: number }, handle: ConnectionHandler,
  routes: HttpRoutes, onRefused: RefusedHandler, admission: Admission): Promise<{ server: http.Server, wss: WebSocketServer, open: Set<WebSocket> }> {
  const path = spec.path
  const pages = routes.pages?.(path)
  /** Connections refused at accept, by reason (plain HTTP only: over TLS a refused one is closed at once). */
  const refusedAtAccept = new WeakMap<Socket, RefusalReason>()
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const pathname = requestPathname(req.url)
    if (pathname === null) {
      badTarget(res)
      return
    }
    const refused = refusedAtAccept.get(req.socket)
    // A refused connection gets one answer, then closes (`Connection: close`).
    if (refused !== undefined) res.shouldKeepAlive = false
    if (answerRoute(routes, req, res, pathname)) return
    if (refused !== undefined) {
      refuseRequest(res, refused, admission.retryAfter(refused))
      return
    }
    if (pathname === path) {
      // The WebSocket path asked without an upgrade (a browser, curl): RFC 9110 section 15.5.22, 426 with the
      // protocol to switch to.
      res.writeHead(426, { upgrade: 'websocket', connection: 'Upgrade', 'content-type': 'application/json' })
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: `${path} takes MQTT over WebSocket only: connect an MQTT client (e.g. MQTT.js to ws://<host>:<port>${path}), which sends the WebSocket upgrade` }))
      return
    }
    if (pages?.(req, res, pathname) === true) return
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: `no route for ${req.method ?? ''} ${pathname}; MQTT over WebSocket is at ${path}` }))
  }
  // An HTTP connection is not a WebSocket until its upgrade (admission counts it from accept all the same): one that
  // sends nothing, or its headers slowly, is dropped within the CONNECT timeout, as a silent MQTT connection is (Node's defaults: 60 s
  // for headers, 300 s for a request, checked every 30 s), so idle connections cannot pile up on this port.
  // keepAliveTimeout stays Node's 5 s. Upgraded connections leave Node's list of connections to check.
  // TCP keepalive on every accepted socket, as on the MQTT listeners (listeners/liveness.ts).
  const timeouts = { headersTimeout: limits.connectTimeoutMs, requestTimeout: limits.connectTimeoutMs, connectionsCheckingInterval: 1000, keepAlive: true, keepAliveInitialDelay: TCP_KEEPALIVE_IDLE_MS }
  const server: http.Server = spec.tls !== undefined
    ? https.createServer({ ...tlsOptions(spec.tls, spec.requestCert === true), ...timeouts }, onRequest)
    : http.createServer(timeouts, onRequest)
  if (spec.tls !== undefined) server.on('tlsClientError', () => {})
  const wss = new WebSocketServer({
    noServer: true,
    // The open WebSockets are tracked below, not by ws (its tracking costs each one a closure and its scope).
    clientTracking: false,
    // A frame may hold several packets (MQTT 3.1.1 section 6.0; MQTT.js joins queued writes), each checked by the guard.
    maxPayload: 4 * limits.maxPacketSize + 8,
    perMessageDeflate: false,
    handleProtocols: (protocols) => {
      for (const p of ['mqtt', 'mqttv3.1']) if (protocols.has(p)) return p
      return false
    }
  })
  // Outside the upgrade handler, so that nothing a connection keeps (its listeners, the guard's callback) holds the
  // upgrade request in a closure's scope for the connection's life.
  const details = (req: http.IncomingMessage): ConnDetails => {
    const connDetails: ConnDetails = {
      ipAddress: req.socket.remoteAddress ?? '',
      port: req.socket.remotePort ?? 0,
      ipFamily: req.socket.remoteFamily === 'IPv6' ? 6 : 4,
      isWebsocket: true,
      listener: spec.name
    }
    if (req.socket instanceof tls.TLSSocket) {
      connDetails.certCN = verifiedCN(req.socket)
      connDetails.certError = certError(req.socket)
    }
    return connDetails
  }
  const open = new Set<WebSocket>()
  const forget = (ws: WebSocket): boolean => open.delete(ws)
  const accept = (ws: WebSocket, socket: Socket, connDetails: ConnDetails): void => {
    open.add(ws)
    handle(guardWebSocket(ws, limits, connDetails, onRefused, forget, socket), { connDetails })
  }
  // One listener for every taken connection's socket (no closure per connection); it closes when the WebSocket does,
  // when the handshake fails, or when an HTTP connection ends. Over TLS this is the TCP socket under the TLS one.
  const released = function (this: Socket): void { admission.release(this.remoteAddress ?? '') }
  server.on('connection', (socket: Socket) => {
    const refused = admission.admit(socket.remoteAddress ?? '', spec.name, socket)
    if (refused === null) {
      socket.on('close', released)
      return
    }
    if (spec.tls !== undefined) {
      refuseTls(socket)
      return
    }
    // Answered when its request comes (an upgrade: refuseUpgrade below; a request: onRequest), closed within 2 s.
    refusedAtAccept.set(socket, refused)
    closeSoon(socket)
  })
  server.on('upgrade', (req, socket: Socket, head) => {
    const pathname = requestPathname(req.url)
    socket.on('error', noop)
    if (pathname !== path) {
      closeSoon(socket)
      socket.end(`HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\nMQTT over WebSocket is at ${path}\n`)
      return
    }
    // Taken or refused at accept: an upgrade is not counted again.
    const refused = refusedAtAccept.get(socket)
    if (refused !== undefined) {
      refuseUpgrade(socket, refused, admission.retryAfter(refused))
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, socket, details(req)))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`listener ${spec.name} on ${spec.host}:${spec.port}: ${err.message}`)))
    server.listen(spec.port, spec.host, () => resolve())
  })
  return { server, wss, open }
}
