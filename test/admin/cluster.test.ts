// Tests whether operators administer a 2-node cluster over MQTT ($admin/<node-id | all>/<command>, answers on
// $admin/response/<client id>/<requestId>): an operator on node-0 lists clients, kicks one by identity on node-1,
// resets a feed (its $replay viewers on both nodes get the reset notice, then the new epoch), deletes a retained
// message and reads stats, addressing one node and all; whether bad requests get an error answer naming what is wrong;
// and whether a viewer and a publisher trying the same are refused and nothing changes. Auth: examples/secure.json.
import { describe, it, expect } from 'vitest'
import type { MqttClient } from 'mqtt'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest, type TestNode } from '../helpers/cluster.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { secureConfig, SAMPLE, token } from '../helpers/auth.js'

const FEED = 'matches/f/events'

async function cluster (): Promise<[TestNode, TestNode]> {
  const redis = await redisForTest()
  const [a, b] = await clusterForTest(redis.url, 2, secureConfig())
  return [a, b]
}

const viewer = { username: 'apikey', password: SAMPLE.apiKey }
const publisher = SAMPLE.publisher
const fan = async (sub: string): Promise<{ username: string, password: string }> => ({ username: 'jwt', password: await token({ sub, role: 'viewer' }) })

interface Answer { requestId: string | null, node: string, command: string | null, ok: boolean, result?: any, error?: string, refused?: boolean, nodes: string[] }

/** An operator (`ops`) connected to `node`, reading its answers; `ask` sends one request and waits for `answers` of them. */
async function operator (node: TestNode, clientId = 'ops-1'): Promise<{ client: MqttClient, got: Answer[], ask: (target: string, command: string, fields?: object, answers?: number) => Promise<Answer[]>, send: (topic: string, payload: string) => void }> {
  const client = await connect(node.tcpUrl, { ...SAMPLE.operator, clientId })
  const got: Answer[] = []
  client.on('message', (topic, payload) => { if (topic.startsWith(`$admin/response/${clientId}`)) got.push(JSON.parse(payload.toString())) })
  await client.subscribeAsync(`$admin/response/${clientId}/#`, { qos: 1 })
  let n = 0
  const ask = async (target: string, command: string, fields: object = {}, answers = target === 'all' ? 2 : 1): Promise<Answer[]> => {
    const requestId = `r${++n}`
    await client.publishAsync(`$admin/${target}/${command}`, JSON.stringify({ requestId, ...fields }), { qos: 1 })
    const mine = (): Answer[] => got.filter((a) => a.requestId === requestId)
    await waitFor(() => mine().length >= answers || mine().some((a) => a.refused === true), `${answers} answer(s) to ${command}`)
    return mine().sort((x, y) => x.node.localeCompare(y.node))
  }
  return { client, got, ask, send: (topic, payload) => { client.publish(topic, payload, { qos: 1 }) } }
}

