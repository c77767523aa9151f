/**
 * The pages people open (ui/: the scoreboard at `/`, the operations page at `/ops`, their scripts and styles under
 * `/assets/`), built by Vite into `dist/ui` at `npm run build` and served from memory by every WebSocket listener's
 * HTTP server, next to its MQTT over WebSocket path; `--no-ui` turns them off. Each page is told the listener's
 * WebSocket path (the `__TRIBUNE_WS_PATH__` placeholder of its `<meta name="tribune-ws-path">`), so it connects back
 * to the listener that served it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import type http from 'node:http'

/** The pages' files as built, by URL path (`/index.html`, `/assets/index-abc.js`). */
export type PageFiles = ReadonlyMap<string, Buffer>

/** Answers a request when it is for a page or one of its files; false otherwise (the caller answers it). */
export type PageHandler = (req: http.IncomingMessage, res: http.ServerResponse, pathname: string) => boolean

const PLACEHOLDER = '__TRIBUNE_WS_PATH__'
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json'
}
/** The pages load nothing from elsewhere; they open WebSockets to the broker (another one with `?broker=`), and MQTT.js
 * runs its timers in a worker made from a blob (so that a background tab keeps its keep alive). */
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer'
}

/** `dist/ui` of this package, found from this module (run from `dist/` or, in tests, from the sources). */
export function builtPagesDir (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return join(dir, 'dist', 'ui')
}

/**
 * Reads the built pages into memory (a few hundred KB).
 * @returns the files by URL path, or null when `dir` holds no `index.html` (the pages were not built)
 */
export function loadPages (dir = builtPagesDir()): PageFiles | null {
  if (!existsSync(join(dir, 'index.html'))) return null
  const files = new Map<string, Buffer>()
  const walk = (sub: string): void => {
    for (const name of readdirSync(join(dir, sub))) {
      const rel = sub === '' ? name : `${sub}/${name}`
      if (statSync(join(dir, rel)).isDirectory()) walk(rel)
      else files.set(`/${rel}`, readFileSync(join(dir, rel)))
    }
  }
  walk('')
  return files
}

interface Served {
  body: Buffer
  gzipped: Buffer | null
  type: string
  cache: string
}

/**
 * The handler of one listener: `/` (and `/index.html`) the scoreboard, `/ops` (and `/ops.html`) the operations page,
 * `/assets/...` their files; GET and HEAD, gzipped when the client takes it. Without built pages, `/` and `/ops`
 * answer 404 saying to run `npm run build`.
 * @param wsPath the listener's WebSocket path, written into each page
 */
export function pageHandler (files: PageFiles | null, wsPath: string): PageHandler {
  const served = new Map<string, Served>()
  for (const [path, raw] of files ?? []) {
    const ext = extname(path)
    const body = ext === '.html' ? Buffer.from(raw.toString('utf8').replaceAll(PLACEHOLDER, wsPath)) : raw
    // Asset names carry a hash of their content (Vite): cached for good. Pages are asked again each time.
    const cache = path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache'
    const type = TYPES[ext] ?? 'application/octet-stream'
    const gzipped = /^(text|application\/json|image\/svg)/.test(type) ? gzipSync(body, { level: 9 }) : null
    served.set(path, { body, gzipped: gzipped !== null && gzipped.length < body.length ? gzipped : null, type, cache })
  }
  const routes: Record<string, string> = { '/': '/index.html', '/index.html': '/index.html', '/ops': '/ops.html', '/ops.html': '/ops.html' }
  return (req, res, pathname) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    if (pathname === '/ops/') {
      // The pages load their files relative to their own address.
      res.writeHead(308, { location: '/ops' })
      res.end()
      return true
    }
    const path = routes[pathname] ?? (pathname.startsWith('/assets/') ? pathname : undefined)
    if (path === undefined) return false
    const file = served.get(path)
    if (file === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(req.method === 'HEAD' ? undefined : JSON.stringify({ error: files === null ? 'the pages are not built: run npm run build' : `no file ${pathname}` }))
      return true
    }
    const gzip = file.gzipped !== null && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))
    const body = gzip && file.gzipped !== null ? file.gzipped : file.body
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': body.length,
      'cache-control': file.cache,
      vary: 'accept-encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      ...SECURITY_HEADERS
    })
    res.end(req.method === 'HEAD' ? undefined : body)
    return true
  }
}
