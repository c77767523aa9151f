/**
 * Idle memory: resident memory per connected WebSocket viewer. Starts one broker process, reads its RSS (Linux
 * /proc) once it listens, connects N viewers (each CONNECT and one SUBSCRIBE to `matches/1/state`, then idle),
 * waits `idleMs`, and reads the RSS again: bytes per viewer = (after - before) / N.
 */
import { startBrokerProcess, type BrokerKind } from './lib/brokers.js'
import { startLoad, type Load } from './lib/load.js'

export interface MemoryResult {
  broker: string
  viewers: number
  bytesPerViewer: number
  rssBytes: number
}

/** Measures one broker of `kind` with `viewers` idle WebSocket viewers. */
export async function idleMemory (kind: BrokerKind, viewers: number, idleMs = 3000): Promise<MemoryResult> {
  const broker = await startBrokerProcess(kind)
  let load: Load | undefined
  try {
    await new Promise((resolve) => setTimeout(resolve, 500))
    const before = broker.rss()
    load = startLoad({ url: broker.wsUrl, topics: ['matches/1/state'], qos: 0, mode: 'fanout' }, viewers, 2)
    await load.done
    await new Promise((resolve) => setTimeout(resolve, idleMs))
    const after = broker.rss()
    return { broker: kind, viewers, bytesPerViewer: (after - before) / viewers, rssBytes: after }
  } finally {
    await load?.stop()
    await broker.stop()
  }
}
