/**
 * The floor of one message's fan-out on this machine: a bare Node "broker" over TCP that answers CONNECT with CONNACK
 * and SUBSCRIBE with SUBACK (MQTT 3.1.1 sections 3.2, 3.9), then writes every PUBLISH it receives, the same bytes,
 * to every other socket in one loop: no parsing, no routing, no MQTT state. N viewers (the fan-out load generator,
 * bench/lib/load-worker.ts) receive each message; publish-to-viewer latency p50/p99 and the server's CPU time per
 * message (user and system, /proc) show what any broker in Node pays to reach N sockets here, and so how far
 * Tribune's latency at 10,000 viewers (bench/fanout.ts) is from it.
 *
 * Usage: npm run -s bench:floor -- [--viewers 10000] [--messages 5] [--json]
 */
import net from 'node:net'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import mqttPacket from 'mqtt-packet'
import { startLoad, type Load } from './lib/load.js'
import { countFlag } from './lib/args.js'
import { freePort } from '../broker/src/cluster/redis-server.js'

/** One message's fan-out. */
export interface FloorMessage {
  /** The server's loop over every socket, ms (its own clock). */
  loopMs: number
  /** Server CPU time during the message, ms (clock ticks of 10 ms). */
  userMs: number
  systemMs: number
  p50Ms: number
  p99Ms: number
}

/** The bare server: run in its own process (`floor.js serve <port>`); prints each loop's ms on stdout. */
function serve (port: number): void {
  const connack = mqttPacket.generate({ cmd: 'connack', returnCode: 0, sessionPresent: false })
  const suback = mqttPacket.generate({ cmd: 'suback', messageId: 1, granted: [0] })
  const sockets = new Set<net.Socket>()
  net.createServer({ noDelay: true }, (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {})
    s.on('data', (d) => {
      // Each packet of the generator and the publisher arrives alone in its chunk (they wait for the answer).
      const type = d[0] >> 4
      if (type === 1) s.write(connack)
      else if (type === 8) s.write(suback)
      else if (type === 3) {
        const t0 = performance.now()
        for (const c of sockets) if (c !== s) c.write(d)
        process.stdout.write(`${(performance.now() - t0).toFixed(1)}\n`)
      }
    })
  }).listen(port, '127.0.0.1')
}

/** Starts the bare server, connects `viewers` viewers and measures `messages` messages, one a second. */
export async function floor (viewers: number, messages: number): Promise<FloorMessage[]> {
  const port = await freePort()
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'serve', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const loops: number[] = []
  child.stdout?.on('data', (d: Buffer) => { for (const l of d.toString().trim().split('\n')) loops.push(Number(l)) })
  const cpu = (): [number, number] => {
    const f = readFileSync(`/proc/${child.pid ?? 0}/stat`, 'utf8').split(') ')[1].split(' ')
    return [Number(f[11]) * 10, Number(f[12]) * 10]
  }
  let load: Load | undefined
  let pub: net.Socket | undefined
  try {
    await new Promise((resolve) => setTimeout(resolve, 500)) // the server listening
    load = startLoad({ url: `mqtt://127.0.0.1:${port}`, topics: ['bench/fanout'], qos: 0, mode: 'fanout' }, viewers, 2)
    await load.done
    pub = net.connect({ host: '127.0.0.1', port, noDelay: true })
    await new Promise((resolve, reject) => { pub?.once('connect', resolve); pub?.once('error', reject) })
    pub.on('error', () => {}) // a server gone shows as viewers not receiving
    const out: FloorMessage[] = []
    for (let i = 0; i < messages; i++) {
      load.reset()
      await new Promise((resolve) => setTimeout(resolve, 300))
      const [u0, s0] = cpu()
      const payload = Buffer.alloc(64)
      payload.writeDoubleLE(performance.timeOrigin + performance.now(), 0)
      pub.write(mqttPacket.generate({ cmd: 'publish', topic: 'bench/fanout', payload, qos: 0, dup: false, retain: false }))
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const [u1, s1] = cpu()
      const { histogram, received } = await load.report()
      if (received !== viewers) throw new Error(`message ${i}: ${received} of ${viewers} viewers received it`)
      out.push({ loopMs: loops[i] ?? NaN, userMs: u1 - u0, systemMs: s1 - s0, p50Ms: histogram.getValueAtPercentile(50) / 1000, p99Ms: histogram.getValueAtPercentile(99) / 1000 })
    }
    return out
  } finally {
    pub?.destroy()
    await load?.stop()
    child.kill()
  }
}

/** The command line. */
export async function main (args: string[]): Promise<void> {
  if (args.includes('--help')) {
    console.log('npm run -s bench:floor -- [--viewers 10000] [--messages 5] [--json]')
    return
  }
  const known = ['viewers', 'messages', 'json']
  const unknown = args.filter((a) => a.startsWith('--') && !known.includes(a.slice(2)))
  if (unknown.length > 0) throw new Error(`unknown option ${unknown.join(', ')} (known: ${known.map((k) => `--${k}`).join(', ')})`)
  const viewers = countFlag(args, 'viewers', 10_000)
  const result = await floor(viewers, countFlag(args, 'messages', 5))
  if (args.includes('--json')) {
    console.log(JSON.stringify(result, null, 2))
    return
  }
  console.log(`floor: one 64-byte PUBLISH written by a bare Node loop to ${viewers} TCP viewers, one message a second`)
  for (const m of result) {
    console.log(`  loop ${m.loopMs.toFixed(1)} ms   server CPU user ${m.userMs} ms, system ${m.systemMs} ms   latency p50 ${m.p50Ms.toFixed(1)} ms, p99 ${m.p99Ms.toFixed(1)} ms`)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === 'serve') {
    serve(Number(process.argv[3]))
  } else {
    main(process.argv.slice(2)).catch((err: Error) => {
      console.error(`bench:floor: ${err.message}`)
      process.exitCode = 1
    })
  }
}
