/** The broker's logger: pino on stdout, as JSON lines or, for a person at a terminal, pretty lines (pino-pretty). */
import { pino, type Logger } from 'pino'
import pretty from 'pino-pretty'

export type { Logger }

/** `json`: one JSON object per line (log collectors); `pretty`: time, level, message and fields on one readable line. */
export type LogFormat = 'pretty' | 'json'

/**
 * Creates the logger at `level` (`silent` for none), writing to stdout.
 * @param format `pretty` or `json`; when undefined, pretty if stdout is a terminal and JSON otherwise (a pipe, a
 *   file, a service manager's journal)
 */
export function createLogger (level: string, format?: LogFormat, name = 'tribune'): Logger {
  if ((format ?? (process.stdout.isTTY ? 'pretty' : 'json')) === 'json') return pino({ name, level })
  // In the main thread and synchronous, as pino's own stdout is: the last lines before an exit are not lost.
  return pino({ name, level }, pretty({ translateTime: 'SYS:HH:MM:ss.l', ignore: 'hostname', singleLine: true, sync: true }))
}
