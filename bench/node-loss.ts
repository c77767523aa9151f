/**
 * Losing a node of a cluster: a redis-server and `--nodes` `tribune broker --redis ... --node-id n<i>` processes (each
 * its own process, default admission limits); viewers (lib/herd-worker.ts: the client library's policy) spread evenly
 * over the nodes, each given every node's URL (its own shuffled order, moving on at each failure) and watching
 * `--feeds` feeds; a publisher on n0, which survives, sends 10 events a second round-robin over the feeds throughout.
 * Once every viewer is in and caught up, the last node gets kill -9. Measured: the time until the last of its viewers
 * is back (on a survivor) and caught up on every feed, against the bound the survivors' rate sets,
 * viewers_of_dead_node / (survivors x rate) + 0.5 s (the first reconnect's jitter); the survivors' peak RSS, event-loop
 * lag (admission.lagMs, sampled every 250 ms) and /healthz answers; refusals on the survivors; every viewer's feeds
 * exact (each seq once, in order, up to the publisher's last).
 *
 * Usage: npm run -s bench:node-loss -- [--viewers 3000] [--nodes 3] [--feeds 3] [--transport ws|tcp] [--qos 1|0] [--cap S] [--json]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ADMISSION_DEFAULTS } from '../broker/src/config.js'
import { freePort, spawnRedisServer } from '../broker/src/cluster/redis-server.js'
import { countFlag } from './lib/args.js'
import { health, mb, percentile, sleep, startFleet, startNode, series, startPublisher, startSampler, summarize, type Fleet, type Publisher, type Node } from './lib/fleet.js'
import { AFTER_MS, LAG_BOUND_MS, RSS_BOUND_FACTOR, checkArgs, option, print, renameSeries, waitFor, type Output } from './herd.js'

const RATE = 10

export async function nodeLoss (args: string[]): Promise<Output> {
  const viewers = countFlag(args, 'viewers', 3000)
  const count = countFlag(args, 'nodes', 3)
  if (count < 2) throw new Error('--nodes: at least 2 (one dies)')
  const feeds = Array.from({ length: countFlag(args, 'feeds', 3) }, (_f, i) => `matches/loss-${i}/events`)
  const transport = option(args, 'transport', ['ws', 'tcp'], 'ws')
  const qos = Number(option(args, 'qos', ['0', '1'], '1')) as 0 | 1
  const capS = countFlag(args, 'cap', 120)
  const dir = mkdtempSync(join(tmpdir(), 'tribune-node-loss-'))
  const redis = await spawnRedisServer({ port: await freePort(), dir })
  const nodes: Node[] = []
  let fleet: Fleet | undefined
  let publisher: Publisher | undefined
  let sampler: ReturnType<typeof startSampler> | undefined
  try {
    for (let i = 0; i < count; i++) nodes.push(await startNode(`n${i}`, ['--redis', redis.url, '--node-id', `n${i}`]))
    sampler = startSampler(nodes)
    const s = sampler
    const urls = nodes.map((n) => transport === 'ws' ? n.wsUrl : n.tcpUrl)
    publisher = await startPublisher(nodes[0].tcpUrl, feeds, RATE, (acked) => fleet?.published(acked))
    const f = startFleet({ urls, feeds, spread: true, qos, connectTimeoutMs: 10_000, initialConcurrency: 200 }, viewers)
    fleet = f
    const started = Date.now()
    console.error(`node-loss: ${viewers} ${transport} viewers at QoS ${qos} over ${count} nodes, ${feeds.length} feeds; joining`)
    if (!await waitFor(f, () => f.status().recovered === viewers, started, 300_000, 'join', nodes)) throw new Error(`only ${f.status().recovered} of ${viewers} viewers joined within 300 s`)
    const joinS = (Date.now() - started) / 1000
    await sleep(5000)
    const dead = nodes[count - 1]
    const survivors = nodes.slice(0, -1)
    const before = f.status()
    const healthBefore = await Promise.all(survivors.map(async (n) => (await health(n.healthUrl, 5000)).body))
    const t0 = Date.now()
    const affected = await f.mark(urls[count - 1], t0)
    dead.kill()
    s.drop(dead.name)
    console.error(`node-loss: ${viewers} in after ${joinS.toFixed(1)} s, ${before.perUrl.join('/')} per node; ${dead.name} killed (${affected} viewers)`)
    const back = await waitFor(f, () => { const st = f.status(); return st.affected === affected && st.recovered === affected }, t0, capS * 1000, 'loss', survivors)
    const t1 = Date.now()
    await sleep(AFTER_MS)
    const finals = await publisher.stop()
    f.published(finals)
    await sleep(500)
    // Viewers that lost a connection after they were back (see lostConnections) come back before the check, or not.
    const settled = await waitFor(f, () => f.status().current === viewers, Date.now(), 30_000, 'settle', survivors)
    const after = f.status()
    const checked = await f.check(finals)
    const healthAfter = await Promise.all(survivors.map(async (n) => (await health(n.healthUrl, 10_000)).body))
    const refused = (k: string): number => survivors.reduce((sum, _n, i) => sum + (healthAfter[i]?.admission?.refused[k] ?? 0) - (healthBefore[i]?.admission?.refused[k] ?? 0), 0)
    const base = survivors.map((n) => summarize(s.samples, n, t0 - 5000, t0))
    const during = survivors.map((n) => summarize(s.samples, n, t0, t1 + AFTER_MS))
    const recovered = checked.recoveryMs.filter((ms) => ms >= 0)
    const boundS = affected / (survivors.length * ADMISSION_DEFAULTS.maxConnRate) + 0.5
    const max = (k: string, of: Array<Record<string, number>>): number => Math.max(...of.map((x) => x[k]))
    const figures: Record<string, number | string> = {
      viewers, nodes: count, feeds: feeds.length, transport, qos,
      firstJoinS: Math.round(joinS * 10) / 10,
      viewersPerNodeBefore: before.perUrl.join('/'),
      viewersOfDeadNode: affected,
      backAndCaughtUp: recovered.length,
      allBackS: back ? percentile(recovered, 1) / 1000 : `not within ${capS} s`,
      backP50S: percentile(recovered, 0.5) / 1000,
      backP99S: percentile(recovered, 0.99) / 1000,
      boundS: Math.round(boundS * 100) / 100,
      viewersPerNodeAfter: after.perUrl.join('/'),
      exactViewers: checked.exact,
      lastSeqs: finals.join('/'),
      duplicates: after.duplicates, gaps: after.gaps, resets: after.resets + after.epochChanges,
      tries: after.attempts - before.attempts,
      lostConnections: after.lost - before.lost - affected,
      allCurrentAtEnd: settled ? 'yes' : `no: ${after.current} of ${viewers} live with the last seq 30 s after the publisher stopped`,
      refusedSeenByViewers: after.refused - before.refused,
      connackTimeouts: after.timeouts - before.timeouts,
      connectErrors: after.errors + after.closed - before.errors - before.closed,
      refusedRate: refused('rate'), refusedOverload: refused('overload'), refusedMaxConnections: refused('max-connections'),
      healthTimeouts: during.reduce((a, d) => a + d.probeTimeouts, 0), healthMaxMs: max('probeMaxMs', during),
      healthLongestSilenceMs: max('longestSilenceMs', during),
      lagBeforeMaxMs: max('lagMaxMs', base), lagMaxMs: max('lagMaxMs', during),
      loopDelayBeforeMaxMs: max('loopDelayMaxMs', base), loopDelayMaxMs: max('loopDelayMaxMs', during),
      cpuBeforePct: survivors.map((_n, i) => base[i].cpuPct).join('/'), cpuDuringPct: survivors.map((_n, i) => during[i].cpuPct).join('/'),
      rssBeforeMB: survivors.map((_n, i) => base[i].rssEndMB).join('/'),
      rssMaxMB: survivors.map((_n, i) => during[i].rssMaxMB).join('/'),
      rssEndMB: survivors.map((n) => mb(n.rss())).join('/'),
      publishAckMaxMs: publisher.maxAckMs()
    }
    for (const n of survivors) Object.assign(figures, renameSeries(series(s.samples, n, t0 - 5000, t1 + AFTER_MS), `_${n.name}`))
    const exact = checked.exact === viewers
    const answering = max('probeTimeouts', during) === 0 && max('longestSilenceMs', during) < 2000
    const bounded = Math.max(max('loopDelayMaxMs', during), max('lagMaxMs', during)) < LAG_BOUND_MS && survivors.every((_n, i) => during[i].rssMaxMB < RSS_BOUND_FACTOR * base[i].rssEndMB)
    figures.met = back && exact && answering && bounded ? 'yes' : 'no'
    const notes = [`every viewer back and exact: ${back && exact ? 'yes' : `no (${recovered.length} of ${affected} back, ${checked.exact} of ${viewers} exact)`}; survivors' /healthz answering throughout (no 2 s timeout, no silence of 2 s): ${answering ? 'yes' : 'no'}; lag under ${LAG_BOUND_MS} ms and RSS under ${RSS_BOUND_FACTOR}x the pre-loss figure on each survivor: ${bounded ? 'yes' : 'no'}`,
      `bound: ${affected} / (${survivors.length} survivors x ${ADMISSION_DEFAULTS.maxConnRate}/s) + 0.5 s jitter = ${boundS.toFixed(2)} s; measured ${typeof figures.allBackS === 'number' ? `${figures.allBackS} s` : String(figures.allBackS)}`,
      ...checked.faults.map((x) => `not exact: ${x}`)]
    return { kind: 'node-loss', figures, notes }
  } finally {
    await publisher?.stop()
    sampler?.stop()
    await fleet?.stop()
    for (const n of nodes) await n.stop()
    await redis.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2)
  Promise.resolve().then(async () => {
    checkArgs(args, ['--viewers', '--nodes', '--feeds', '--transport', '--qos', '--cap'])
    const out = await nodeLoss(args)
    print(out, args.includes('--json'))
    if (out.figures.met !== 'yes') process.exitCode = 1
  }).catch((err: Error) => {
    console.error(`bench:node-loss: ${err.message}`)
    process.exitCode = 1
  })
}
