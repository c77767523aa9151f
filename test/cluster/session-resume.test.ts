/**
 * Tests whether a persistent session (clean session off) that comes back right after a DISCONNECT, while QoS 1
 * messages are still on their way through Redis, gets CONNACK first [MQTT-3.2.0-1], then its queued messages, then
 * the live ones, in order, with no message it had acknowledged (PUBACK) sent again (MQTT 3.1.1 section 4.3.2: only an
 * unacknowledged message may be sent twice), and none lost; on Redis and on the embedded store. Raw packets: a
 * connection that PUBACKs every PUBLISH as it is parsed, and reconnects at once after each DISCONNECT, many times.
 */
import { test, expect } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { brokerForTest } from '../helpers/broker.js'
import { connect, rawMqtt, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import type { BrokerOptions } from '../../broker/src/config.js'

const ROUNDS = 40
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** One connection of the session: what came, in order ("connack", or the message number with * for DUP). */
interface Visit { seen: string[], numbers: number[], firstIsConnack: () => boolean }

test.each([
  ['Redis', async (): Promise<BrokerOptions> => ({ redis: (await redisForTest()).url, nodeId: 'resume-node' })],
  ['the embedded store', async (): Promise<BrokerOptions> => ({})]
])('a persistent session back at once after DISCONNECT gets CONNACK first, then every message once it is acknowledged, in order (%s)', async (_store, options) => {
  const node = await brokerForTest(await options())
  const pub = await connect(node.tcpUrl)
  /** Messages the session PUBACKed (the PUBACK written before its DISCONNECT), and where each came again after that. */
  const acked = new Set<number>()
  const againAfterAck: string[] = []
  const visits: Visit[] = []

  const visit = async (): Promise<{ v: Visit, leave: () => Promise<void>, socket: import('node:net').Socket, packets: mqttPacket.Packet[] }> => {
    const { socket, packets } = await rawMqtt(node.tcpPort)
    const v: Visit = { seen: [], numbers: [], firstIsConnack: () => v.seen[0] === 'connack' }
    visits.push(v)
    let leaving = false
    // Each packet is handled as it is parsed: a PUBACK goes out at once, before any DISCONNECT written later.
    const parser = mqttPacket.parser()
    parser.on('packet', (p) => {
      if (p.cmd !== 'publish') {
        v.seen.push(p.cmd)
        return
      }
      const n = Number(p.payload.toString())
      v.seen.push(`${n}${p.dup ? '*' : ''}`)
      v.numbers.push(n)
      if (acked.has(n)) againAfterAck.push(`${n} in visit ${visits.length}`)
      if (leaving) return
      socket.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId }))
      acked.add(n)
    })
    socket.on('data', (d) => parser.parse(d))
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: false, clientId: 'resumer', keepalive: 60 }))
    await waitFor(() => v.seen.includes('connack'), 'CONNACK')
    return {
      v,
      socket,
      packets,
      leave: async () => {
        leaving = true
        socket.write(mqttPacket.generate({ cmd: 'disconnect' }))
        await new Promise((resolve) => socket.once('close', resolve))
      }
    }
  }

  let current = await visit()
  current.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: '#', qos: 1 }] }))
  await waitFor(() => current.v.seen.includes('suback'), 'SUBACK')
  let n = 0
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < 3; k++) await pub.publishAsync('scores/live', String(++n), { qos: 1 })
    await sleep(round % 4) // sometimes the messages have reached the session, sometimes not yet
    await current.leave()
    for (let k = 0; k < 3; k++) await pub.publishAsync('scores/live', String(++n), { qos: 1 })
    current = await visit()
  }
  await waitFor(() => acked.size === n, `all ${n} messages acknowledged`, 10_000).catch(() => {})
  const report = visits.map((v, i) => `visit ${i}: ${v.seen.join(' ')}`).join('\n')

  expect.soft(visits.filter((v) => !v.firstIsConnack()).length, `a PUBLISH before CONNACK [MQTT-3.2.0-1]\n${report}`).toBe(0)
  expect.soft(againAfterAck, `messages sent again after their PUBACK\n${report}`).toEqual([])
  expect.soft([...acked].sort((a, b) => a - b), `every message acknowledged once delivered\n${report}`).toEqual(Array.from({ length: n }, (_, i) => i + 1))
  for (const v of visits) {
    // One publisher, one topic: in order (MQTT 3.1.1 section 4.6), queued ones first; a message sent again (not
    // acknowledged) comes only as a DUP.
    const firsts = v.numbers.filter((x, i) => v.numbers.indexOf(x) === i)
    expect.soft(firsts, `out of order in a visit\n${report}`).toEqual([...firsts].sort((a, b) => a - b))
  }
}, 90_000)
