/**
 * `npm run bench:profile`: where Tribune's time goes in the two scenarios that matter most, with `node --cpu-prof`
 * on the broker process: fan-out at saturation (1,000 WebSocket viewers, QoS 0) and a join storm (5,000 WebSocket
 * viewers with `$replay` and a retained state). Writes bench/PROFILE.md (self time by function and by origin),
 * bench/profile/<scenario>.svg (flame graphs) and bench/profile/<scenario>.cpuprofile (for Chrome DevTools or
 * speedscope; not kept in git).
 *
 * Usage: npm run bench:profile -- [--seconds 6] [--viewers 1000] [--joins 5000]
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fanout } from './fanout.js'
import { joins } from './joins.js'
import { flameGraph, summarize, type CpuProfile } from './lib/profile.js'
import { countFlag } from './lib/args.js'

const BENCH = fileURLToPath(new URL('../../bench/', import.meta.url))

/** Runs `work` against a broker started with --cpu-prof and returns the profile it wrote on exit. */
async function profiled (work: (nodeArgs: string[]) => Promise<unknown>): Promise<{ profile: CpuProfile, file: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tribune-prof-'))
  await work(['--cpu-prof', '--cpu-prof-dir', dir])
  const name = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (name === undefined) throw new Error(`the broker wrote no profile into ${dir}`)
  return { profile: JSON.parse(readFileSync(join(dir, name), 'utf8')) as CpuProfile, file: join(dir, name) }
}

/** The command line. */
export async function main (args: string[]): Promise<void> {
  if (args.includes('--help')) {
    console.log('npm run bench:profile -- [--seconds 6] [--viewers 1000] [--joins 5000]: writes bench/PROFILE.md and bench/profile/')
    return
  }
  const seconds = countFlag(args, 'seconds', 6)
  const viewers = countFlag(args, 'viewers', 1000)
  const storm = countFlag(args, 'joins', 5000)
  mkdirSync(join(BENCH, 'profile'), { recursive: true })
  const sections: string[] = []
  const runs = [
    { name: 'fanout', title: `fan-out at saturation: ${viewers.toLocaleString('en-US')} WS viewers, QoS 0, 64-byte payloads, ${seconds} s`, work: async (nodeArgs: string[]) => await fanout({ broker: 'tribune', viewers, qos: 0, seconds, rate: 0, transport: 'ws', nodeArgs }) },
    { name: 'joins', title: `join storms: a cold one, then a warm one, of ${storm.toLocaleString('en-US')} WS viewers each, $replay/all (20 messages) + retained state, 500 at once`, work: async (nodeArgs: string[]) => await joins(['tribune'], { viewers: storm, history: 20, concurrency: 500, nodeArgs, rounds: 1 }) }
  ]
  for (const run of runs) {
    process.stderr.write(`profiling ${run.title}\n`)
    const { profile, file } = await profiled(run.work)
    copyFileSync(file, join(BENCH, 'profile', `${run.name}.cpuprofile`))
    rmSync(file, { force: true })
    writeFileSync(join(BENCH, 'profile', `${run.name}.svg`), flameGraph(profile, `Tribune, ${run.title}`))
    const s = summarize(profile, 20)
    const pct = (x: number): string => `${(100 * x).toFixed(1)}%`
    sections.push(
      `## ${run.title}`, '',
      `![flame graph](profile/${run.name}.svg)`, '',
      `${s.totalMs.toFixed(0)} ms sampled over the broker process's life (start and stop included).`, '',
      '| origin | self time |', '|---|---:|', ...s.origins.map((r) => `| ${r.name} | ${pct(r.share)} |`), '',
      '| function | self time |', '|---|---:|', ...s.functions.map((r) => `| \`${r.name.replace(/\|/g, '\\|')}\` | ${pct(r.share)} |`), ''
    )
  }
  writeFileSync(join(BENCH, 'PROFILE.md'), [
    '# Where Tribune\'s time goes', '',
    `\`npm run bench:profile\`, ${new Date().toISOString().slice(0, 10)}: \`node --cpu-prof\` on the broker process while the load generator`,
    'runs in another process on the same 2 cores. Flame graphs: the root at the bottom, width = share of the sampled time',
    '(idle left out); Tribune blue, aedes orange, Node grey-blue, ws green, mqtt-packet red, mqemitter purple. The raw',
    'profiles (`bench/profile/*.cpuprofile`, not in git) open in Chrome DevTools or speedscope.', '',
    ...sections
  ].join('\n'))
  process.stderr.write('wrote bench/PROFILE.md and bench/profile/\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(`bench:profile: ${err.message}`)
    process.exitCode = 1
  })
}
