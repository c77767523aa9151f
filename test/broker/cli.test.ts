// Tests whether `tribune broker` refuses bad options naming them (and the flags a config's listeners leave unused,
// with a "did you mean" for a mistyped flag of any command), lists options on --help, prints its version, refuses a
// data dir another broker has open (naming it), logs pretty lines on a terminal and JSON elsewhere, logs each client's
// connect and disconnect in one line without secrets, and stops cleanly on SIGTERM.
import { spawn } from 'node:child_process'
import net, { type AddressInfo } from 'node:net'
import { readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it, expect } from 'vitest'
import { brokerForTest, onCleanup, tempDir } from '../helpers/broker.js'
import { connect, waitFor } from '../helpers/mqtt.js'
import { SAMPLE, secureConfig } from '../helpers/auth.js'
import { loadConfig } from '../../broker/src/config.js'

const BIN = join(import.meta.dirname, '../../bin/tribune.js')

async function run (args: string[], env: Record<string, string> = {}, ms = 10_000): Promise<{ code: number | null, out: string, err: string }> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => { out += d })
    p.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`timed out: ${args.join(' ')}\n${out}\n${err}`)) }, ms)
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out, err }) })
  })
}

describe('tribune broker command line', () => {
  it('lists every option on --help', async () => {
    const r = await run(['broker', '--help'])
    expect(r.code).toBe(0)
    for (const flag of ['--port', '--ws-port', '--host', '--data-dir', '--config', '--feeds', '--feed-history', '--max-packet-size', '--keepalive-zero', '--idle-timeout', '--ws-ping-interval']) {
      expect(r.out).toContain(flag)
    }
  })

  it('keeps its store in data/ under the working directory by default, as --help says, and logs its full path', async () => {
    const help = await run(['broker', '--help'])
    expect(help.out).toContain('(default ./data: a data/ folder in the working directory)')
    const cwd = tempDir()
    const p = spawn(process.execPath, [BIN, 'broker', '--port', '0', '--ws-port', '0'], { cwd })
    let out = ''
    p.stdout.on('data', (d) => { out += d })
    onCleanup(() => { if (p.exitCode === null) p.kill('SIGKILL') })
    await waitFor(() => out.includes('"msg":"broker listening"'), 'the broker listening')
    const listening = JSON.parse(out.split('\n').find((l) => l.includes('"msg":"broker listening"')) ?? '') as { dataDir: string }
    expect(listening.dataDir).toBe(join(realpathSync(cwd), 'data'))
    expect(statSync(join(cwd, 'data')).isDirectory()).toBe(true)
    const exited = new Promise((resolve) => p.on('close', resolve))
    p.kill('SIGTERM')
    expect(await exited).toBe(0)
  })

  it.each([
    [['broker', '--port', 'abc'], '--port'],
    [['broker', '--port', '70000'], '--port'],
    [['broker', '--feeds', 'a/#/b'], '--feeds'],
    [['broker', '--bogus'], 'bogus'],
    [['broker', '--log-level', 'loud'], '--log-level'],
    [['broker', '--log-format', 'xml'], '--log-format: must be pretty or json (got "xml")'],
    [['broker', '--feeds', 'matches/#/x'], '--feeds[0]: must be an MQTT topic filter without $ prefix ("+" and "#" only as whole levels, "#" last) (got "matches/#/x")'],
    [['broker', '--max-conn-burst', '0'], '--max-conn-burst: must be >= 1 (got 0)'],
    [['broker', '--log-level', 'loud'], '--log-level: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")'],
    [['broker', '--keepalive-zero', 'maybe'], '--keepalive-zero'],
    [['broker', '--idle-timeout', '500'], '--idle-timeout'],
    // A secret in a bad value is not echoed: a URL's password as ***.
    [['broker', '--redis', 'redis://user:s3cret@host:6379/x/y'], '(got "redis://***@host:6379/x/y")']
  ])('refuses %j naming the option', async (args, name) => {
    const r = await run(args)
    expect(r.code).toBe(2)
    expect(r.err).toContain(name)
    expect(r.err).not.toContain('s3cret')
  })

  it('refuses bad environment variables and config files naming them', async () => {
    const env = await run(['broker'], { TRIBUNE_WS_PORT: '-1' })
    expect(env.code).toBe(2)
    expect(env.err).toContain('TRIBUNE_WS_PORT')
    const format = await run(['broker'], { TRIBUNE_LOG_FORMAT: 'text' })
    expect(format.code).toBe(2)
    expect(format.err).toContain('TRIBUNE_LOG_FORMAT: must be pretty or json (got "text")')
    const dir = tempDir()
    const file = join(dir, 'bad.json')
    writeFileSync(file, JSON.stringify({ port: 1883, feedHistory: 0, colour: 'red' }))
    const cfg = await run(['broker', '--config', file])
    expect(cfg.code).toBe(2)
    expect(cfg.err).toContain('feedHistory')
    expect(cfg.err).toContain('colour')
    // A fraction, and a number too big for a double (JSON.parse gives Infinity), in the project's words.
    for (const [text, shown] of [['{"maxConnRate": 1.5}', '1.5'], ['{"maxConnRate": 1e400}', 'Infinity']]) {
      writeFileSync(file, text)
      const r = await run(['broker', '--config', file])
      expect(r.code).toBe(2)
      expect(r.err).toContain(`maxConnRate: must be a whole number (got ${shown})`)
    }
    writeFileSync(file, '{ not json')
    const broken = await run(['broker', '--config', file])
    expect(broken.code).toBe(2)
    expect(broken.err).toContain('not valid JSON')
  })

  it('exits 1 at once, naming the address, when a port is taken', async () => {
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as AddressInfo).port
    try {
      for (const args of [['--port', String(port), '--ws-port', '0'], ['--port', '0', '--ws-port', String(port)]]) {
        const r = await run(['broker', '--data-dir', ':memory:', ...args])
        expect(r.code).toBe(1)
        expect(r.err).toContain(`127.0.0.1:${port}`)
        expect(r.err).toContain('EADDRINUSE')
      }
    } finally {
      blocker.close()
    }
  })

  it('exits 1 naming the data dir when another broker has it open', async () => {
    const dataDir = join(tempDir(), 'data')
    await brokerForTest({ dataDir })
    const r = await run(['broker', '--data-dir', dataDir, '--port', '0', '--ws-port', '0'])
    expect(r.code).toBe(1)
    expect(r.err).toContain(`data dir ${dataDir} is in use by another broker`)
  })

  it('serves, then exits 0 on SIGTERM after closing clients', async () => {
    const dir = tempDir()
    const p = spawn(process.execPath, [BIN, 'broker', '--port', '0', '--ws-port', '0', '--data-dir', join(dir, 'data')])
    let out = ''
    p.stdout.on('data', (d) => { out += d })
    const tcpPort = await new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 10_000)
      p.stdout.on('data', () => {
        const m = /"tcpPort":(\d+)/.exec(out)
        if (m !== null) { clearTimeout(t); resolve(Number(m[1])) }
      })
    })
    const c = await connect(`mqtt://127.0.0.1:${tcpPort}`)
    const closed = new Promise((resolve) => c.once('close', resolve))
    const exited = new Promise<number | null>((resolve) => p.on('close', resolve))
    p.kill('SIGTERM')
    await closed
    expect(await exited).toBe(0)
    expect(out).toContain('broker closed')
    // Not a terminal: JSON lines.
    for (const line of out.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow()
  })
})

