import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Db = Database.Database;

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
  return db;
}
