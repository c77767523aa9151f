/** The broker's logger: pino, JSON lines on stdout. */
import { pino, type Logger } from 'pino'

export type { Logger }

/** Creates the logger at `level` (`silent` for none). */
export function createLogger (level: string, name = 'tribune'): Logger {
  return pino({ name, level })
}
