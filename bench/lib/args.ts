/** Command-line flags of the benchmarks. */

/**
 * The whole number after `--<name>` in `args`, or `fallback` when the flag is absent.
 * @throws Error naming the flag when its value is not a whole number of at least 1
 */
export function countFlag (args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`)
  if (i < 0) return fallback
  const n = Number(args[i + 1])
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: must be a whole number of at least 1 (got ${args[i + 1] ?? 'nothing'})`)
  return n
}
