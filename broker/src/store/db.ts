/**
 * Opens the embedded store: classic-level (LevelDB) under `--data-dir`, or memory-level for `:memory:`.
 * Retained messages and sessions (aedes-persistence-level) and feed history share one database in separate sublevels.
 */
import { mkdirSync } from 'node:fs'
import { ClassicLevel } from 'classic-level'
import { MemoryLevel } from 'memory-level'

export type Database = ClassicLevel<string, Buffer> | MemoryLevel<string, Buffer>

/**
 * Opens the database for `dataDir` (`:memory:` for none), creating the directory when missing.
 * @throws Error naming the directory when it cannot be created or is locked by another process
 */
export async function openDatabase (dataDir: string): Promise<Database> {
  if (dataDir === ':memory:') {
    const db = new MemoryLevel<string, Buffer>({ keyEncoding: 'utf8', valueEncoding: 'buffer' })
    await db.open()
    return db
  }
  try {
    mkdirSync(dataDir, { recursive: true })
  } catch (err) {
    throw new Error(`data dir ${dataDir}: cannot create it (${(err as Error).message})`)
  }
  const db = new ClassicLevel<string, Buffer>(dataDir, { keyEncoding: 'utf8', valueEncoding: 'buffer' })
  try {
    await db.open()
  } catch (err) {
    const cause = (err as { cause?: Error & { code?: string } }).cause
    // LevelDB's lock file: another process (a broker, running or stopping) has the store open.
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new Error(`data dir ${dataDir} is in use by another broker (its store is locked): stop that one, or give this node another --data-dir`)
    }
    throw new Error(`data dir ${dataDir}: cannot open the store (${cause?.message ?? (err as Error).message}); is another broker using it?`)
  }
  return db
}
