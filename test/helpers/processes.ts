import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CoreCredentials } from '../../src/embedded/credentials.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const MAIN = join(ROOT, 'src', 'main.ts');

export interface Proc {
  child: ChildProcess;
  /** Everything the process wrote, for failure messages. */
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
  kill(): Promise<number | string>;
}

/**
 * Runs `src/main.ts <command>` in its own Node process with only the given
 * environment; with `compiled`, the built `dist/main.js` instead (as deployed).
 */
export function runMain(
  command: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
  compiled = false,
  opts: { umask?: string } = {},
): Proc {
  const entry = compiled ? [join(ROOT, 'dist', 'main.js')] : ['--import', 'tsx', MAIN];
  const args = [...nodeArgs, ...entry, command];
  // With `umask`, through a shell that sets it and then becomes Node, as an operator's shell would.
  const [file, argv] =
    opts.umask === undefined
      ? [process.execPath, args]
      : ['/bin/sh', ['-c', `umask ${opts.umask}; exec "$0" "$@"`, process.execPath, ...args]];
  const child = spawn(file, argv, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-200_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | string>((res) => child.on('exit', (code, sig) => res(code ?? sig ?? 'unknown')));
  const p: Proc = {
    child,
    output: () => out,
    exited,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    },
  };
  return p;
}

/** Waits until `fn` returns something truthy, failing with the process output after `ms`. */
export async function waitFor<T>(fn: () => T | Promise<T>, ms: number, proc?: Proc, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) {
      throw new Error(`process exited while waiting for ${what}:\n${proc.output().slice(-4000)}`);
    }
    if (Date.now() > end)
      throw new Error(`${what} not met within ${ms} ms${proc ? `:\n${proc.output().slice(-4000)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface CoreProcess extends Proc {
  endpoints: { directory: string; configdb: string; auth: string; git: string; mqtt: string; cmdesc: string };
  credentials: CoreCredentials;
}

/** The embedded Factory+ core in a separate process (`main.ts core`) on ephemeral ports. */
export async function startCoreProcess(
  dataDir: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  opts: { umask?: string } = {},
): Promise<CoreProcess> {
  const file = join(dataDir, 'endpoints.json');
  rmSync(file, { force: true });
  const proc = runMain(
    'core',
    {
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      EMBEDDED_DIRECTORY_PORT: '0',
      EMBEDDED_CONFIGDB_PORT: '0',
      EMBEDDED_AUTH_PORT: '0',
      EMBEDDED_GIT_PORT: '0',
      EMBEDDED_MQTT_PORT: '0',
      EMBEDDED_CMDESC_PORT: '0',
      ...env,
    },
    nodeArgs,
    false,
    opts,
  );
  await waitFor(() => existsSync(file), 30_000, proc, 'the core endpoints file');
  const endpoints = JSON.parse(readFileSync(file, 'utf8')) as CoreProcess['endpoints'];
  const credentials = JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')) as CoreCredentials;
  return Object.assign(proc, { endpoints, credentials });
}

export interface ManagerProcess extends Proc {
  url: string;
}

/**
 * The Cluster Manager in Factory+ mode in a separate process, configured only
 * through environment variables and the Directory URL.
 */
export async function startManagerProcess(o: {
  directoryUrl: string;
  username: string;
  password: string;
  dataDir: string;
  env?: Record<string, string>;
  compiled?: boolean;
  nodeArgs?: string[];
}): Promise<ManagerProcess> {
  const proc = runMain(
    'serve',
    {
      DIRECTORY_URL: o.directoryUrl,
      SERVICE_USERNAME: o.username,
      SERVICE_PASSWORD: o.password,
      DATA_DIR: o.dataDir,
      PORT: '0',
      LOG_LEVEL: 'info',
      MQTT_PROTOCOL: process.env.TEST_MQTT_URL ? '5' : '4',
      ...o.env,
    },
    o.nodeArgs ?? [],
    o.compiled,
  );
  const url = (await waitFor(
    () => {
      for (const line of proc.output().split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const rec = JSON.parse(line) as { msg?: string; url?: string };
          if (rec.msg === 'HTTP API listening' && rec.url) return rec.url;
        } catch {
          /* a partial line */
        }
      }
      return undefined;
    },
    30_000,
    proc,
    'the manager to listen',
  )) as string;
  return Object.assign(proc, { url });
}
