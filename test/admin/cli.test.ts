// Tests whether `tribune admin` (a real process) answers for the whole cluster: `stats --json` on a 3-node cluster
// returns 3 nodes whose client counts add up to the connected viewers (and the command's own connection), human tables,
// kick and feeds.reset, and whether it refuses what it should: bad command lines (exit 2), a client that is not an
// operator, a bad login, an error answer and an unknown node (exit 1).
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, it, expect } from 'vitest'
import { redisForTest } from '../helpers/redis.js'
import { clusterForTest } from '../helpers/cluster.js'
import { brokerForTest } from '../helpers/broker.js'
import { connect, collect, waitFor } from '../helpers/mqtt.js'
import { secureConfig, SAMPLE } from '../helpers/auth.js'
import { adminMain } from '../../client/src/admin/cli.js'

const BIN = join(import.meta.dirname, '../../bin/tribune.js')

async function admin (args: string[]): Promise<{ code: number | null, out: string, err: string }> {
  return await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, 'admin', ...args])
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => { out += d })
    p.stderr.on('data', (d) => { err += d })
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`admin timed out\n${out}\n${err}`)) }, 20_000)
    p.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out, err })
    })
  })
}

describe('tribune admin', () => {
  it('stats --json on a 3-node cluster: 3 nodes whose client counts add up to the connected viewers', async () => {
    const redis = await redisForTest()
    const nodes = await clusterForTest(redis.url, 3)
    const perNode = [2, 3, 4]
    for (const [i, n] of perNode.entries()) {
      for (let v = 0; v < n; v++) {
        const c = await connect(v % 2 === 0 ? nodes[i].tcpUrl : nodes[i].wsUrl)
        await c.subscribeAsync('$replay/all/matches/s/events', { qos: 1 })
      }
    }
    // Asked through the node started last: it learnt of the others from their answers to its birth.
    const run = await admin(['stats', '--json', '--url', nodes[2].tcpUrl])
    expect(run.err).toBe('')
    expect(run.code).toBe(0)
    const json = JSON.parse(run.out)
    expect(json).toMatchObject({ command: 'node.stats', target: 'all', missing: [] })
    expect(json.answers.map((a: any) => [a.node, a.ok, a.result.id])).toEqual([['node-0', true, 'node-0'], ['node-1', true, 'node-1'], ['node-2', true, 'node-2']])
    const clients = json.answers.map((a: any) => a.result.clients.connected as number)
    expect(clients).toEqual([2, 3, 4 + 1]) // node-2 also holds the command's own connection
    expect(clients.reduce((s: number, n: number) => s + n, 0) - 1).toBe(9)
    expect(json.answers.map((a: any) => a.result.subscriptions.replayViewers)).toEqual(perNode)

    const table = await admin(['stats', '--url', nodes[0].tcpUrl])
    expect(table.code).toBe(0)
    const lines = table.out.split('\n')
    expect(lines[0].split(/\s+/)).toEqual(['figure', 'node-0', 'node-1', 'node-2', 'total'])
    expect(lines.find((l) => l.startsWith('subscriptions.replayViewers'))?.split(/\s+/)).toEqual(['subscriptions.replayViewers', '2', '3', '4', '9'])
    expect(lines.find((l) => l.startsWith('clients.connected'))?.split(/\s+/)).toEqual(['clients.connected', '3', '3', '4', '10'])
  })

  it('lists and kicks clients, resets a feed, with an operator\'s credentials; refuses others', async () => {
    const node = await brokerForTest(secureConfig())
    const url = `mqtt://127.0.0.1:${node.tcpPort}`
    const ops = `mqtt://${SAMPLE.operator.username}:${SAMPLE.operator.password}@127.0.0.1:${node.tcpPort}`
    const pub = await connect(url, { ...SAMPLE.publisher, clientId: 'pub' })
    await pub.publishAsync('matches/c/events', '{"id":"e1"}', { qos: 1 })
    const tv = await connect(url, { username: 'apikey', password: SAMPLE.apiKey, clientId: 'tv-1' })
    const got = collect(tv)
    await tv.subscribeAsync('$replay/all/matches/c/events', { qos: 1 })
    await waitFor(() => got.length === 1, 'history')

    const list = await admin(['clients', '--role', 'viewer', '--url', ops])
    expect(list.code).toBe(0)
    expect(list.out.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 5))).toEqual([
      ['node', 'client', 'id', 'identity', 'role'], [node.aedes.id, 'tv-1', 'apikey:tv-app', 'viewer', 'mqtt']
    ])
    const feeds = await admin(['feeds', '--url', url, '--username', SAMPLE.operator.username, '--password', SAMPLE.operator.password])
    expect(feeds.out).toMatch(new RegExp(`^${node.aedes.id}\\s+matches/c/events\\s+[0-9a-f]{12}\\s+1\\s+1\\s+1$`, 'm'))

    const reset = await admin(['feeds.reset', 'matches/c/events', '--url', ops])
    expect(reset.code).toBe(0)
    await waitFor(() => got.length === 2, 'the reset notice')
    expect(reset.out).toContain(`${String(got[1].json.epoch)}  ${String(got[0].json.epoch)}  1        yes`)
    const none = await admin(['feeds.reset', 'matches/none/events', '--url', ops])
    expect([none.code, none.err.trim()]).toEqual([1, `tribune admin: ${node.aedes.id}: error: feed matches/none/events has no history to reset: nothing was ever published to it`])

    const closed = new Promise((resolve) => tv.once('close', resolve))
    const kick = await admin(['kick', '--identity', 'apikey:tv-app', '--url', ops])
    expect(kick.code).toBe(0)
    expect(kick.out.trim().split('\n').map((l) => l.split(/\s+/))).toEqual([['node', 'kicked', 'client', 'id', 'identity'], [node.aedes.id, 'tv-1', 'apikey:tv-app'], ['1', 'client(s)', 'kicked']])
    await closed

    const unknown = await admin(['stats', '--node', 'elsewhere', '--url', ops])
    expect([unknown.code, unknown.err]).toEqual([1, `tribune admin: refused by ${node.aedes.id}: no live node "elsewhere" in the cluster; nodes: ${node.aedes.id} (or all)\n`])
    const asViewer = await admin(['stats', '--url', `mqtt://apikey:${SAMPLE.apiKey}@127.0.0.1:${node.tcpPort}`])
    expect([asViewer.code, asViewer.out]).toEqual([1, ''])
    expect(asViewer.err).toMatch(/refused the subscription to \$admin\/response\/tribune-admin-[0-9a-f]+\/#.*only operators may read \$admin topics/)
    const badLogin = await admin(['stats', '--url', `mqtt://ops:wrong@127.0.0.1:${node.tcpPort}`])
    expect([badLogin.code, badLogin.err]).toEqual([1, 'tribune admin: the broker refused the login (CONNACK 4: bad user name or password); give an operator\'s credentials in the URL or with --username/--password\n'])
    expect(badLogin.err).not.toContain('wrong')
  })

  it('refuses bad command lines with exit 2, naming what is wrong', async () => {
    const cases: Array<[string[], string]> = [
      [['stat'], 'unknown command "stat"; commands: stats, clients, kick, feeds, drain, undrain, config, feeds.reset, retained.delete'],
      [['clients', '--rol', 'viewer'], 'unknown option --rol; did you mean --role?'],
      [['kick'], 'kick needs --client <client id> or --identity <id>'],
      [['drain', '--seconds', '5'], 'drain needs --node <id>: one node at a time (all would empty the cluster)'],
      [['drain', '--node', 'n1'], 'drain needs --seconds <s> (a number, 0 or more)'],
      [['clients', '--limit', 'ten'], '--limit must be a positive whole number, got "ten"'],
      [['feeds.reset'], 'feeds.reset takes one <feed>'],
      [['stats', '--seconds', '3'], '--seconds does not apply to node.stats'],
      [['stats', '--url', 'http://x'], '--url: unsupported protocol "http:" (use mqtt://, mqtts://, ws:// or wss://)']
    ]
    // In-process (adminMain is what bin/tribune.js runs): a process per case would only add start-up time.
    for (const [args, message] of cases) {
      const err: string[] = []
      const code = await adminMain(args, { out: () => {}, err: (line) => err.push(line) })
      expect([code, err[0]]).toEqual([2, `tribune admin: ${message}`])
    }
    const help = await admin(['--help'])
    expect(help.code).toBe(0)
    expect(help.out).toContain('Usage: tribune admin <command>')
  })
})
