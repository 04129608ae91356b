import { execFile } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  type Dirent,
} from 'node:fs';
import { makePrivateDir } from '../../lib/private-files.js';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const OID = /^[0-9a-f]{40}$/;

/**
 * A bare repo's branches as git's files backend keeps them (the backend
 * `git init` makes): `packed-refs` lines `<oid> refs/heads/<name>`, then
 * the loose files under `refs/heads/`, which win. Read synchronously: a few
 * small files, where a round trip through the thread pool per file would
 * cost more than reading them.
 */
function readBranches(gitdir: string): Record<string, string> {
  const out: Record<string, string> = {};
  let packed = '';
  try {
    packed = readFileSync(join(gitdir, 'packed-refs'), 'utf8');
  } catch {
    // No packed refs: every ref is loose.
  }
  for (const line of packed.split('\n')) {
    const m = /^([0-9a-f]{40}) refs\/heads\/(.+)$/.exec(line);
    if (m) out[m[2]] = m[1];
  }
  const walk = (dir: string, prefix: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(dir, e.name), `${prefix}${e.name}/`);
      else if (e.isFile() && !e.name.endsWith('.lock')) {
        // A symbolic ref (`ref: …`) names no commit of its own.
        const oid = readFileSync(join(dir, e.name), 'utf8').trim();
        if (OID.test(oid)) out[`${prefix}${e.name}`] = oid;
      }
    }
  };
  walk(join(gitdir, 'refs', 'heads'), '');
  return out;
}

/**
 * Bare repositories on disk, one per repo UUID, created on first access with
 * `main` as the default branch. Storage outlives the repo's configuration
 * entry, as on the Factory+ Git server.
 */
export class GitStorage {
  private readonly creating = new Map<string, Promise<void>>();
  private pristine: Promise<string> | undefined;

  constructor(readonly root: string) {
    makePrivateDir(root);
  }

  dir(uuid: string): string {
    return join(this.root, `${uuid}.git`);
  }

  has(uuid: string): boolean {
    return existsSync(join(this.dir(uuid), 'HEAD'));
  }

  list(): string[] {
    return readdirSync(this.root)
      .filter((n) => n.endsWith('.git'))
      .map((n) => n.slice(0, -4))
      .sort();
  }

  async ensure(uuid: string): Promise<void> {
    if (this.has(uuid)) return;
    let p = this.creating.get(uuid);
    if (!p) {
      p = this.create(uuid).finally(() => this.creating.delete(uuid));
      this.creating.set(uuid, p);
    }
    await p;
  }

  /**
   * A pristine bare repo made once by `git init`; new repos are copies of it,
   * because starting a process is the dominant cost of creating a repo.
   * Every push is kept as the pack it came in (unpackLimit 1): indexing one
   * pack costs less than writing each object loose. receive-pack's
   * automatic gc (one more process per push) is off; the backend host runs
   * it every hundred pushes instead, which folds the packs together.
   * A local user who could read a bare repo could clone it past the Git
   * server's permissions: core.sharedRepository=0600 makes git write every
   * file 0600 and directory 0700 whatever the umask (init's --shared also
   * turns on receive.denyNonFastForwards, which is turned off again: the
   * server never refused those).
   */
  private template(): Promise<string> {
    this.pristine ??= (async () => {
      const dir = join(this.root, '.pristine');
      const tmp = `${dir}.${process.pid}.${Date.now()}`;
      await run('git', ['init', '--quiet', '--bare', '--shared=0600', '--initial-branch=main', tmp]);
      appendFileSync(
        join(tmp, 'config'),
        '[http]\n\treceivepack = true\n[receive]\n\tunpackLimit = 1\n\tautogc = false\n\tdenyNonFastForwards = false\n',
      );
      rmSync(join(tmp, 'hooks'), { recursive: true, force: true });
      mkdirSync(join(tmp, 'hooks'), { mode: 0o700 });
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      return dir;
    })();
    this.pristine.catch(() => {
      this.pristine = undefined;
    });
    return this.pristine;
  }

  private async create(uuid: string): Promise<void> {
    const dir = this.dir(uuid);
    const tmp = `${dir}.tmp-${process.pid}`;
    cpSync(await this.template(), tmp, { recursive: true });
    renameSync(tmp, dir);
  }

  /**
   * Branch name -> commit id, from the ref files as they are now: the status
   * list is asked for every repo at each drift check, so it reads a few small
   * files in this process instead of starting git.
   */
  branches(uuid: string): Record<string, string> {
    return this.has(uuid) ? readBranches(this.dir(uuid)) : {};
  }
}
