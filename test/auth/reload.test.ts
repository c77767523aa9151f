// Tests whether a config reload (SIGHUP to `tribune broker`) revokes an API key without a restart: the revoked key's
// connection is closed and the key is refused afterwards (CONNACK 4), while everybody else stays connected; an operator
// demoted to viewer while holding `$SYS/#` is disconnected, and refused `$SYS/#` when back.
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it, expect } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { secureConfig, SAMPLE, token } from '../helpers/auth.js'
import { apiKeyDigest } from '../../broker/src/auth/secrets.js'
import { onCleanup, tempDir } from '../helpers/broker.js'
import { waitFor } from '../helpers/mqtt.js'

const BIN = join(import.meta.dirname, '../../bin/tribune.js')
const KIOSK = 'kiosk-key-for-the-reload-test-0123456789'

describe('config reload', () => {
  it('revokes an API key on SIGHUP and disconnects only its clients', async () => {
    const dir = tempDir()
    const file = join(dir, 'tribune.json')
    const cfg = secureConfig() as any
    delete cfg.logLevel
    cfg.auth.apiKeys.push({ id: 'kiosk', sha256: apiKeyDigest(KIOSK), role: 'viewer' })
    writeFileSync(file, JSON.stringify(cfg))
    const p = spawn(process.execPath, [BIN, 'broker', '--config', file])
    onCleanup(() => { p.kill('SIGKILL') })
    let out = ''
    p.stdout.on('data', (d) => { out += d })
    await waitFor(() => out.includes('"ports"'), 'the broker to listen')
    const ports = JSON.parse(out.split('\n').find((l) => l.includes('"ports"')) ?? '{}').ports as Record<string, number>
    const ws = `ws://127.0.0.1:${ports[Object.keys(ports).find((n) => n.startsWith('ws:')) ?? '']}/mqtt`

    const connect = async (opts: object): Promise<MqttClient> => {
      const c = await mqtt.connectAsync(ws, { reconnectPeriod: 0, ...opts })
      onCleanup(async () => { await c.endAsync(true) })
      return c
    }
    const kiosk = await connect({ username: 'apikey', password: KIOSK })
    const tv = await connect({ username: 'apikey', password: SAMPLE.apiKey })
    const anon = await connect({})
    let kioskClosed = false
    kiosk.on('close', () => { kioskClosed = true })

    cfg.auth.apiKeys.find((k: { id: string }) => k.id === 'kiosk').revoked = true
    writeFileSync(file, JSON.stringify(cfg))
    p.kill('SIGHUP')
    await waitFor(() => out.includes('auth reloaded'), 'the reload')
    await waitFor(() => kioskClosed, 'the revoked key to be disconnected')
    expect(tv.connected).toBe(true)
    expect(anon.connected).toBe(true)
    expect(out).toContain('"disconnected":1')
    const again = await mqtt.connectAsync(ws, { reconnectPeriod: 0, username: 'apikey', password: KIOSK }).catch((err: { code?: number }) => err)
    expect((again as { code?: number }).code).toBe(4)
    // A demoted account loses its rights at once; a JWT whose secret is gone is disconnected.
    const tcp = `mqtt://127.0.0.1:${ports[Object.keys(ports).find((n) => n.startsWith('mqtt:')) ?? '']}`
    const ops = await mqtt.connectAsync(tcp, { reconnectPeriod: 0, ...SAMPLE.operator })
    onCleanup(async () => { await ops.endAsync(true) })
    expect(await ops.subscribeAsync('$SYS/#')).toEqual([{ topic: '$SYS/#', qos: 0 }])
    const jwtClient = await connect({ username: 'jwt', password: await token({ sub: 'fan' }) })
    let jwtClosed = false
    jwtClient.on('close', () => { jwtClosed = true })
    cfg.auth.users.find((u: { username: string }) => u.username === 'ops').role = 'viewer'
    cfg.auth.jwt.secrets = ['a-brand-new-secret-after-rotation-0123456789']
    writeFileSync(file, JSON.stringify(cfg))
    const reloads = out.split('auth reloaded').length
    p.kill('SIGHUP')
    await waitFor(() => out.split('auth reloaded').length > reloads, 'the second reload')
    await waitFor(() => jwtClosed, 'the JWT client to be disconnected')
    // The demoted operator held `$SYS/#`, which a viewer may not: disconnected, and refused it when back.
    await waitFor(() => !ops.connected, 'the demoted operator to be disconnected')
    const demoted = await mqtt.connectAsync(tcp, { reconnectPeriod: 0, ...SAMPLE.operator })
    onCleanup(async () => { await demoted.endAsync(true) })
    expect(JSON.stringify(await demoted.subscribeAsync('$SYS/#').catch((e: Error) => e))).toContain('128')
    expect(demoted.connected).toBe(true)
    // A reload with a broken file is refused and the old configuration stays in force.
    writeFileSync(file, '{ broken')
    p.kill('SIGHUP')
    await waitFor(() => out.includes('reload refused'), 'the refusal')
    expect(tv.connected).toBe(true)
    const exited = new Promise((resolve) => p.on('close', resolve))
    p.kill('SIGTERM')
    expect(await exited).toBe(0)
  })
})
