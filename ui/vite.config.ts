// Builds the pages (index.html: the scoreboard, ops.html: the operations page) into dist/ui, which the broker serves
// (broker/src/listeners/pages.ts). `npm run build` runs it after tsc and prints each page's size, gzipped, with every
// file it loads (its HTML, scripts and styles, MQTT.js included).
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { defineConfig, type Plugin } from 'vite'

const here = fileURLToPath(new URL('.', import.meta.url))

/** The goal of issue 16 for a page on a TV browser, MQTT.js included, gzipped. */
const GOAL_BYTES = 100 * 1024

/** Prints, once the bundle is written, each page's bytes gzipped: its HTML and every chunk and stylesheet it loads. */
function pageSizes (): Plugin {
  let silent = false
  return {
    name: 'tribune-page-sizes',
    apply: 'build',
    configResolved (config) {
      silent = config.logLevel === 'silent'
    },
    writeBundle (_options, bundle) {
      if (silent) return
      const gz = (text: string | Uint8Array): number => gzipSync(text, { level: 9 }).length
      const files = new Map(Object.entries(bundle))
      const lines: string[] = []
      for (const [name, file] of files) {
        if (file.type !== 'asset' || !name.endsWith('.html')) continue
        const html = String(file.source)
        // Every file the page names, then what those chunks import, transitively.
        const wanted = new Set<string>([...html.matchAll(/(?:src|href)="\.?\/?([^"]+\.(?:js|css))"/g)].map((m) => m[1]))
        for (const f of wanted) {
          const chunk = files.get(f)
          if (chunk?.type === 'chunk') for (const i of [...chunk.imports, ...(chunk.viteMetadata?.importedCss ?? [])]) wanted.add(i)
        }
        let total = gz(html)
        let raw = html.length
        for (const f of wanted) {
          const out = files.get(f)
          if (out === undefined) continue
          const body = out.type === 'chunk' ? out.code : out.source
          total += gz(body)
          raw += typeof body === 'string' ? Buffer.byteLength(body) : body.length
        }
        const kb = (n: number): string => `${(n / 1024).toFixed(1)} KB`
        lines.push(`  ${name.padEnd(11)} ${kb(total)} gzipped (${kb(raw)} raw), ${wanted.size + 1} files${total > GOAL_BYTES ? `: over the ${kb(GOAL_BYTES)} goal` : ''}`)
      }
      console.log(`page sizes, MQTT.js included:\n${lines.join('\n')}`)
    }
  }
}

const modules = fileURLToPath(new URL('../node_modules/', import.meta.url))
const shim = (file: string): string => fileURLToPath(new URL(`./mqtt-browser/${file}`, import.meta.url))

/**
 * MQTT.js for the pages, built from its own modules rather than its prebuilt browser bundle (105 KB gzipped, which
 * carries Node's url module with punycode, an LRU cache for MQTT 5 topic aliases, and transports a page never uses):
 * the same client and WebSocket transport, with the few Node modules it needs from their npm polyfills (buffer,
 * events, process) and small stand-ins for the rest (mqtt-browser/).
 */
function mqttForBrowsers (): Plugin {
  const unused = new Set(['./tcp', './tls', './socks', './wx', './ali'])
  return {
    name: 'tribune-mqtt-for-browsers',
    enforce: 'pre',
    resolveId (source, importer) {
      if (importer !== undefined && /[\\/]mqtt[\\/]build[\\/]lib[\\/]connect[\\/]index\.js$/.test(importer) && unused.has(source)) return shim('empty.ts')
      return null
    }
  }
}

export default defineConfig({
  resolve: {
    alias: [
      { find: /^mqtt$/, replacement: `${modules}mqtt/build/index.js` },
      { find: /^url$/, replacement: shim('url.ts') },
      { find: /^debug$/, replacement: shim('debug.cjs') },
      { find: /^lru-cache$/, replacement: shim('lru-cache.ts') },
      { find: /^ws$/, replacement: shim('empty.ts') },
      { find: /^buffer\/?$/, replacement: `${modules}buffer/index.js` },
      { find: /^events\/?$/, replacement: `${modules}events/events.js` },
      { find: /^process\/?$/, replacement: `${modules}process/browser.js` }
    ]
  },
  root: here,
  base: './',
  logLevel: 'warn',
  publicDir: false,
  build: {
    outDir: '../dist/ui',
    emptyOutDir: true,
    target: 'es2020',
    reportCompressedSize: false,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 400,
    rolldownOptions: {
      input: Object.fromEntries(readdirSync(here).filter((f) => f.endsWith('.html')).map((f) => [f.replace(/\.html$/, ''), `${here}${f}`]))
    }
  },
  plugins: [mqttForBrowsers(), pageSizes()]
})
