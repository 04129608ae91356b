import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { GitStorage } from '../git/storage.js';
import { fluxSystemPlaceholder } from './templates.js';

const run = promisify(execFile);

/** Gives the shared Helm charts repo its first commit, unless it has one. */
export async function seedHelmRepo(storage: GitStorage, uuid: string): Promise<void> {
  await storage.ensure(uuid);
  if (Object.keys(storage.branches(uuid)).length > 0) return;
  const wd = await mkdtemp(join(tmpdir(), 'helm-seed-'));
  try {
    const git = (...args: string[]) =>
      run('git', ['-C', wd, ...args], {
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 'Factory+ embedded core',
          GIT_AUTHOR_EMAIL: 'core@factoryplus.local',
          GIT_COMMITTER_NAME: 'Factory+ embedded core',
          GIT_COMMITTER_EMAIL: 'core@factoryplus.local',
        },
      });
    await git('init', '--quiet', '--initial-branch=main');
    await mkdir(join(wd, 'flux-system'));
    await writeFile(join(wd, 'flux-system', 'flux-system.yaml'), fluxSystemPlaceholder);
    await git('add', '-A');
    await git('commit', '--quiet', '-m', 'Initial Helm charts repo');
    await git('push', '--quiet', storage.dir(uuid), 'HEAD:refs/heads/main');
  } finally {
    await rm(wd, { recursive: true, force: true });
  }
}
