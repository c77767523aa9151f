// Tests whether `tribune broker` refuses bad options naming them, lists options on --help, refuses a data dir another
// broker has open (naming it), and stops cleanly on SIGTERM.
import { spawn } from 'node:child_process'
import net, { type AddressInfo } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it, expect } from 'vitest'
import { brokerForTest, tempDir } from '../helpers/broker.js'
import { connect } from '../helpers/mqtt.js'

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

  it.each([
    [['broker', '--port', 'abc'], '--port'],
    [['broker', '--port', '70000'], '--port'],
    [['broker', '--feeds', 'a/#/b'], '--feeds'],
    [['broker', '--bogus'], 'bogus'],
    [['broker', '--log-level', 'loud'], '--log-level'],
    [['broker', '--keepalive-zero', 'maybe'], '--keepalive-zero'],
    [['broker', '--idle-timeout', '500'], '--idle-timeout']
  ])('refuses %j naming the option', async (args, name) => {
    const r = await run(args)
    expect(r.code).toBe(2)
    expect(r.err).toContain(name)
  })

  it('refuses bad environment variables and config files naming them', async () => {
    const env = await run(['broker'], { TRIBUNE_WS_PORT: '-1' })
    expect(env.code).toBe(2)
    expect(env.err).toContain('TRIBUNE_WS_PORT')
    const dir = tempDir()
    const file = join(dir, 'bad.json')
    writeFileSync(file, JSON.stringify({ port: 1883, feedHistory: 0, colour: 'red' }))
    const cfg = await run(['broker', '--config', file])
    expect(cfg.code).toBe(2)
    expect(cfg.err).toContain('feedHistory')
    expect(cfg.err).toContain('colour')
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
  })
})