describe('tribune --version', () => {
  it.each([['--version'], ['-v']])('%s prints the version in package.json', async (flag) => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }
    const r = await run([flag])
    expect(r.code).toBe(0)
    expect(r.out).toBe(`tribune ${version}\n`)
  })
})

describe('a mistyped flag', () => {
  it.each([
    [['watch', 'matches/x/events', '--form', 'last-5'], 'tribune watch: unknown option --form; did you mean --from?'],
    [['broker', '--prot', '1884'], 'tribune broker: unknown option --prot; did you mean --port?'],
    [['broker', '--bogus'], 'tribune broker: unknown option --bogus'],
    [['cluster', '--nodse', '2'], 'tribune cluster: unknown option --nodse; did you mean --nodes?'],
    [['replay', 'x.json', '--sped', '3'], 'tribune replay: unknown option --sped; did you mean --speed?'],
    [['demo', '--fiel', 'x.json'], 'tribune demo: unknown option --fiel; did you mean --file?'],
    [['hash-password', '--api-kye'], 'tribune hash-password: unknown option --api-kye; did you mean --api-key?']
  ])('%j exits 2 naming it and the flag meant, if one is close', async (args, message) => {
    const r = await run(args)
    expect(r.code).toBe(2)
    expect(r.err.split('\n')[0]).toBe(message)
  })
})

