import { describe, expect, it } from 'vitest'
import { watchMain } from '../../client/src/cli.js'
import { closestFlag, editDistance } from '../../client/src/flags.js'

async function run (argv: string[]): Promise<{ code: number, out: string[], err: string[] }> {
  const out: string[] = []
  const err: string[] = []
  const code = await watchMain(argv, { out: (l) => out.push(l), err: (l) => err.push(l) })
  return { code, out, err }
}

describe('tribune watch arguments (no broker needed)', () => {
  it('prints usage on --help and exits 0', async () => {
    const { code, out } = await run(['--help'])
    expect(code).toBe(0)
    expect(out.join('\n')).toMatch(/Usage: tribune watch <topic>/)
  })

  it.each([
    [['x/events', '--bogus'], /^tribune watch: unknown option --bogus$/],
    [['x/events', '--form', 'last-5'], /^tribune watch: unknown option --form; did you mean --from\?$/],
    [['x/events', '--conut=3'], /^tribune watch: unknown option --conut; did you mean --count\?$/],
    [['x/events', '--url'], /--url/],
    [['x/events', '--from', 'first-3'], /--from: invalid start "first-3"/],
    [['x/state', '--from', 'all'], /--from applies to feeds only/],
    [['x/events', '--count', '0'], /--count must be a positive integer, got "0"/],
    [['x/events', '--count', '2x'], /--count must be a positive integer/],
    [['x/events', '--url', 'http://h/mqtt'], /--url: unsupported protocol "http:"/],
    [['x/events', '--url', 'nope'], /--url: invalid URL "nope"/],
    [['x/events', '--url', 'ws://h/mqtt', '--url', 'http://h/mqtt'], /--url: unsupported protocol "http:"/],
    [['x/events', '--url', 'mqtt://u:SeCrEt@127.0.0.1:99999999'], /--url: invalid URL "mqtt:\/\/u:\*\*\*@127\.0\.0\.1:99999999"/],
    [['x/events', '--url', 'ws://a/mqtt', '--region', 'ws://b/mqtt'], /--url and --region do not go together/],
    [['x/events', '--region', 'ws://a/mqtt', '--region', ' , '], /--region: region 1 has no URL/],
    [['x/events', '--region', 'ws://a/mqtt,ws://b/mqtt', '--region', 'ws://b/mqtt'], /--region: "ws:\/\/b\/mqtt" is in two regions/],
    [['x/events', '--region', 'ws://a/mqtt', '--region', 'http://b'], /--region: unsupported protocol "http:"/],
    [['x/events', '--region', 'ws://a/mqtt', '--region', 'ws://b/mqtt', '--region-timeout', '0'], /--region-timeout must be a positive integer \(ms\), got "0"/],
    [['x/events', '--url', 'ws://a/mqtt', '--region-timeout', '500'], /--region-timeout needs several regions/],
    [['matches/+/x', '--feed'], /--feed: feed topic "matches\/\+\/x" must not contain wildcards/],
    [['a/#/b'], /invalid topic filter "a\/#\/b"/],
    [[], /missing <topic>/],
    [['a', 'b'], /unexpected argument "b"/]
  ])('%j exits 2 naming the problem', async (argv, message) => {
    const { code, err, out } = await run(argv)
    expect(code).toBe(2)
    expect(out).toEqual([])
    expect(err[0]).toMatch(message)
  })
})

describe('the "did you mean" of every tribune command', () => {
  it('counts a swap of neighbours as one edit', () => {
    expect(editDistance('form', 'from')).toBe(1)
    expect(editDistance('ws-prot', 'ws-port')).toBe(1)
    expect(editDistance('kitten', 'sitting')).toBe(3)
    expect(editDistance('', 'abc')).toBe(3)
  })

  it('suggests the closest flag within 1 edit for short names and 2 for longer ones, else none', () => {
    const watch = ['url', 'from', 'feed', 'count', 'help']
    expect(closestFlag('form', watch)).toBe('--from')
    expect(closestFlag('fed', watch)).toBe('--feed')
    expect(closestFlag('URL', watch)).toBe('--url')
    expect(closestFlag('bogus', watch)).toBeUndefined()
    expect(closestFlag('fxxm', watch)).toBeUndefined() // 2 edits from --from: too far for 4 letters
    expect(closestFlag('log-formt', ['log-level', 'log-format'])).toBe('--log-format')
    expect(closestFlag('max-conection', ['max-connections', 'max-conn-rate'])).toBe('--max-connections')
  })
})

describe('tribune watch without a broker', () => {
  it('says what to check when it never gets an MQTT connection, and stops on abort', async () => {
    const out: string[] = []
    const err: string[] = []
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 1500)
    const code = await watchMain(['matches/x/state', '--url', 'ws://127.0.0.1:1/wrong'], { out: (l) => out.push(l), err: (l) => err.push(l), signal: controller.signal })
    expect(code).toBe(0)
    const hint = err.indexOf('tribune watch: no MQTT connection to ws://127.0.0.1:1/wrong: check the host, the port and, for ws:// or wss://, the path (the broker\'s default is /mqtt)')
    expect(hint).toBeGreaterThanOrEqual(0) // after the error itself, if the transport gave one (here ECONNREFUSED)
    expect(err[hint + 1]).toMatch(/^tribune watch: reconnecting in \d+ ms \(attempt 1\)$/)
    expect(err.filter((l) => l.includes('no MQTT connection')).length).toBe(1) // once, not at every attempt
  })
})
