// Small line charts drawn by hand in SVG (no library: a polyline per node over a shared time axis).
const SVG = 'http://www.w3.org/2000/svg'

/** One line of a chart: its colour and its points `[ms since 1970, value]` (null values break the line). */
export interface Line {
  color: string
  points: ReadonlyArray<readonly [number, number | null]>
}

/**
 * An SVG chart of `lines` over `[from, to]` (ms), y from 0 to the largest value (at least `minMax`), `width` x
 * `height` in its own units (it scales to its box).
 */
export function lineChart (lines: readonly Line[], from: number, to: number, opts: { width?: number, height?: number, minMax?: number } = {}): SVGSVGElement {
  const width = opts.width ?? 300
  const height = opts.height ?? 60
  let max = opts.minMax ?? 1
  for (const l of lines) for (const [, v] of l.points) if (v !== null && v > max) max = v
  const x = (t: number): number => ((t - from) / Math.max(1, to - from)) * width
  const y = (v: number): number => height - 2 - (v / max) * (height - 4)
  const svg = document.createElementNS(SVG, 'svg')
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  svg.setAttribute('preserveAspectRatio', 'none')
  svg.setAttribute('role', 'img')
  const grid = document.createElementNS(SVG, 'line')
  for (const [k, v] of Object.entries({ x1: 0, x2: width, y1: height - 1, y2: height - 1, stroke: '#263241', 'stroke-width': 1 })) grid.setAttribute(k, String(v))
  svg.append(grid)
  for (const line of lines) {
    // A null value (no rate yet, a restart) ends a run; each run is its own polyline.
    let run: string[] = []
    const flush = (): void => {
      if (run.length > 0) {
        const poly = document.createElementNS(SVG, 'polyline')
        poly.setAttribute('points', run.length === 1 ? `${run[0]} ${run[0]}` : run.join(' '))
        poly.setAttribute('fill', 'none')
        poly.setAttribute('stroke', line.color)
        poly.setAttribute('stroke-width', '1.5')
        poly.setAttribute('vector-effect', 'non-scaling-stroke')
        svg.append(poly)
      }
      run = []
    }
    for (const [t, v] of line.points) {
      if (v === null || t < from) flush()
      else run.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`)
    }
    flush()
  }
  return svg
}
