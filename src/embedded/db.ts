import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Db = Database.Database;

const STATEMENT_CACHE_LIMIT = 512;

/**
 * Compiling SQL costs more than running a simple query, and the stores ask
 * for the same statements on every request; keep compiled ones by their text.
 * Statements with variable-length IN lists vary, so the cache is bounded.
 */
function cachePreparedStatements(db: Db): void {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      if (cache.size >= STATEMENT_CACHE_LIMIT) cache.clear();
      stmt = prepare(sql);
      cache.set(sql, stmt);
    }
    return stmt;
  }) as Db['prepare'];
}

/**
 * Opens the embedded core's SQLite file. WAL with synchronous=NORMAL makes a
 * committed transaction survive the process being killed at any moment (the
 * WAL frames are in the kernel before commit returns); only a power loss
 * could drop the last transactions, which is acceptable for a local stand-in.
 */
export function openDatabase(file: string): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  cachePreparedStatements(db);
  return db;
}
