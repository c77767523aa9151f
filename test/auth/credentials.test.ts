// Tests whether bad credentials are refused with the right CONNACK code and nothing secret is logged: JWTs that are
// expired, not yet valid, wrongly signed, for another audience or issuer; unknown and revoked API keys; wrong
// passwords; untrusted or unknown client certificates; methods a listener does not accept; client id takeover by
// another identity; failed logins slowed per address; persistent sessions never get a topic they may not read.
import { Writable } from 'node:stream'
import { describe, it, expect } from 'vitest'
import mqtt, { type IClientOptions } from 'mqtt'
import { pino } from 'pino'
import { SignJWT } from 'jose'
import { startBroker, type BrokerNode } from '../../broker/src/main.js'
import { secureConfig, SAMPLE, token, clientCert } from '../helpers/auth.js'
import { onCleanup } from '../helpers/broker.js'
import { collect, waitFor } from '../helpers/mqtt.js'

/** The example config; failed logins wait at most `maxDelayMs` (short, except where the delay itself is tested). */
async function secureBroker (allMethods = false, maxDelayMs = 200): Promise<BrokerNode & { logs: string[], url: (p: string) => string }> {
  const logs: string[] = []
  const sink = new Writable({ write (chunk, _enc, cb) { logs.push(chunk.toString()); cb() } })
  const cfg = secureConfig(allMethods) as { auth: { maxFailedLoginDelayMs?: number } }
  cfg.auth.maxFailedLoginDelayMs = maxDelayMs
  const node = await startBroker(cfg as never, pino({ level: 'debug' }, sink))
  onCleanup(async () => await node.close())
  const url = (protocol: string): string => {
    const port = node.ports[Object.keys(node.ports).find((n) => n.startsWith(`${protocol}:`)) ?? '']
    return protocol.startsWith('ws') ? `${protocol}://127.0.0.1:${port}/mqtt` : `${protocol}://127.0.0.1:${port}`
  }
  return { ...node, logs, url }
}

/** The CONNACK return code of a connect attempt (0 when accepted). */
async function code (url: string, opts: IClientOptions): Promise<number> {
  try {
    const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 8000, ...opts })
    onCleanup(async () => { await c.endAsync(true) })
    return 0
  } catch (err) {
    return (err as { code?: number }).code ?? -1
  }
}

