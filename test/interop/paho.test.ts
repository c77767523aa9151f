// Tests whether any MQTT 3.1.1 client works with Tribune, by running the Eclipse Paho interoperability client test
// (paho/client_test.py, vendored unchanged, 10 tests: connect and session present, retained messages, zero-length
// client id, offline queueing, overlapping subscriptions, keepalive and will, redelivery on reconnect, SUBACK 0x80,
// `$` topics against `+/+`, unsubscribe) with Python 3 against an in-process broker over TCP; and whether the
// vendored files are still byte for byte upstream's.
//
// The broker's config is paho.json: anonymous clients publish and subscribe to everything (`#`, and `$TopicA/#` by
// name, since a wildcard at the first level never reaches `$` topics) except subscribing to `test/nosubscribe`
// (the deny rule that test_subscribe_failure needs), with persistent sessions allowed for anonymous clients (the
// suite's clients have no credentials and use clean session off). The suite connects with keep alive 0.
import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BrokerOptions } from '../../broker/src/config.js'
import { brokerForTest, onCleanup } from '../helpers/broker.js'

const HERE = import.meta.dirname
const WRAPPER = join(HERE, 'run_paho_client_test.py')
const PAHO = join(HERE, 'paho')

/** The suite's tests (unittest runs them in this order); will_message_test is not one (no `test` prefix). */
const TESTS = ['testBasic', 'test_dollar_topics', 'test_keepalive', 'test_offline_message_queueing',
  'test_overlapping_subscriptions', 'test_redelivery_on_reconnect', 'test_retained_messages', 'test_subscribe_failure',
  'test_unsubscribe', 'test_zero_length_clientid']

interface PahoTest {
  name: string
  outcome: 'pass' | 'fail' | 'error' | 'not run'
  seconds: number
  /** The exception lines the suite printed (its own tracebacks), for a test that did not pass. */
  reasons: string[]
  /** unittest's last line for a failure or error. */
  error?: string
  output: string
}
interface PahoReport { tests: PahoTest[], ran: number, fixtureErrors: string[] }

/**
 * Runs the wrapper against 127.0.0.1:`port`.
 * @returns the wrapper's PAHO-RESULTS report and everything it printed
 * @throws when python3 cannot be started (.ci/run installs it) or the wrapper printed no report
 */
async function runSuite (port: number): Promise<{ report: PahoReport, out: string }> {
  const child = spawn('python3', ['-B', WRAPPER, '--host', '127.0.0.1', '--port', String(port)],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' } })
  onCleanup(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  await new Promise<void>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`cannot run python3 (.ci/run installs it): ${err.message}`)))
    child.once('close', () => resolve())
  })
  const line = out.split('\n').find((l) => l.startsWith('PAHO-RESULTS '))
  if (line === undefined) throw new Error(`the Paho wrapper printed no PAHO-RESULTS line (exit ${String(child.exitCode)}):\n${out}`)
  return { report: JSON.parse(line.slice('PAHO-RESULTS '.length)), out }
}

/** One line per test: outcome, name, seconds, and why it did not pass. */
function table (report: PahoReport): string {
  const rows = report.tests.map((t) => {
    // unittest's own line is "False != True" whenever the suite printed its reason, so it is shown only without one.
    const why = t.outcome === 'pass' ? '' : `  ${(t.reasons.length > 0 ? t.reasons : [t.error ?? '']).join(' | ')}`
    return `  ${t.outcome.padEnd(7)} ${t.name.padEnd(30)} ${t.seconds.toFixed(1).padStart(5)} s${why}`
  })
  const passed = report.tests.filter((t) => t.outcome === 'pass').length
  const fixtures = report.fixtureErrors.map((e) => `  ${e.split('\n').filter((l) => l.trim() !== '').slice(-1)[0]}`)
  return [`Paho client_test.py against Tribune: ${passed} of ${report.tests.length} passed, ${report.ran} ran`, ...rows, ...fixtures].join('\n')
}

describe('Eclipse Paho interoperability client test', () => {
  it('runs the vendored files unchanged (upstream git blob ids in paho/NOTICE)', () => {
    const listed = readFileSync(join(PAHO, 'NOTICE'), 'utf8').split('\n')
      .map((l) => /^([0-9a-f]{40}) {2}(\S+) {2}\S+$/.exec(l)).filter((m) => m !== null)
    expect(listed.map((m) => m[2])).toContain('client_test.py')
    expect(listed.map((m) => m[2])).toContain('mqtt/clients/V311/main.py')
    for (const [, blob, path] of listed) {
      const bytes = readFileSync(join(PAHO, path))
      const id = createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex')
      expect(id, path).toBe(blob)
    }
  })

  it('passes 10 of 10 against a node that lets anonymous clients do everything but subscribe to test/nosubscribe', async () => {
    const config = JSON.parse(readFileSync(join(HERE, 'paho.json'), 'utf8')) as BrokerOptions
    const node = await brokerForTest(config)
    const { report, out } = await runSuite(node.tcpPort)
    console.log(table(report))
    expect(report.tests.map((t) => t.name), out).toEqual(TESTS)
    expect(report.ran, table(report)).toBe(10)
    const failed = report.tests.filter((t) => t.outcome !== 'pass')
    expect(failed.map((t) => `${t.name}: ${t.outcome}: ${t.reasons.join(' | ')}`), table(report)).toEqual([])
    expect(report.tests.filter((t) => t.outcome === 'pass')).toHaveLength(10)
  }, 180_000)
})
