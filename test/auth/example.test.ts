// Tests whether the shipped examples/secure.json, as shipped (each listener with its own methods; free ports), keeps
// the README's promise: a viewer with the sample API key gets the state and the history of a match with
// mosquitto_sub (a real MQTT/TCP client, Debian's mosquitto-clients) over MQTT/TCP and MQTT/TLS, and with MQTT.js
// over WebSocket; and whether a method a listener does not take is refused with CONNACK 5, seen by the client,
// with a log line naming the listener and the methods it takes.
import { execFile } from 'node:child_process'
import { Writable } from 'node:stream'
import { describe, it, expect } from 'vitest'
import { pino } from 'pino'
import { startBroker, type BrokerNode } from '../../broker/src/main.js'
import { secureConfig, SAMPLE, EXAMPLES } from '../helpers/auth.js'
import { onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'

interface Run { code: number | null, out: string, err: string }

/** Runs mosquitto_sub with `args` (MQTT 3.1.1, at most 10 s); fails with what to install when it is missing. */
async function mosquittoSub (args: string[]): Promise<Run> {
  return await new Promise((resolve, reject) => {
    execFile('mosquitto_sub', ['-V', 'mqttv311', '-W', '10', ...args], (err, out, errOut) => {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
        reject(new Error('mosquitto_sub not found: install mosquitto-clients (Debian; .ci/run does)'))
        return
      }
      resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : -1), out, err: errOut })
    })
  })
}

async function exampleBroker (): Promise<{ node: BrokerNode, logs: string[], port: (protocol: string) => number }> {
  const logs: string[] = []
  const cfg = secureConfig() as { auth: { maxFailedLoginDelayMs?: number } }
  cfg.auth.maxFailedLoginDelayMs = 0
  const node = await startBroker(cfg as never, pino({ level: 'info' }, new Writable({ write (c, _e, cb) { logs.push(c.toString()); cb() } })))
  onCleanup(async () => await node.close())
  const port = (protocol: string): number => node.ports[Object.keys(node.ports).find((n) => n.startsWith(`${protocol}:`)) ?? '']
  return { node, logs, port }
}

const STATE = '{"status":"live","score":[1,0]}'

describe('examples/secure.json, as shipped', () => {
  it('serves a viewer with the sample API key over MQTT/TCP and MQTT/TLS (mosquitto_sub) and over WebSocket (MQTT.js)', async () => {
    const { port } = await exampleBroker()
    const pub = await connect(`mqtt://127.0.0.1:${port('mqtt')}`, { ...SAMPLE.publisher })
    await pub.publishAsync('matches/m1/state', STATE, { qos: 1, retain: true })
    await pub.publishAsync('matches/m1/events', '{"type":"goal","minute":9}', { qos: 1 })

    const viewer = ['-u', 'apikey', '-P', SAMPLE.apiKey, '-q', '1', '-v', '-C', '2', '-t', 'matches/m1/state', '-t', '$replay/all/matches/m1/events']
    const tcp = await mosquittoSub(['-h', '127.0.0.1', '-p', String(port('mqtt')), ...viewer])
    expect(tcp.err).toBe('')
    expect(tcp.code).toBe(0)
    const lines = tcp.out.trim().split('\n').sort()
    expect(lines[0]).toMatch(/^\$replay\/all\/matches\/m1\/events \{"seq":1,"epoch":"[^"]+","ts":\d+,"data":\{"type":"goal","minute":9\}\}$/)
    expect(lines[1]).toBe(`matches/m1/state ${STATE}`)
    // The TLS listener's certificate names localhost; the test connects by address, so the name is not checked.
    const tls = await mosquittoSub(['-h', '127.0.0.1', '-p', String(port('mqtts')), '--cafile', `${EXAMPLES}/tls/ca.pem`, '--insecure', ...viewer])
    expect(tls.code).toBe(0)
    expect(tls.out.trim().split('\n').sort()).toEqual(lines)

    const ws = await connect(`ws://127.0.0.1:${port('ws')}/mqtt`, { username: 'apikey', password: SAMPLE.apiKey })
    const got = collect(ws)
    await ws.subscribeAsync('matches/m1/state', { qos: 1 })
    await waitFor(() => got.length === 1, 'the state over WebSocket')
    expect(got[0]).toMatchObject({ topic: 'matches/m1/state', json: JSON.parse(STATE), retain: true })
  })

  it('refuses a method the listener does not take with CONNACK 5, and logs the listener and the methods it takes', async () => {
    const { node, logs, port } = await exampleBroker()
    // No credentials over MQTT/TCP: anonymous viewers are served on the WebSocket listeners only.
    const anonymous = await mosquittoSub(['-h', '127.0.0.1', '-p', String(port('mqtt')), '-t', 'matches/m1/state'])
    expect(anonymous.code).not.toBe(0)
    expect(anonymous.err).toContain('Connection Refused: not authorised')
    // A password over WebSocket: passwords are for services, on the MQTT listeners.
    const ws = await connect(`ws://127.0.0.1:${port('ws')}/mqtt`, { ...SAMPLE.operator }).catch((err: { code?: number }) => err)
    expect((ws as { code?: number }).code).toBe(5)
    await waitFor(() => logs.filter((l) => l.includes('CONNECT refused')).length === 2, 'two log lines')
    const refused = logs.filter((l) => l.includes('CONNECT refused')).map((l) => JSON.parse(l) as { listener: string, returnCode: number, reason: string })
    const names = Object.keys(node.ports)
    expect(refused.map((r) => [r.listener, r.returnCode])).toEqual([[names.find((n) => n.startsWith('mqtt:')), 5], [names.find((n) => n.startsWith('ws:')), 5]])
    expect(refused[0].reason).toBe(`no credentials, and listener ${refused[0].listener} does not accept anonymous clients (it accepts: apikey, jwt, password)`)
    expect(refused[1].reason).toBe(`listener ${refused[1].listener} does not accept password credentials (it accepts: anonymous, apikey, jwt)`)
  })
})