describe('flags and a config file with listeners', () => {
  const configFile = (content: Record<string, unknown>): string => {
    const file = join(tempDir(), 'listeners.json')
    writeFileSync(file, JSON.stringify({ dataDir: ':memory:', listeners: [{ protocol: 'mqtt', port: 0 }, { protocol: 'ws', port: 0 }], ...content }))
    return file
  }

  it('refuses --port and --ws-port, from a flag, a variable or the file, saying why', async () => {
    const file = configFile({})
    const flags = await run(['broker', '--config', file, '--port', '1884', '--ws-port', '8081'])
    expect(flags.code).toBe(2)
    expect(flags.err).toContain(`--port: not used when the config file sets "listeners" (each listener has its own port; got 1884): change the listeners in ${file}, or leave it out`)
    expect(flags.err).toContain(`--ws-port: not used when the config file sets "listeners" (each listener has its own port; got 8081)`)
    const env = await run(['broker', '--config', file], { TRIBUNE_PORT: '1884' })
    expect(env.code).toBe(2)
    expect(env.err).toContain('TRIBUNE_PORT: not used when the config file sets "listeners"')
    const inFile = configFile({ wsPort: 9000 })
    const own = await run(['broker', '--config', inFile])
    expect(own.code).toBe(2)
    expect(own.err).toContain(`${inFile}: wsPort: not used when the config file sets "listeners" (each listener has its own port; got 9000)`)
  })

  it('applies --host and --ws-path to the listeners that set none, and refuses them when none would use them', async () => {
    const { planListeners } = await import('../../broker/src/listeners/plan.js')
    const open = loadConfig({ config: configFile({}), host: '127.0.0.2', 'ws-path': '/live' }, {})
    expect(planListeners(open).map((l) => [l.protocol, l.host, l.path])).toEqual([['mqtt', '127.0.0.2', '/live'], ['ws', '127.0.0.2', '/live']])
    const set = configFile({ listeners: [{ protocol: 'mqtt', host: '127.0.0.1', port: 0 }, { protocol: 'ws', host: '127.0.0.1', port: 0, path: '/mqtt' }] })
    expect(() => loadConfig({ config: set, host: '0.0.0.0' }, {})).toThrow('--host: not used when the config file sets "listeners" (every listener sets its own host; got "0.0.0.0")')
    expect(() => loadConfig({ config: set }, { TRIBUNE_WS_PATH: '/live' })).toThrow('TRIBUNE_WS_PATH: not used when the config file sets "listeners" (no WebSocket listener goes without its own path; got "/live")')
  })
})

