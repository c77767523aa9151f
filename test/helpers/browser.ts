/**
 * Test plumbing for the pages (ui/): Debian's chromium driven by playwright-core (the tests skip without it), the
 * built pages the broker serves (dist/ui, built here when missing or older than their sources), screenshots under
 * test/artifacts/, and the page's own record of when each feed line was rendered.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { build } from 'vite'
import { chromium, type Browser, type Page } from 'playwright-core'
import { onCleanup } from './broker.js'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** True when the browser tests can run. */
export const HAS_CHROMIUM = existsSync(CHROMIUM)
const ROOT = join(import.meta.dirname, '../..')
/** Screenshots taken by the tests (ignored by git). */
export const ARTIFACTS = join(ROOT, 'test/artifacts')

/** The newest modification time under `dir`, ms. */
function newest (dir: string): number {
  let t = 0
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    const s = statSync(path)
    t = Math.max(t, s.isDirectory() ? newest(path) : s.mtimeMs)
  }
  return t
}

/**
 * Makes sure dist/ui holds the pages as the sources are now (`npm run build` does it for `npm test`; a test file run
 * alone after editing ui/ or client/src gets them rebuilt). One build at a time across the test processes: a lock
 * directory, taken over when older than 2 minutes (a process that died holding it).
 */
export async function pagesBuilt (): Promise<void> {
  const index = join(ROOT, 'dist/ui/index.html')
  const fresh = (): boolean => existsSync(index) && statSync(index).mtimeMs >= Math.max(newest(join(ROOT, 'ui')), newest(join(ROOT, 'client/src')))
  if (fresh()) return
  const lock = join(ROOT, 'dist/.ui-build-lock')
  mkdirSync(join(ROOT, 'dist'), { recursive: true })
  for (;;) {
    try {
      mkdirSync(lock)
      break
    } catch {
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true })
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  try {
    if (!fresh()) await build({ configFile: join(ROOT, 'ui/vite.config.ts'), logLevel: 'silent' })
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

/** Starts headless chromium; closed after the test. */
export async function launchBrowser (): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  onCleanup(async () => await browser.close())
  return browser
}

/** When a feed line appeared, by the page's clock (the machine's: the test compares it with its own Date.now()). */
export interface Rendered {
  seq: number
  id: string
  type: string
  /** Inserted in the DOM, ms since 1970. */
  at: number
  /** The next frame after it (painted), ms since 1970. */
  paintedAt: number
}

/**
 * A new page (1280 x 800) whose errors are collected in `errors`, and which records in `window.__rendered` when each
 * feed line (`li[data-seq]`) appears, and in `window.__linkStates` each state of its connection badge (a
 * MutationObserver installed before the page's own script runs).
 */
export async function newPage (browser: Browser): Promise<{ page: Page, errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()) })
  await page.addInitScript(() => {
    const w = window as unknown as { __rendered: Rendered[], __linkStates: string[] }
    w.__rendered = []
    w.__linkStates = []
    new MutationObserver((records) => {
      const at = Date.now()
      for (const r of records) {
        const target = r.target as HTMLElement
        if (r.type === 'attributes' && target.id === 'link') {
          const state = target.dataset.state ?? ''
          if (w.__linkStates.at(-1) !== state) w.__linkStates.push(state)
          continue
        }
        for (const node of Array.from(r.addedNodes)) {
          if (!(node instanceof HTMLLIElement) || node.dataset.seq === undefined) continue
          const entry = { seq: Number(node.dataset.seq), id: node.dataset.id ?? '', type: node.dataset.type ?? '', at, paintedAt: 0 }
          w.__rendered.push(entry)
          requestAnimationFrame(() => { entry.paintedAt = Date.now() })
        }
      }
    }).observe(document, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-state'] })
  })
  return { page, errors }
}

/** Feed lines rendered so far (see {@link newPage}). */
export async function rendered (page: Page): Promise<Rendered[]> {
  return await page.evaluate(() => (window as unknown as { __rendered: Rendered[] }).__rendered)
}

/** The connection states the page's badge (`#link`) went through, in order, each change once. */
export async function linkStates (page: Page): Promise<string[]> {
  return await page.evaluate(() => (window as unknown as { __linkStates: string[] }).__linkStates)
}

/** Saves a screenshot of `page` as test/artifacts/<name>.png. */
export async function screenshot (page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const path = join(ARTIFACTS, `${name}.png`)
  await page.screenshot({ path })
  return path
}
