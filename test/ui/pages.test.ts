// Tests whether the broker serves the pages (built into dist/ui) from its WebSocket listener's HTTP server: the
// scoreboard at `/`, the operations page at `/ops`, their files under `/assets/` (gzipped when asked, cached for good,
// with a content security policy), each page told the listener's own WebSocket path; the tooling routes and the
// WebSocket path unchanged; `ui: false` (--no-ui, TRIBUNE_UI=off) serving none of it; bad values refused by name;
// `tribune demo` printing the pages' addresses.
import http from 'node:http'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { describe, it, expect } from 'vitest'
import { brokerForTest, onCleanup } from '../helpers/broker.js'
import { connect, waitFor } from '../helpers/mqtt.js'
import { pagesBuilt } from '../helpers/browser.js'
import { ConfigError, helpText, loadConfig } from '../../broker/src/config.js'

interface Answer { status: number, headers: http.IncomingHttpHeaders, body: Buffer }

async function get (port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('the pages served by the broker', () => {
  it('serves the scoreboard at /, the operations page at /ops and their files, with the listener\'s WebSocket path', async () => {
    await pagesBuilt()
    const node = await brokerForTest({ wsPath: '/live' })
    const index = await get(node.wsPort, '/')
    expect(index.status).toBe(200)
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(index.headers['cache-control']).toBe('no-cache')
    expect(index.headers['content-security-policy']).toContain("default-src 'self'")
    const html = index.body.toString()
    expect(html).toContain('<meta name="tribune-ws-path" content="/live">')
    expect(html).not.toContain('__TRIBUNE_WS_PATH__')
    expect(html).toContain('<title>Tribune · live scores</title>')
    const ops = await get(node.wsPort, '/ops')
    expect(ops.status).toBe(200)
    expect(ops.body.toString()).toContain('<title>Tribune · operations</title>')
    expect(ops.body.toString()).toContain('content="/live"')
    expect((await get(node.wsPort, '/ops/')).headers.location).toBe('/ops')

    // Every script and style the pages name, gzipped when asked, cached for good.
    const assets = [...new Set([...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g), ...ops.body.toString().matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1]))]
    expect(assets.some((a) => a.endsWith('.js'))).toBe(true)
    expect(assets.some((a) => a.endsWith('.css'))).toBe(true)
    for (const asset of assets) {
      const plain = await get(node.wsPort, `/${asset}`)
      const zipped = await get(node.wsPort, `/${asset}`, { 'accept-encoding': 'gzip, br' })
      expect(plain.status).toBe(200)
      expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable')
      expect(plain.headers['content-encoding']).toBeUndefined()
      expect(zipped.headers['content-encoding']).toBe('gzip')
      expect(gunzipSync(zipped.body)).toEqual(plain.body)
      expect(zipped.body.length).toBeLessThan(plain.body.length)
    }
    const head = await get(node.wsPort, '/', {}, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.body.length).toBe(0)
    expect((await get(node.wsPort, '/assets/nothing.js')).status).toBe(404)
    expect((await get(node.wsPort, '/', {}, 'POST')).status).toBe(404)

    // The rest of the listener as before: tooling routes, 426 at the WebSocket path, 404 elsewhere, MQTT over WebSocket.
    expect((await get(node.wsPort, '/healthz')).status).toBe(200)
    expect((await get(node.wsPort, '/live')).status).toBe(426)
    expect((await get(node.wsPort, '/nothing')).status).toBe(404)
    const client = await connect(`ws://127.0.0.1:${node.wsPort}/live`)
    expect(client.connected).toBe(true)
  })

  it('serves no page with ui: false, and the flag, variable and file setting read as such', async () => {
    const node = await brokerForTest({ ui: false })
    for (const path of ['/', '/ops', '/index.html']) {
      const answer = await get(node.wsPort, path)
      expect(answer.status).toBe(404)
      expect(JSON.parse(answer.body.toString()).error).toBe(`no route for GET ${path}; MQTT over WebSocket is at /mqtt`)
    }
    expect((await get(node.wsPort, '/healthz')).status).toBe(200)

    expect(loadConfig({ 'no-ui': true }, {}).ui).toBe(false)
    expect(loadConfig({}, {}).ui).toBe(true)
    expect(loadConfig({}, { TRIBUNE_UI: 'off' }).ui).toBe(false)
    expect(loadConfig({}, { TRIBUNE_UI: 'on' }).ui).toBe(true)
    expect(() => loadConfig({}, { TRIBUNE_UI: 'maybe' })).toThrow(new ConfigError('invalid configuration: TRIBUNE_UI: must be on or off (true or false in a config file) (got "maybe")'))
    expect(helpText()).toMatch(/--no-ui +TRIBUNE_UI +do not serve the pages/)
  })
})

describe('tribune demo', () => {
  it('prints the addresses of the scoreboard and the operations page, which answer', async () => {
    await pagesBuilt()
    const bin = join(import.meta.dirname, '../../bin/tribune.js')
    const child = spawn(process.execPath, [bin, 'demo', '--port', '0', '--ws-port', '0', '--speed', '0', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] })
    onCleanup(() => { child.kill('SIGKILL') })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    const messages = (): string[] => out.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg: string }).msg)
    await waitFor(() => messages().some((m) => m.startsWith('operations: ')), 'the addresses in the demo\'s log', 15_000)
    const scoreboard = messages().find((m) => m.startsWith('scoreboard: '))?.match(/^scoreboard: (http:\/\/127\.0\.0\.1:(\d+)\/) {2}\(the final: (\S+)\)$/)
    expect(scoreboard).not.toBeNull()
    const port = Number(scoreboard?.[2])
    expect(scoreboard?.[3]).toBe(`http://127.0.0.1:${port}/?match=2022-12-18-argentina-france`)
    expect(messages()).toContain(`operations: http://127.0.0.1:${port}/ops`)
    expect((await get(port, '/')).body.toString()).toContain('<title>Tribune · live scores</title>')
    expect((await get(port, '/ops')).body.toString()).toContain('<title>Tribune · operations</title>')
    child.kill('SIGINT')
    expect(await exited).toBe(0)
  })
})
