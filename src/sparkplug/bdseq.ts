/**
 * Birth/death sequence number (`bdSeq`) kept on disk.
 *
 * Sparkplug host applications pair an NDEATH with the NBIRTH it ends by
 * `bdSeq`. If a restarted process reused the value of its previous session,
 * a late will from the old session could be taken as the death of the new
 * one, so the last value used is persisted and every CONNECT (including
 * after a restart) uses the next one, wrapping 255 -> 0.
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../lib/log.js';

export class BdSeqStore {
  /** The value used for the latest CONNECT; undefined before the first. */
  private last: number | undefined;
  private loaded = false;

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  /** The bdSeq of the current (or most recent) connection, if any has been made by this process. */
  get current(): number | undefined {
    return this.loaded ? this.last : undefined;
  }

  /**
   * Reserves the bdSeq for the next CONNECT and writes it to disk first, so
   * a crash after connecting can never lead to the same value being reused.
   */
  async next(): Promise<number> {
    if (!this.loaded) {
      this.last = await this.read();
      this.loaded = true;
    }
    const value = this.last === undefined ? 0 : (this.last + 1) % 256;
    await this.write(value);
    this.last = value;
    return value;
  }

  /** The stored value; a missing or unreadable file counts as "never connected". */
  private async read(): Promise<number | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const n = Number(text.trim());
    if (text.trim() === '' || !Number.isInteger(n) || n < 0 || n > 255) {
      this.log.warn({ file: this.file }, 'Ignoring invalid bdSeq file; starting again from 0');
      return undefined;
    }
    return n;
  }

  /** Write-fsync-rename, so a crash leaves either the old or the new value, never a torn file. */
  private async write(value: number): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(`${value}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }
}
