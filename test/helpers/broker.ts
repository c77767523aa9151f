/**
 * Test plumbing: a real Tribune broker on free ports (port 0), a temporary data dir, cleanup registered on creation.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach } from 'vitest'
import { startBroker, type BrokerNode } from '../../broker/src/main.js'
import type { BrokerOptions } from '../../broker/src/config.js'
import type { Logger } from '../../broker/src/log.js'

const cleanups: Array<() => Promise<void> | void> = []

afterEach(async () => {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()
    await fn?.()
  }
})

/** Registers a cleanup to run after the current test, last registered first. */
export function onCleanup (fn: () => Promise<void> | void): void {
  cleanups.push(fn)
}

/** A new temporary directory, removed after the test. */
export function tempDir (prefix = 'tribune-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  onCleanup(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Starts a broker on 127.0.0.1 with free ports and silent logs (in memory unless `dataDir` is given); closed after the test.
 * Overload protection is off unless asked for: a test's broker shares its event loop with the test's own clients, and
 * the machine with other test files, so its lag measures the test, not the node (test/admission/ turns it on).
 * @param logger where the node logs (default: nowhere)
 */
export async function brokerForTest (options: BrokerOptions = {}, logger?: Logger): Promise<BrokerNode & { tcpUrl: string, wsUrl: string }> {
  const node = await startBroker({ host: '127.0.0.1', port: 0, wsPort: 0, dataDir: ':memory:', logLevel: 'silent', overloadLagMs: 0, ...options }, logger)
  onCleanup(async () => await node.close())
  // The node itself, not a copy: its getters (draining) stay live.
  return Object.assign(node, { tcpUrl: `mqtt://127.0.0.1:${node.tcpPort}`, wsUrl: `ws://127.0.0.1:${node.wsPort}/mqtt` })
}
