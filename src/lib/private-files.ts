/**
 * The data directory holds password hashes, every Config Store entry, the
 * bare cluster repos and the bootstrap signing key: nothing in it is for
 * another local user. Directories are 0700 and files keep only their
 * owner's bits, whatever the umask the service was started with.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The umask for the service and every process it starts (git, sqlite files). */
export const PRIVATE_UMASK = 0o077;

/** Bits another user could use: group and other. */
const SHARED_BITS = 0o077;

/** Creates a directory (and its parents) for this user only; an existing one is made private too. */
export function makePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** Writes a file only this user can read, whatever mode it had before. */
export function writePrivateFile(file: string, data: string | Buffer): void {
  writeFileSync(file, data, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Makes one path private if it is not; true when it had to be changed. Missing paths are skipped. */
export function makePrivate(path: string): boolean {
  let mode: number;
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return false;
    mode = st.mode;
  } catch {
    return false;
  }
  if ((mode & SHARED_BITS) === 0) return false;
  chmodSync(path, mode & 0o700);
  return true;
}

/**
 * Takes group and other bits off `root` and the named entries in it, walking
 * into directories (symbolic links are not followed). Only the service's
 * own entries are named: a data directory set to a shared place (a home
 * directory) keeps whatever else is in it as it was. Returns the paths
 * changed, so that the caller can say what was loose.
 */
export function tightenTree(root: string, entries: string[]): string[] {
  const changed: string[] = [];
  const walk = (path: string) => {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return;
    }
    if (st.isSymbolicLink()) return;
    if (makePrivate(path)) changed.push(path);
    if (!st.isDirectory()) return;
    let names: string[];
    try {
      names = readdirSync(path);
    } catch {
      return;
    }
    for (const n of names) walk(join(path, n));
  };
  if (makePrivate(root)) changed.push(root);
  for (const e of entries) walk(join(root, e));
  return changed;
}
