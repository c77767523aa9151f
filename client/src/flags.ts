/**
 * Command-line flags of every `tribune` command (Node only): node:util `parseArgs`, strict, with an unknown flag
 * answered by the closest known one ("unknown option --form; did you mean --from?").
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'

/** Thrown for an unknown flag; `message` names it and, when one is close, the flag meant. */
export class UnknownFlagError extends Error {
  /** The flag as typed, e.g. `--form`. */
  readonly flag: string
  /** The closest known flag (e.g. `--from`), if one is close enough. */
  readonly suggestion: string | undefined
  constructor (flag: string, suggestion: string | undefined) {
    super(`unknown option ${flag}${suggestion !== undefined ? `; did you mean ${suggestion}?` : ''}`)
    this.name = 'UnknownFlagError'
    this.flag = flag
    this.suggestion = suggestion
  }
}

/**
 * Parses a command line as node:util `parseArgs` does (strict: unknown flags are errors).
 * @throws UnknownFlagError for a flag not in `config.options` (with the closest known flag); else the error of
 *   `parseArgs` (a missing value, a positional where none is allowed)
 */
export function parseFlags<T extends ParseArgsConfig & { strict?: true }> (config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config)
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw err
    // Parsed again leniently, to find the unknown flag: parseArgs names it only in its message.
    const lenient: ParseArgsConfig = { ...config, strict: false, allowPositionals: true, tokens: true }
    const { tokens } = parseArgs(lenient)
    const known = config.options ?? {}
    const unknown = (tokens ?? []).find((t) => t.kind === 'option' && !Object.hasOwn(known, t.name))
    if (unknown === undefined || unknown.kind !== 'option') throw err
    throw new UnknownFlagError(unknown.rawName, unknown.rawName.startsWith('--') ? closestFlag(unknown.name, Object.keys(known)) : undefined)
  }
}

/**
 * The known flag closest to `name` (both without dashes), as `--<flag>`, or undefined when none is within the typos
 * one expects: at most 1 edit for names up to 5 characters, 2 for longer ones (an edit: a character added, removed,
 * replaced, or two neighbours swapped). The first of equally close flags wins.
 */
export function closestFlag (name: string, known: Iterable<string>): string | undefined {
  const limit = name.length <= 5 ? 1 : 2
  let best: string | undefined
  let bestDistance = limit + 1
  for (const flag of known) {
    const d = editDistance(name.toLowerCase(), flag.toLowerCase())
    if (d < bestDistance) {
      best = flag
      bestDistance = d
    }
  }
  return best === undefined ? undefined : `--${best}`
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions, each 1. */
export function editDistance (a: string, b: string): number {
  // d[i][j]: distance between the first i characters of a and the first j of b.
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}