describe('$admin on a 2-node cluster', () => {
  it('lists clients and kicks one by identity on the other node, addressing it and all; reads stats', async () => {
    const [a, b] = await cluster()
    const ops = await operator(a)
    await connect(a.tcpUrl, { ...viewer, clientId: 'va' })
    await connect(b.tcpUrl, { ...viewer, clientId: 'vb' })
    const f42 = await connect(b.tcpUrl, { ...await fan('fan-42'), clientId: 'fan-42' })
    await connect(b.wsUrl.replace(/\/mqtt$/, '/mqtt'), { ...viewer, clientId: 'vb-ws' })

    const [one] = await ops.ask('node-1', 'clients.list')
    expect(one).toMatchObject({ node: 'node-1', command: 'clients.list', ok: true, nodes: ['node-0', 'node-1'] })
    expect(one.result.clients.map((c: any) => [c.clientId, c.identity, c.role, c.transport])).toEqual([
      ['fan-42', 'jwt:fan-42', 'viewer', 'mqtt'], ['vb', 'apikey:tv-app', 'viewer', 'mqtt'], ['vb-ws', 'apikey:tv-app', 'viewer', 'ws']
    ])
    expect(one.result).toMatchObject({ total: 3, next: null })
    const all = await ops.ask('all', 'clients.list', { role: 'viewer' })
    expect(all.map((x) => [x.node, x.result.clients.map((c: any) => c.clientId)])).toEqual([['node-0', ['va']], ['node-1', ['fan-42', 'vb', 'vb-ws']]])
    const filtered = await ops.ask('all', 'clients.list', { transport: 'ws', identity: 'apikey:tv-app', prefix: 'vb' })
    expect(filtered.flatMap((x) => x.result.clients.map((c: any) => c.clientId))).toEqual(['vb-ws'])
    const [page1] = await ops.ask('node-1', 'clients.list', { limit: 2 })
    const [page2] = await ops.ask('node-1', 'clients.list', { limit: 2, after: page1.result.next })
    expect([page1.result.clients.map((c: any) => c.clientId), page1.result.next, page2.result.clients.map((c: any) => c.clientId), page2.result.next])
      .toEqual([['fan-42', 'vb'], 'vb', ['vb-ws'], null])

    // Kick by identity, addressed to the other node: only that identity's connection goes.
    const closed = new Promise((resolve) => f42.once('close', resolve))
    const [kick] = await ops.ask('node-1', 'clients.kick', { identity: 'jwt:fan-42' })
    expect(kick).toMatchObject({ node: 'node-1', ok: true, result: { kicked: [{ clientId: 'fan-42', identity: 'jwt:fan-42' }] } })
    await closed
    // Addressed to all: each node kicks its own (here the identity is on node-1 only).
    await connect(b.tcpUrl, { ...await fan('fan-43'), clientId: 'fan-43' })
    const kicks = await ops.ask('all', 'clients.kick', { identity: 'jwt:fan-43' })
    expect(kicks.map((x) => [x.node, x.result.kicked])).toEqual([['node-0', []], ['node-1', [{ clientId: 'fan-43', identity: 'jwt:fan-43' }]]])
    await waitFor(() => b.aedes.connectedClients === 2, 'fan-43 gone from node-1')
    const after = await ops.ask('all', 'clients.list')
    expect(after.map((x) => x.result.clients.map((c: any) => c.clientId))).toEqual([['ops-1', 'va'], ['vb', 'vb-ws']])

    const stats = await ops.ask('all', 'node.stats')
    expect(stats.map((x) => [x.node, x.result.id, x.result.clients.connected])).toEqual([['node-0', 'node-0', 2], ['node-1', 'node-1', 2]])
    const [s1] = await ops.ask('node-1', 'node.stats')
    expect(s1).toMatchObject({ node: 'node-1', ok: true, result: { id: 'node-1', clients: { connected: 2 }, store: { kind: 'redis', reachable: true } } })
    const [config] = await ops.ask('node-1', 'config.get')
    expect(config.result.nodeId).toBe('node-1')
    expect(config.result.auth.users.map((u: any) => u.password)).toEqual(['(redacted)', '(redacted)'])
    expect(JSON.stringify(config.result)).not.toContain(SAMPLE.hs256)
    const [drain] = await ops.ask('node-1', 'node.drain', { seconds: 5 })
    expect(drain).toMatchObject({ node: 'node-1', ok: true })
    await waitFor(() => b.draining && Object.keys(b.aedes.clients).length === 0, 'node-1 drained')
    const [undrain] = await ops.ask('node-1', 'node.undrain')
    expect(undrain).toMatchObject({ node: 'node-1', ok: true, result: { draining: false, wasDraining: true } })
    expect(b.draining).toBe(false)
    await connect(b.tcpUrl, { ...viewer, clientId: 'back' })
  })

  it('resets a feed: $replay viewers on both nodes get the reset notice, then the new epoch; deletes a retained message', async () => {
    const [a, b] = await cluster()
    const ops = await operator(a)
    const pub = await connect(a.tcpUrl, { ...publisher, clientId: 'pub' })
    for (let i = 1; i <= 3; i++) await pub.publishAsync(FEED, JSON.stringify({ id: `e${i}` }), { qos: 1 })
    await pub.publishAsync('matches/f/state', '{"score":[1,0]}', { qos: 1, retain: true })
    await pub.publishAsync('matches/g/state', '{"score":[0,0]}', { qos: 1, retain: true })
    const watchers = await Promise.all([a, b].map(async (n, i) => {
      const c = await connect(n.tcpUrl, { ...viewer, clientId: `w${i}` })
      const got = collect(c)
      await c.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
      await c.subscribeAsync('matches/f/state', { qos: 1 })
      return got
    }))
    const feedOf = (got: ReturnType<typeof collect>): string[] => got.filter((m) => m.topic.startsWith('$replay/')).map((m) => m.json.reset === true ? `reset:${String(m.json.epoch)}` : `${String(m.json.seq)}@${String(m.json.epoch)}`)
    for (const got of watchers) await waitFor(() => feedOf(got).length === 3, 'history')
    const [before] = await ops.ask('node-0', 'feeds.list')
    const e0 = before.result.feeds[0].epoch
    expect(before.result.feeds).toEqual([{ feed: FEED, epoch: e0, last: 3, held: 3, viewers: 1 }])

    // Addressed to node-1 by an operator on node-0.
    const [reset] = await ops.ask('node-1', 'feeds.reset', { feed: FEED })
    expect(reset).toMatchObject({ node: 'node-1', ok: true, result: { feed: FEED, previous: e0, dropped: 3, already: false } })
    const e1 = reset.result.epoch
    for (const got of watchers) await waitFor(() => feedOf(got).length === 4, 'reset notice')
    await pub.publishAsync(FEED, JSON.stringify({ id: 'e4' }), { qos: 1 })
    for (const got of watchers) await waitFor(() => feedOf(got).length === 5, 'the new epoch')
    // Addressed to all: done once (one node does it, the other finds it done), one notice per viewer.
    const resets = await ops.ask('all', 'feeds.reset', { feed: FEED })
    const e2 = resets[0].result.epoch
    expect(resets.map((x) => x.result.epoch)).toEqual([e2, e2])
    expect(resets.map((x) => x.result.already).sort()).toEqual([false, true])
    await pub.publishAsync(FEED, JSON.stringify({ id: 'e5' }), { qos: 1 })
    for (const got of watchers) {
      await waitFor(() => feedOf(got).length === 7, 'the third epoch')
      expect(feedOf(got)).toEqual([`1@${e0}`, `2@${e0}`, `3@${e0}`, `reset:${e1}`, `1@${e1}`, `reset:${e2}`, `1@${e2}`])
    }
    const lists = await ops.ask('all', 'feeds.list')
    expect(lists.map((x) => [x.node, x.result.feeds])).toEqual([
      ['node-0', [{ feed: FEED, epoch: e2, last: 1, held: 1, viewers: 1 }]], ['node-1', [{ feed: FEED, epoch: e2, last: 1, held: 1, viewers: 1 }]]
    ])
    const [notFeed] = await ops.ask('node-1', 'feeds.reset', { feed: 'matches/f/state' })
    expect(notFeed).toMatchObject({ ok: false, error: expect.stringContaining('"matches/f/state" is not a feed') })

    // Retained: deleted from the store of every node; its subscribers get nothing (no empty message).
    const [del] = await ops.ask('node-1', 'retained.delete', { topic: 'matches/f/state' })
    expect(del).toMatchObject({ node: 'node-1', ok: true, result: { topic: 'matches/f/state', deleted: true } })
    const late = await connect(a.tcpUrl, { ...viewer })
    const seen = collect(late)
    await late.subscribeAsync('matches/+/state', { qos: 1 })
    await waitFor(() => seen.length >= 1, 'the other retained state')
    await late.subscribeAsync('matches/x/events', { qos: 1 }) // a round trip: a retained f would have come before it
    expect(seen.map((m) => m.topic)).toEqual(['matches/g/state'])
    const dels = await ops.ask('all', 'retained.delete', { topic: 'matches/g/state' })
    expect(dels.every((x) => x.ok) && dels.some((x) => x.result.deleted === true)).toBe(true)
    const [none] = await ops.ask('node-0', 'retained.delete', { topic: 'matches/g/state' })
    expect(none.result).toEqual({ topic: 'matches/g/state', deleted: false })
    // The state they had, and nothing after its deletion (no empty message). A watcher on node-1 may have it twice:
    // retained from its node's store, and live from node-0 when that copy was still on its way when it subscribed.
    for (const got of watchers) {
      const states = got.filter((m) => m.topic === 'matches/f/state').map((m) => m.json)
      expect(states.length).toBeGreaterThanOrEqual(1)
      expect(states.every((j) => JSON.stringify(j) === '{"score":[1,0]}')).toBe(true)
    }
  })

  it('answers bad requests with what is wrong; refuses viewers and publishers, and nothing changes', async () => {
    const [a, b] = await cluster()
    const ops = await operator(a)
    const pub = await connect(a.tcpUrl, { ...publisher, clientId: 'pub' })
    await pub.publishAsync(FEED, '{"id":"e1"}', { qos: 1 })
    await pub.publishAsync('matches/f/state', '{"score":[0,0]}', { qos: 1, retain: true })
    const w = await connect(b.tcpUrl, { ...viewer, clientId: 'watcher' })
    const got = collect(w)
    await w.subscribeAsync(`$replay/all/${FEED}`, { qos: 1 })
    await waitFor(() => got.length === 1, 'history')

    const bad = async (topic: string, payload: string, base = false): Promise<Answer> => {
      const count = ops.got.length
      ops.send(topic, payload)
      await waitFor(() => ops.got.length > count, `the answer to ${topic} ${payload}`)
      const answer = ops.got[ops.got.length - 1]
      expect(answer).toMatchObject({ node: 'node-0', ok: false, refused: true })
      if (base) expect(answer.requestId).toBeNull()
      return answer
    }
    expect((await bad('$admin/all/node.stats', 'stats please', true)).error).toMatch(/^the payload is not JSON/)
    expect((await bad('$admin/all/node.stats', '{"id":1}', true)).error).toBe('requestId is missing')
    expect((await bad('$admin/all/node.stats', '[1]', true)).error).toMatch(/must be a JSON object/)
    expect((await bad('$admin/all/nodes.stats', '{"requestId":"x1"}')).error).toMatch(/^unknown command "nodes.stats"; commands: clients.list, /)
    expect((await bad('$admin/all/clients.list', '{"requestId":"x2","limit":0,"colour":"red"}')).error).toBe('clients.list: limit: Too small: expected number to be >=1; unknown field(s) colour')
    expect((await bad('$admin/all/clients.kick', '{"requestId":"x3","clientId":5}')).error).toMatch(/^clients.kick: clientId: /)
    expect((await bad('$admin/node-9/node.stats', '{"requestId":"x4"}')).error).toBe('no live node "node-9" in the cluster; nodes: node-0, node-1 (or all)')
    expect((await bad('$admin/all', '{"requestId":"x5"}', true)).error).toMatch(/is not a request topic/)
    expect((await bad('$admin/all/node.drain', '{"requestId":"x6","seconds":5}')).error).toBe('node.drain addresses one node at a time ($admin/<node-id>/node.drain), not all')
    const [noTarget] = await ops.ask('all', 'clients.kick', {})
    expect(noTarget.error).toBe('clients.kick needs clientId or identity')
    // Answers come from the broker only: another operator publishing one is refused (closed), and nothing arrives.
    const forger = await connect(b.tcpUrl, { ...SAMPLE.operator, clientId: 'ops-2' })
    const forgerClosed = new Promise((resolve) => forger.once('close', resolve))
    const count = ops.got.length
    forger.publish('$admin/response/ops-1/r99', '{"requestId":"r99","ok":true}', { qos: 1 })
    await forgerClosed
    await ops.ask('node-1', 'node.stats')
    expect(ops.got.slice(count).map((x) => x.requestId)).not.toContain('r99')

    // A viewer and a publisher: the topic rules refuse the PUBLISH (the connection closes), nobody runs it or answers.
    const [before] = await ops.ask('node-1', 'feeds.list')
    const answered = ops.got.length
    const asV = await connect(b.tcpUrl, { ...viewer, clientId: 'sneaky-viewer' })
    await expect(asV.subscribeAsync('$admin/response/sneaky-viewer/#', { qos: 1 })).rejects.toThrow()
    for (const [who, opts] of [['viewer', viewer], ['publisher', publisher]] as const) {
      for (const [cmd, fields] of [['clients.kick', { clientId: 'watcher' }], ['feeds.reset', { feed: FEED }], ['retained.delete', { topic: 'matches/f/state' }]] as const) {
        const c = await connect(a.tcpUrl, { ...opts, clientId: `${who}-${cmd}` })
        const closed = new Promise((resolve) => c.once('close', resolve))
        c.publish(`$admin/all/${cmd}`, JSON.stringify({ requestId: 'sneak', ...fields }), { qos: 1 })
        await closed
      }
    }
    const [after] = await ops.ask('node-1', 'feeds.list')
    expect(after.result.feeds).toEqual(before.result.feeds)
    expect(ops.got.filter((x) => x.requestId === 'sneak')).toEqual([])
    expect(ops.got.length).toBe(answered + 1) // the answer to feeds.list only
    expect(w.connected).toBe(true)
    expect(got.map((m) => m.json.seq)).toEqual([1])
    const late = await connect(a.tcpUrl, { ...viewer })
    const state = collect(late)
    await late.subscribeAsync('matches/f/state', { qos: 1 })
    await waitFor(() => state.length === 1, 'the retained state, still there')
  })
})