describe('credentials', () => {
  it('refuses bad JWTs with CONNACK 4', async () => {
    const node = await secureBroker()
    const ws = node.url('ws')
    const jwt = async (t: Promise<string>): Promise<number> => await code(ws, { username: 'jwt', password: await t })
    expect(await jwt(token({ sub: 'ok' }))).toBe(0)
    expect(await jwt(token({ sub: 'late' }, { expiresIn: Math.floor(Date.now() / 1000) - 60 }))).toBe(4)
    expect(await jwt(token({ sub: 'early' }, { notBefore: Math.floor(Date.now() / 1000) + 600 }))).toBe(4)
    expect(await jwt(token({ sub: 'forged' }, { secret: 'another-secret-that-is-long-enough-0123' }))).toBe(4)
    expect(await jwt(token({ sub: 'aud' }, { audience: 'someone-else' }))).toBe(4)
    expect(await jwt(token({ sub: 'iss' }, { issuer: 'https://evil.example.com' }))).toBe(4)
    expect(await code(ws, { username: 'jwt', password: 'not.a.token' })).toBe(4)
    const noExp = await new SignJWT({ sub: 'forever' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(SAMPLE.issuer).setAudience(SAMPLE.audience)
      .sign(new TextEncoder().encode(SAMPLE.hs256))
    expect(await code(ws, { username: 'jwt', password: noExp })).toBe(4)
    expect(await jwt(token({ sub: 'role', role: 'admin' }))).toBe(5)
  })

  it('refuses unknown and revoked API keys, wrong passwords, and methods a listener does not accept', async () => {
    const node = await secureBroker()
    const ws = node.url('ws')
    const tcp = node.url('mqtt')
    expect(await code(ws, { username: 'apikey', password: SAMPLE.apiKey })).toBe(0)
    expect(await code(ws, { username: 'apikey', password: 'guessed-key' })).toBe(4)
    expect(await code(tcp, { username: SAMPLE.publisher.username, password: 'wrong' })).toBe(4)
    expect(await code(tcp, { username: 'nobody', password: 'x' })).toBe(4)
    expect(await code(tcp, { ...SAMPLE.publisher })).toBe(0)
    // The MQTT listener takes API keys, JWTs and passwords, not anonymous clients; WebSocket takes no passwords.
    expect(await code(tcp, { username: 'apikey', password: SAMPLE.apiKey })).toBe(0)
    expect(await code(tcp, {})).toBe(5)
    expect(await code(ws, { ...SAMPLE.operator })).toBe(5)
    expect(await code(ws, {})).toBe(0)
  })

  it('maps trusted client certificates to identities and refuses unknown or untrusted ones', async () => {
    const node = await secureBroker()
    const tls = node.url('mqtts')
    expect(await code(tls, clientCert('scores-svc'))).toBe(0)
    expect(await code(tls, clientCert('stranger'))).toBe(5)
    expect(await code(tls, clientCert('rogue'))).toBe(5) // CN scores-svc, but signed by a CA the broker does not trust
    expect(node.logs.join('')).toContain('client certificate not trusted')
    expect(await code(tls, { ca: clientCert('scores-svc').ca, servername: 'localhost', ...SAMPLE.publisher })).toBe(0)
  })

  it('lets operators, and only them, publish to $admin topics', async () => {
    const node = await secureBroker(true)
    const ops = await mqtt.connectAsync(node.url('mqtt'), { reconnectPeriod: 0, ...SAMPLE.operator })
    onCleanup(async () => { await ops.endAsync(true) })
    const got = collect(ops)
    await ops.subscribeAsync('$admin/#', { qos: 1 })
    // An admin request (test/admin/ has the commands): the request itself, stamped with who sent it, and its answer.
    await ops.publishAsync('$admin/all/node.stats', '{"requestId":"p1"}', { qos: 1 })
    await waitFor(() => got.length === 2, 'the $admin request and its answer')
    const viewer = await mqtt.connectAsync(node.url('ws'), { reconnectPeriod: 0 })
    const closed = new Promise((resolve) => viewer.once('close', resolve))
    viewer.publish('$admin/all/node.stats', '{"requestId":"p2"}', { qos: 1 })
    await closed
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(got.map((m) => m.topic).sort()).toEqual(['$admin/all/node.stats', `$admin/response/${String(ops.options.clientId)}/p1`])
    expect(got.find((m) => m.topic === '$admin/all/node.stats')?.json.from).toMatchObject({ identity: 'user:ops', role: 'operator' })
  })

  it('logs no password, key or token', async () => {
    const node = await secureBroker(true)
    const secrets = [SAMPLE.apiKey, SAMPLE.publisher.password, SAMPLE.operator.password, SAMPLE.hs256]
    const jwt = await token({ sub: 'logged?' })
    const bad = await token({ sub: 'x' }, { secret: 'wrong-secret-wrong-secret-wrong-secret' })
    await code(node.url('ws'), { username: 'apikey', password: SAMPLE.apiKey })
    await code(node.url('ws'), { username: 'apikey', password: `${SAMPLE.apiKey}x` })
    await code(node.url('mqtt'), { ...SAMPLE.publisher })
    await code(node.url('mqtt'), { username: SAMPLE.operator.username, password: `${SAMPLE.operator.password}!` })
    await code(node.url('ws'), { username: 'jwt', password: jwt })
    await code(node.url('ws'), { username: 'jwt', password: bad })
    const text = node.logs.join('')
    expect(text).toContain('CONNECT refused')
    for (const s of [...secrets, `${SAMPLE.apiKey}x`, `${SAMPLE.operator.password}!`, jwt, bad, jwt.split('.')[2], bad.split('.')[2]]) {
      expect(text).not.toContain(s)
    }
  })

  it('refuses a client id held by another identity (CONNACK 2) and slows repeated failures', async () => {
    const node = await secureBroker(true, 5000)
    const tcp = node.url('mqtt')
    expect(await code(tcp, { ...SAMPLE.publisher, clientId: 'shared-id' })).toBe(0)
    expect(await code(tcp, { clientId: 'shared-id' })).toBe(2)
    expect(await code(tcp, { ...SAMPLE.publisher, clientId: 'shared-id' })).toBe(0) // the same identity may take it over
    const started = Date.now()
    for (let i = 0; i < 4; i++) expect(await code(tcp, { username: 'apikey', password: `wrong-${i}` })).toBe(4)
    // The refusals wait 100, 200, 400 and 800 ms: at least 1.5 s in all.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500)
  })

  it('never delivers to a persistent session a topic denied inside a multi-topic SUBSCRIBE', async () => {
    const node = await secureBroker(true)
    const tcp = node.url('mqtt')
    const opts = { username: 'apikey', password: SAMPLE.apiKey, clientId: 'tv-persistent', clean: false }
    const v1 = await mqtt.connectAsync(tcp, { reconnectPeriod: 0, ...opts })
    const granted = await v1.subscribeAsync({ 'matches/m1/state': { qos: 1 }, 'private/secrets': { qos: 1 } }).catch((err: { granted?: Array<{ qos: number }> }) => err)
    expect(JSON.stringify(granted)).toContain('128')
    await v1.endAsync()
    const ops = await mqtt.connectAsync(tcp, { reconnectPeriod: 0, ...SAMPLE.operator })
    onCleanup(async () => { await ops.endAsync(true) })
    await ops.publishAsync('private/secrets', 'the plan', { qos: 1 })
    await ops.publishAsync('matches/m1/state', '{"s":1}', { qos: 1 })
    // Listening before CONNACK: the queued messages may come in the same read as the CONNACK.
    const v2 = mqtt.connect(tcp, { reconnectPeriod: 0, ...opts })
    onCleanup(async () => { await v2.endAsync(true) })
    const got = collect(v2)
    await new Promise((resolve, reject) => { v2.once('connect', resolve); v2.once('error', reject) })
    await waitFor(() => got.length >= 1, 'the allowed message')
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(got.map((m) => m.topic)).toEqual(['matches/m1/state'])
  })
})
