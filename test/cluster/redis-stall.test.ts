/**
 * Readiness follows Redis' answers, not its TCP connection: a real redis-server stopped with SIGSTOP for 10 s keeps
 * the node's connections open while it answers nothing. /readyz turns 503 within a few seconds (a PING unanswered for
 * 1.5 s) and stays so, /healthz stays 200, a QoS 1 feed publish is not acknowledged meanwhile; after SIGCONT /readyz
 * is 200 again within seconds, and the publish is acknowledged and delivered.
 */
import { test, expect } from 'vitest'
import { onCleanup } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest, type TestNode } from '../helpers/cluster.js'

const FEED = 'matches/stall/events'
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function http (node: TestNode, path: string): Promise<{ status: number, body: any }> {
  const res = await fetch(`http://127.0.0.1:${node.wsPort}${path}`)
  return { status: res.status, body: await res.json() }
}

test('Redis stopped (SIGSTOP) for 10 s: /readyz 503 within seconds and throughout, 200 after SIGCONT; the publish waits, then is delivered', async () => {
  const redis = await redisForTest()
  const [node] = await clusterForTest(redis.url, 1)
  const viewer = await connect(node.tcpUrl)
  const got = collect(viewer)
  await viewer.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
  const pub = await connect(node.tcpUrl)
  await pub.publishAsync(FEED, '{"id":"before"}', { qos: 1 })
  await waitFor(() => got.length === 1, 'the first message')
  expect((await http(node, '/readyz')).status).toBe(200)

  const pid = redis.pid()
  process.kill(pid, 'SIGSTOP')
  onCleanup(() => { try { process.kill(pid, 'SIGCONT') } catch {} })
  const stoppedAt = Date.now()
  let ackedAt: number | null = null
  const during = pub.publishAsync(FEED, '{"id":"during"}', { qos: 1 }).then(() => { ackedAt = Date.now() })
  let unreadyAfter: number | null = null
  let readyAgainWhileStopped = false
  while (Date.now() - stoppedAt < 10_000) {
    const ready = await http(node, '/readyz')
    if (ready.status === 503) {
      unreadyAfter ??= Date.now() - stoppedAt
      expect(ready.body.reasons).toContain('redis store unreachable')
    } else if (unreadyAfter !== null) {
      readyAgainWhileStopped = true
    }
    await sleep(100)
  }
  expect((await http(node, '/healthz')).status).toBe(200)
  console.log(`Redis stopped: /readyz 503 after ${String(unreadyAfter)} ms`)
  expect(unreadyAfter).not.toBeNull()
  expect(unreadyAfter).toBeLessThan(4000)
  expect(readyAgainWhileStopped).toBe(false)
  expect(ackedAt).toBeNull() // nothing acknowledged while Redis answers nothing

  process.kill(pid, 'SIGCONT')
  const resumedAt = Date.now()
  let readyAfter: number | null = null
  while (Date.now() - resumedAt < 5000) {
    if ((await http(node, '/readyz')).status === 200) {
      readyAfter = Date.now() - resumedAt
      break
    }
    await sleep(100)
  }
  console.log(`Redis resumed: /readyz 200 after ${String(readyAfter)} ms`)
  expect(readyAfter).not.toBeNull()
  await during
  await waitFor(() => got.length === 2, 'the message published while Redis was stopped')
  expect(got.map((m) => [m.json.seq, m.json.data.id])).toEqual([[1, 'before'], [2, 'during']])
}, 40_000)
