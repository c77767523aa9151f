/**
 * Preloaded into a Tribune node by bench/lib/fleet.ts (`node --import <this> bin/tribune.js broker ...`): the node's
 * event-loop delay as Node measures it (perf_hooks.monitorEventLoopDelay, 10 ms resolution), its maximum over each
 * 250 ms written as one line to file descriptor 3, a pipe to the bench. Unlike /healthz's admission.lagMs (the last
 * 50 ms sample, read when the node is free to answer), it sees the long turns themselves. Touches nothing else.
 */
import { writeSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'

const delay = monitorEventLoopDelay({ resolution: 10 })
delay.enable()
setInterval(() => {
  try { writeSync(3, `${Math.round(delay.max / 1e6)}\n`) } catch {}
  delay.reset()
}, 250).unref()