/** Log output without its colours. */
const plain = (text: string): string => text.replace(/\x1b\[[0-9;]*m/g, '')

/**
 * `tribune broker --port 0 --ws-port 0 --data-dir :memory: ...args` on a pseudo-terminal (`script`, util-linux), as a
 * person at a terminal runs it; `ctrlC()` types Ctrl-C there. Killed after the test if still running.
 */
function onTerminal (args: string[]): { out: () => string, ctrlC: () => void, exited: Promise<number | null> } {
  const command = [process.execPath, BIN, 'broker', '--port', '0', '--ws-port', '0', '--data-dir', ':memory:', ...args].map((a) => JSON.stringify(a)).join(' ')
  // `exec`: the shell `script` starts must not stay between the terminal and the broker (dash, CI's /bin/sh, would
  // otherwise die of the Ctrl-C itself and report 130 whatever the broker did).
  const p = spawn('script', ['-qefc', `exec ${command}`, '/dev/null'], { env: { ...process.env, SHELL: '/bin/sh' } })
  let out = ''
  p.stdout.on('data', (d) => { out += d })
  const exited = new Promise<number | null>((resolve) => p.on('close', resolve))
  onCleanup(() => {
    if (p.exitCode !== null) return
    // The broker itself first: closing its terminal only sends it SIGHUP, which reloads it.
    const pid = /\(tribune\/(\d+)\)|"pid":(\d+)/.exec(plain(out))
    if (pid !== null) process.kill(Number(pid[1] ?? pid[2]), 'SIGKILL')
    p.kill('SIGKILL')
  })
  return { out: () => out, ctrlC: () => { p.stdin.write('\x03') }, exited }
}

const PRETTY_PREFIX = /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(tribune\/\d+\): /

describe('log format', () => {
  it('is pretty on a terminal: one readable, coloured line per event (a client\'s connect too); Ctrl-C stops the node', async () => {
    const t = onTerminal([])
    await waitFor(() => /"tcpPort":\d+/.test(plain(t.out())), 'the broker listening')
    const lines = (): string[] => plain(t.out()).split('\r\n')
    // Its CONNACK also shows that the node runs past its start, where it handles SIGINT.
    const c = await connect(`mqtt://127.0.0.1:${/"tcpPort":(\d+)/.exec(plain(t.out()))?.[1] ?? ''}`, { clientId: 'tty-viewer' })
    await waitFor(() => lines().some((l) => l.includes('client connected')), 'the connect line')
    const line = lines().find((l) => l.includes('client connected')) ?? ''
    expect(line).toMatch(PRETTY_PREFIX)
    expect(line.replace(PRETTY_PREFIX, '')).toBe('client connected ' +
      `{"clientId":"tty-viewer","identity":"local","role":"operator","method":"local","clean":true,"transport":"mqtt","listener":"mqtt:0","peer":"127.0.0.1:${String((c.stream as net.Socket).localPort)}"}`)
    expect(lines().find((l) => l.includes('broker listening'))).toMatch(new RegExp(`${PRETTY_PREFIX.source}broker listening \\{"id":`))
    expect(t.out()).toContain('\x1b[') // colours
    expect(lines().filter((l) => l.startsWith('{'))).toEqual([]) // no JSON
    t.ctrlC()
    expect(await t.exited).toBe(0)
    expect(plain(t.out())).toMatch(/INFO \(tribune\/\d+\): broker closed/)
  })

  it('is JSON on a terminal with --log-format json', async () => {
    const t = onTerminal(['--log-format', 'json'])
    await waitFor(() => t.out().includes('"msg":"broker listening"'), 'the broker listening')
    const listening = JSON.parse(t.out().split('\r\n').find((l) => l.includes('"msg":"broker listening"')) ?? '') as { tcpPort: number }
    await connect(`mqtt://127.0.0.1:${listening.tcpPort}`) // past its start, where it handles SIGINT
    t.ctrlC()
    expect(await t.exited).toBe(0)
    const lines = t.out().replace('^C', '').trim().split('\r\n')
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('broker closed')
  })

  it('is pretty without colours into a pipe with --log-format pretty', async () => {
    const p = spawn(process.execPath, [BIN, 'broker', '--port', '0', '--ws-port', '0', '--data-dir', ':memory:', '--log-format', 'pretty'])
    let out = ''
    p.stdout.on('data', (d) => { out += d })
    onCleanup(() => { if (p.exitCode === null) p.kill('SIGKILL') })
    await waitFor(() => out.includes('broker listening'), 'the broker listening')
    const closed = new Promise((resolve) => p.on('close', resolve))
    p.kill('SIGTERM')
    expect(await closed).toBe(0)
    expect(out).not.toContain('\x1b[')
    expect(out).toMatch(new RegExp(`${PRETTY_PREFIX.source}broker listening \\{"id":`, 'm'))
    expect(out).toMatch(new RegExp(`${PRETTY_PREFIX.source}broker closed`, 'm'))
  })
})

describe('connection log', () => {
  it('logs each connect and disconnect at info in one line: client id, identity, role, transport, peer, and no secret', async () => {
    const cfg = secureConfig() as Record<string, unknown>
    cfg.logLevel = 'info'
    const file = join(tempDir(), 'secure.json')
    writeFileSync(file, JSON.stringify(cfg))
    const p = spawn(process.execPath, [BIN, 'broker', '--config', file])
    let out = ''
    p.stdout.on('data', (d) => { out += d })
    p.stderr.on('data', (d) => { out += d })
    onCleanup(() => { if (p.exitCode === null) p.kill('SIGKILL') })
    const lines = (): any[] => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    await waitFor(() => lines().some((l) => l.msg === 'broker listening') || p.exitCode !== null, 'the broker listening')
    const ports = lines().find((l) => l.msg === 'broker listening').ports as Record<string, number>
    const publisher = await connect(`mqtt://127.0.0.1:${ports['mqtt:#2']}`, { clientId: 'scores-1', username: SAMPLE.publisher.username, password: SAMPLE.publisher.password })
    const viewer = await connect(`ws://127.0.0.1:${ports['ws:#0']}/mqtt`, { clientId: 'tv-1', username: 'apikey', password: SAMPLE.apiKey, clean: false })
    const publisherPeer = `127.0.0.1:${String((publisher.stream as net.Socket).localPort)}`
    const line = (msg: string, clientId: string): any => lines().find((l) => l.msg === msg && l.clientId === clientId)
    await waitFor(() => line('client connected', 'scores-1') !== undefined && line('client connected', 'tv-1') !== undefined, 'two connect lines')
    const scores = { level: 30, clientId: 'scores-1', identity: 'user:scores-svc', role: 'publisher', method: 'password', clean: true, transport: 'mqtt', listener: 'mqtt:#2', peer: publisherPeer }
    const tv = { level: 30, clientId: 'tv-1', identity: 'apikey:tv-app', role: 'viewer', method: 'apikey', clean: false, transport: 'ws', listener: 'ws:#0' }
    expect(line('client connected', 'scores-1')).toMatchObject(scores)
    expect(line('client connected', 'tv-1')).toMatchObject(tv)
    expect(line('client connected', 'tv-1').peer).toMatch(/^127\.0\.0\.1:\d+$/)
    await publisher.endAsync()
    viewer.stream.destroy() // a connection lost, not a DISCONNECT
    await waitFor(() => line('client disconnected', 'scores-1') !== undefined && line('client disconnected', 'tv-1') !== undefined, 'two disconnect lines')
    expect(line('client disconnected', 'scores-1')).toMatchObject(scores)
    expect(line('client disconnected', 'tv-1')).toMatchObject({ ...tv, peer: line('client connected', 'tv-1').peer })
    expect(out).not.toContain(SAMPLE.publisher.password)
    expect(out).not.toContain(SAMPLE.apiKey)
    const exited = new Promise((resolve) => p.on('close', resolve))
    p.kill('SIGTERM')
    expect(await exited).toBe(0)
  })
})
