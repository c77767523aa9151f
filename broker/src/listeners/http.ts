/**
 * The node's HTTP routes for tooling (`GET /metrics` Prometheus text, `GET /healthz` liveness, `GET /readyz`
 * readiness), answered on the WebSocket listener's HTTP server and, with `--metrics-port`, on a server of their own:
 * that one is never shed by admission control and has no WebSocket clients queued before it, so monitoring still gets
 * answers during a storm, and it need not be public.
 */
import http from 'node:http'
import type { PageHandler } from './pages.js'

export interface HttpRoutes {
  /** Answers GET /healthz: status code and JSON body. */
  health: () => { status: number, body: unknown }
  /** Answers GET /readyz: 200 when the node can take new viewers and publishes (its store is reachable), else 503. */
  ready: () => { status: number, body: unknown }
  /** Answers GET /metrics: the Prometheus text and its Content-Type; undefined when metrics are off (`--metrics off`). */
  metrics?: () => Promise<{ contentType: string, text: string }>
  /** The pages (listeners/pages.ts) of a WebSocket listener with this WebSocket path; absent with `--no-ui`. */
  pages?: (wsPath: string) => PageHandler
}

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' }

/**
 * Answers `req` when it is a GET or HEAD of one of the routes (JSON or Prometheus text, not cached); `/metrics` with
 * metrics off gets 404 saying so, and one that fails 500 naming why.
 * @returns false when the request is for something else (the caller answers it)
 */
export function answerRoute (routes: HttpRoutes, req: http.IncomingMessage, res: http.ServerResponse, pathname: string): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false
  if (pathname === '/metrics') {
    answerMetrics(routes, req, res)
    return true
  }
  const route = pathname === '/healthz' ? routes.health : pathname === '/readyz' ? routes.ready : null
  if (route === null) return false
  const { status, body } = route()
  res.writeHead(status, JSON_HEADERS)
  res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body))
  return true
}

function answerMetrics (routes: HttpRoutes, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (routes.metrics === undefined) {
    res.writeHead(404, JSON_HEADERS)
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: 'metrics are off on this node (--metrics off)' }))
    return
  }
  routes.metrics().then(({ contentType, text }) => {
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
    res.end(req.method === 'HEAD' ? undefined : text)
  }, (err: Error) => {
    res.writeHead(500, JSON_HEADERS)
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: `reading the metrics failed: ${err.message}` }))
  })
}

/**
 * The path of an HTTP request target (RFC 9112 section 3.2): origin-form (`/a/b?q`, also `//a` and `/\\a`, which are
 * paths here, not hosts) or absolute-form (`http://host/a`).
 * @returns the pathname, percent-encoding kept; null when the target cannot be read (the caller answers 400)
 */
export function requestPathname (target: string | undefined): string | null {
  try {
    const t = target ?? '/'
    return t.startsWith('/') ? new URL(`http://x${t}`).pathname : new URL(t).pathname
  } catch {
    return null
  }
}

/** Answers 400 to a request whose target cannot be read, and closes. */
export function badTarget (res: http.ServerResponse): void {
  res.shouldKeepAlive = false
  res.writeHead(400, { 'content-type': 'text/plain' })
  res.end('bad request target\n')
}

/**
 * Connections the `--metrics-port` holds at once; beyond, new ones are closed at accept (Node's maxConnections). A
 * scraper and a load balancer's probes need a few; without a cap, silent connections to this port (closed after 5 s
 * idle) could take the node's open files, as no admission control stands before it.
 */
export const METRICS_MAX_CONNECTIONS = 64

/**
 * Starts the HTTP server of `--metrics-port`: the routes above, 404 naming them for anything else; at most
 * {@link METRICS_MAX_CONNECTIONS} connections at once, each closed after 5 s without traffic.
 * @throws when the port cannot be bound, naming the address
 */
export async function listenHttp (host: string, port: number, routes: HttpRoutes): Promise<http.Server> {
  const server = http.createServer({ headersTimeout: 5_000, requestTimeout: 5_000 }, (req, res) => {
    const pathname = requestPathname(req.url)
    if (pathname === null) {
      badTarget(res)
      return
    }
    if (answerRoute(routes, req, res, pathname)) return
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: `no route for ${req.method ?? ''} ${pathname}; this port answers GET /metrics, /healthz and /readyz` }))
  })
  server.maxConnections = METRICS_MAX_CONNECTIONS
  // A connection silent for 5 s is closed (with no 'timeout' listener, the server destroys it); the header and
  // request timeouts above apply only once a request has begun.
  server.timeout = 5_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`metrics port on ${host}:${port}: ${err.message}`)))
    server.listen(port, host, () => resolve())
  })
  return server
}
