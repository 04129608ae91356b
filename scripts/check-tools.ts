import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The system programs the tests run, checked before `npm test` (pretest).
 * A missing one is installed when that is safe to do unasked — as root, with
 * apt-get — and otherwise named in one line with the command that installs
 * it, so that a fresh machine fails before the first test, not halfway.
 */

export interface Tool {
  command: string;
  /** The Debian package that installs it. */
  pkg: string;
  /** Why the tests need it (for the message). */
  use: string;
  /** Directories searched besides PATH: daemons live in sbin, often not on a user's PATH. */
  also?: string[];
  /** Arguments that must run successfully, for a tool that is more than a command (a Python module). */
  probe?: string[];
}

export const TOOLS: Tool[] = [
  { command: 'git', pkg: 'git', use: 'the Git server and clients' },
  { command: 'openssl', pkg: 'openssl', use: 'test certificates' },
  { command: 'shellcheck', pkg: 'shellcheck', use: 'bootstrap script checks' },
  { command: 'dash', pkg: 'dash', use: 'bootstrap script runs' },
  { command: 'kubectl', pkg: 'kubernetes-client', use: 'deploy/ manifest checks' },
  {
    command: 'mosquitto',
    pkg: 'mosquitto',
    use: 'Sparkplug tests against a second broker',
    also: ['/usr/sbin', '/sbin'],
  },
  { command: 'ps', pkg: 'procps', use: 'child process checks' },
  { command: 'chromium', pkg: 'chromium', use: 'the status page test in a headless browser' },
  {
    command: 'python3',
    pkg: 'python3-yaml',
    use: 'PyYAML, a YAML 1.1 reader judging the YAML the service writes',
    probe: ['-c', 'import yaml'],
  },
];

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where a command is found: on `path`, then in the tool's extra directories. */
export function findTool(command: string, also: string[] = [], path = process.env.PATH ?? ''): string | undefined {
  for (const dir of [...path.split(delimiter), ...also]) {
    if (dir && executable(join(dir, command))) return join(dir, command);
  }
  return undefined;
}

export function missingTools(path = process.env.PATH ?? ''): Tool[] {
  return TOOLS.filter((t) => {
    const file = findTool(t.command, t.also, path);
    return !file || (t.probe !== undefined && spawnSync(file, t.probe, { stdio: 'ignore' }).status !== 0);
  });
}

/** The one line that names what is missing and how to install it. */
export function missingMessage(missing: Tool[]): string {
  const pkgs = missing.map((t) => t.pkg).join(' ');
  return (
    `missing system tools for the tests: ${missing.map((t) => `${t.command} (${t.use})`).join(', ')}; ` +
    `install them with: sudo apt-get install -y ${pkgs}  (Debian/Ubuntu package names)`
  );
}

function main(): number {
  const missing = missingTools();
  if (!missing.length) return 0;
  const canInstall = process.getuid?.() === 0 && findTool('apt-get') !== undefined;
  if (!canInstall) {
    console.error(missingMessage(missing));
    return 1;
  }
  const pkgs = missing.map((t) => t.pkg);
  console.error(`installing the system tools the tests need: apt-get install ${pkgs.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (...args: string[]) =>
    spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
  if (!apt('update', '-qq') || !apt('install', '-y', '-qq', '--no-install-recommends', ...pkgs)) {
    console.error(`apt-get could not install them; ${missingMessage(missingTools())}`);
    return 1;
  }
  const still = missingTools();
  if (still.length) {
    console.error(missingMessage(still));
    return 1;
  }
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = main();
