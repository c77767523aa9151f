/**
 * Reading a V8 CPU profile (the `.cpuprofile` JSON `node --cpu-prof` writes: a call tree of nodes with call frames,
 * plus samples and their time deltas in µs): self time per function and per package, and a flame graph as SVG
 * (the root at the bottom, each frame as wide as its inclusive time, frames under 0.2% of the total left out).
 */

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
/** The `.cpuprofile` format (Chrome DevTools protocol, Profiler.Profile). */
export interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

/** A row of a summary: a share of all sampled time (0..1). */
export interface ShareRow { name: string, share: number }

/** Where a frame's code comes from: an npm package, Tribune, Node itself, or V8 (GC, idle, program). */
export function origin (frame: CallFrame): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url)
  if (pkg !== null) return pkg[1]
  if (frame.url.startsWith('node:')) return 'node'
  if (frame.url.includes('/dist/')) return 'tribune'
  return frame.url === '' ? `(${frame.functionName.replace(/[()]/g, '') || 'native'})` : 'other'
}

function label (frame: CallFrame): string {
  const file = frame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, '').replace(/^node:/, '')
  return `${frame.functionName || '(anonymous)'}${file !== '' ? ` ${file}:${frame.lineNumber + 1}` : ''}`
}

function selfTimes (profile: CpuProfile): Map<number, number> {
  const self = new Map<number, number>()
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  return self
}

/**
 * Self time by function (`name file:line`) and by origin, largest first, as shares of all sampled time.
 * @param top rows per list
 */
export function summarize (profile: CpuProfile, top = 25): { functions: ShareRow[], origins: ShareRow[], totalMs: number } {
  const self = selfTimes(profile)
  const total = [...self.values()].reduce((a, b) => a + b, 0) || 1
  const byFunction = new Map<string, number>()
  const byOrigin = new Map<string, number>()
  for (const node of profile.nodes) {
    const t = self.get(node.id) ?? 0
    byFunction.set(label(node.callFrame), (byFunction.get(label(node.callFrame)) ?? 0) + t)
    byOrigin.set(origin(node.callFrame), (byOrigin.get(origin(node.callFrame)) ?? 0) + t)
  }
  const rows = (m: Map<string, number>): ShareRow[] => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, t]) => ({ name, share: t / total }))
  return { functions: rows(byFunction), origins: rows(byOrigin), totalMs: total / 1000 }
}

const COLOURS: Record<string, string> = { tribune: '#1f77b4', aedes: '#ff7f0e', node: '#9ecae1', ws: '#2ca02c', 'mqtt-packet': '#d62728', mqemitter: '#9467bd' }
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/**
 * A flame graph of `profile` as a standalone SVG, `width` px wide, 16 px per stack level. Frames are coloured by
 * origin (Tribune blue, aedes orange, Node light blue, ws green, mqtt-packet red, mqemitter purple, others grey);
 * each has a tooltip with its name and share. `(idle)` and `(program)` are left out of the total.
 */
export function flameGraph (profile: CpuProfile, title: string, width = 1200): string {
  const self = selfTimes(profile)
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const inclusive = new Map<number, number>()
  const sum = (node: ProfileNode): number => {
    let t = self.get(node.id) ?? 0
    for (const c of node.children ?? []) {
      const child = byId.get(c)
      if (child !== undefined && !['(idle)', '(program)'].includes(child.callFrame.functionName)) t += sum(child)
    }
    inclusive.set(node.id, t)
    return t
  }
  const root = profile.nodes[0]
  const total = sum(root) || 1
  const rects: string[] = []
  let depth = 0
  const draw = (node: ProfileNode, x: number, level: number): void => {
    const w = (inclusive.get(node.id) ?? 0) / total * width
    if (w < width * 0.002) return
    depth = Math.max(depth, level)
    if (level > 0) {
      const share = (100 * (inclusive.get(node.id) ?? 0) / total).toFixed(1)
      const name = label(node.callFrame)
      const fill = COLOURS[origin(node.callFrame)] ?? '#bbbbbb'
      const text = w > 40 ? `<text x="${(x + 3).toFixed(1)}" y="${-level * 16 + 12}" font-size="10">${esc(name.slice(0, Math.floor(w / 6)))}</text>` : ''
      rects.push(`<g><title>${esc(name)}: ${share}%</title><rect x="${x.toFixed(1)}" y="${-level * 16}" width="${w.toFixed(1)}" height="15" fill="${fill}"/>${text}</g>`)
    }
    let cx = x
    for (const c of node.children ?? []) {
      const child = byId.get(c)
      if (child === undefined || !inclusive.has(child.id)) continue
      draw(child, cx, level + 1)
      cx += (inclusive.get(child.id) ?? 0) / total * width
    }
  }
  draw(root, 0, 0)
  const height = (depth + 1) * 16 + 40
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 ${-depth * 16 - 30} ${width} ${height}" font-family="sans-serif">`,
    `<text x="0" y="${-depth * 16 - 12}" font-size="14" font-weight="bold">${esc(title)}</text>`,
    ...rects,
    '</svg>',
    ''
  ].join('\n')
}
