#!/usr/bin/env node
// The `tribune` command: one entry, subcommands dispatched to the compiled modules in dist/.
// Run `npm run build` first (npm start and npm test do it for you).
const commands = {
  broker: ['../dist/broker/src/cli.js', 'brokerMain', 'run a broker node (MQTT over TCP and WebSocket, feeds, /healthz)'],
  cluster: ['../dist/broker/src/cluster/cli.js', 'clusterMain', 'run N broker nodes on this machine sharing the ports, linked by Redis'],
  replay: ['../dist/publisher/src/cli.js', 'replayMain', 'replay a World Cup JSON file into a broker as live match events'],
  watch: ['../dist/client/src/cli.js', 'watchMain', 'watch a topic or feed and print one JSON line per message'],
  admin: ['../dist/client/src/admin/cli.js', 'adminMain', 'operators: every node\'s stats, list and kick clients, reset feeds ($admin topics)'],
  demo: ['../dist/broker/src/demo.js', 'demoMain', 'the main job: a broker with a World Cup replayed into it'],
  'hash-password': ['../dist/broker/src/auth/cli.js', 'hashPasswordMain', 'hash a password (stdin) or make an API key, for the auth section']
}

function usage () {
  const lines = ['Usage: tribune <command> [options]', '', 'Commands:']
  for (const [name, [, , what]] of Object.entries(commands)) lines.push(`  ${name.padEnd(14)} ${what}`)
  lines.push('', 'Run `tribune <command> --help` for the options of a command; `tribune --version` (-v) prints the version.')
  return lines.join('\n')
}

const [name, ...rest] = process.argv.slice(2)
if (!name || name === '--help' || name === '-h' || name === 'help') {
  console.log(usage())
  process.exit(name ? 0 : 2)
}
if (name === '--version' || name === '-v') {
  const { readFileSync } = await import('node:fs')
  console.log(`tribune ${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}`)
  process.exit(0)
}
const entry = commands[name]
if (!entry) {
  console.error(`tribune: unknown command "${name}"\n\n${usage()}`)
  process.exit(2)
}
let mod
try {
  mod = await import(new URL(entry[0], import.meta.url))
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('tribune: the compiled code is missing; run `npm run build` first')
    process.exit(2)
  }
  throw err
}
const code = await mod[entry[1]](rest)
if (typeof code === 'number') process.exitCode = code
// A node forked by `tribune cluster` has an IPC channel to the primary, which would keep it alive after a clean stop.
if (process.connected) process.disconnect()
