import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './core.js';

const run = promisify(execFile);

/** Environment for the real git CLI in tests: no prompts, no system config, a fixed identity. */
export const gitEnv = {
  ...process.env,
  GIT_TERMINAL_PROMPT: '0',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'h',
  GIT_AUTHOR_EMAIL: 'h@h',
  GIT_COMMITTER_NAME: 'h',
  GIT_COMMITTER_EMAIL: 'h@h',
};

/** Runs git and resolves with its stdout. */
export async function git(args: string[], cwd?: string): Promise<string> {
  return (await run('git', args, { cwd, env: gitEnv, maxBuffer: 64 * 1024 * 1024 })).stdout;
}

/** The URL of a repo on the Git server by UUID, with a credential in it. */
export function repoUrl(gitBase: string, repo: string, cred: { username: string; password: string }): string {
  const url = new URL(`/uuid/${repo}`, gitBase);
  url.username = cred.username;
  url.password = cred.password;
  return url.href;
}

/** A fresh clone in a temporary directory; resolves with its path. */
export async function clone(url: string): Promise<string> {
  const dir = join(tempDir('clone-'), 'r');
  await git(['clone', '-q', url, dir]);
  return dir;
}

/** The commit the remote's main branch points at. */
export async function remoteHead(url: string): Promise<string> {
  return (await git(['ls-remote', url, 'refs/heads/main'])).split(/\s/)[0]!;
}
