// Tests whether a broker without an auth section listens on loopback only and says so, and refuses to start on any
// other address (as Mosquitto 2 does), naming the listener and what to do.
import { describe, it, expect } from 'vitest'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { startBroker } from '../../broker/src/main.js'
import { onCleanup } from '../helpers/broker.js'
import { connect } from '../helpers/mqtt.js'
import { secureConfig } from '../helpers/auth.js'

describe('safe default', () => {
  it('refuses a non-loopback address without an auth section', async () => {
    await expect(startBroker({ host: '0.0.0.0', port: 0, wsPort: 0, dataDir: ':memory:', logLevel: 'silent' }))
      .rejects.toThrow(/mqtt:0 on 0\.0\.0\.0 is not a loopback address: add an auth section/)
    await expect(startBroker({ dataDir: ':memory:', logLevel: 'silent', listeners: [{ protocol: 'ws', host: '::', port: 0 }] }))
      .rejects.toThrow(/not a loopback address/)
  })

  it('refuses the shipped example\'s public sample credentials on a non-loopback address, and takes them on loopback', async () => {
    const exposed = { ...secureConfig(), host: '0.0.0.0' }
    await expect(startBroker(exposed)).rejects.toThrow(/on 0\.0\.0\.0: this auth section has "sampleCredentials": true, and sample credentials are public/)
    const own = secureConfig()
    own.host = '0.0.0.0'
    ;(own.auth as { sampleCredentials?: boolean }).sampleCredentials = false
    const node = await startBroker(own)
    onCleanup(async () => { await node.close() })
    const loopback = await startBroker(secureConfig())
    onCleanup(async () => { await loopback.close() })
  })

  it('lets local clients do anything on loopback, and says so at start', async () => {
    const logs: string[] = []
    const node = await startBroker({ port: 0, wsPort: 0, dataDir: ':memory:' }, pino({ level: 'info' }, new Writable({ write (c, _e, cb) { logs.push(c.toString()); cb() } })))
    onCleanup(async () => await node.close())
    expect(logs.join('')).toContain('no auth section: listening on loopback only')
    const c = await connect(`mqtt://127.0.0.1:${node.tcpPort}`)
    expect(await c.subscribeAsync('$SYS/#')).toEqual([{ topic: '$SYS/#', qos: 0 }])
    await c.publishAsync('anything/at/all', 'x', { qos: 1 })
  })
})
