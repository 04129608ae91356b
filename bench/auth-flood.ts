/**
 * A wrong-password flood against the Cluster Manager with its embedded core
 * (`cluster-manager serve` in its own process, as started by an operator):
 * 48 clients send Basic credentials with wrong passwords for 6 s, half to
 * the Cluster Manager's API and half to the embedded Auth service, some for
 * an existing user name and some for made-up ones. Meanwhile GET /health is
 * timed every 100 ms on a fresh connection.
 *   npx tsx bench/auth-flood.ts [seconds=6] [clients=48]
 * Target: /health under 100 ms throughout (2 cores).
 * Prints one JSON object.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { tempDir } from '../test/helpers/core.js';
import { runMain, waitFor } from '../test/helpers/processes.js';

const SECONDS = Number(process.argv[2] ?? 6);
const CLIENTS = Number(process.argv[3] ?? 48);

const dataDir = tempDir('bench-flood-');
const proc = runMain('serve', {
  DATA_DIR: dataDir,
  PORT: '0',
  LOG_LEVEL: 'warn',
  MQTT_PROTOCOL: '4',
  EMBEDDED_DIRECTORY_PORT: '0',
  EMBEDDED_CONFIGDB_PORT: '0',
  EMBEDDED_AUTH_PORT: '0',
  EMBEDDED_GIT_PORT: '0',
  EMBEDDED_MQTT_PORT: '0',
});
try {
  const file = join(dataDir, 'endpoints.json');
  const endpoints = (await waitFor(
    () => {
      if (!existsSync(file)) return undefined;
      const e = JSON.parse(readFileSync(file, 'utf8')) as { clusterManager: string | null; auth: string };
      return e.clusterManager ? (e as { clusterManager: string; auth: string }) : undefined;
    },
    60_000,
    proc,
    'the Cluster Manager to listen',
  )) as { clusterManager: string; auth: string };
  const manager = endpoints.clusterManager.replace(/\/$/, '');

  /** One GET /health on a new connection; its time in ms. */
  const health = () =>
    new Promise<number>((resolve, reject) => {
      const start = performance.now();
      const r = request(`${manager}/health`, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - start));
      });
      r.on('error', reject);
      r.end();
    });
  const quiet: number[] = [];
  for (let i = 0; i < 10; i++) quiet.push(await health());

  const statuses: Record<string, number> = {};
  const firstMessage: Record<string, string> = {};
  let flooding = true;
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  const client = async (c: number) => {
    const target = c % 2 ? `${manager}/v1/cluster` : new URL('/v2/whoami', endpoints.auth).href;
    for (let i = 0; flooding; i++) {
      const user = c % 3 === 0 ? 'admin' : `user-${c}-${i}`;
      try {
        const r = await fetch(target, { headers: { Authorization: basic(user, `wrong-${c}-${i}`) } });
        const text = await r.text();
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        firstMessage[r.status] ??= text.slice(0, 160);
      } catch {
        statuses.error = (statuses.error ?? 0) + 1;
      }
    }
  };
  const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
  const during: number[] = [];
  const end = Date.now() + SECONDS * 1000;
  while (Date.now() < end) {
    during.push(await health());
    await new Promise((r) => setTimeout(r, 100));
  }
  flooding = false;
  await Promise.all(clients);

  const pct = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 10) / 10;
  };
  const max = Math.round(Math.max(...during) * 10) / 10;
  process.stdout.write(
    `${JSON.stringify(
      {
        clients: CLIENTS,
        seconds: SECONDS,
        floodAnswers: statuses,
        firstMessage,
        healthQuietMs: { p50: pct(quiet, 50), max: pct(quiet, 100) },
        healthDuringFloodMs: { samples: during.length, p50: pct(during, 50), p99: pct(during, 99), max },
        targetMs: 100,
        met: max < 100,
      },
      null,
      2,
    )}\n`,
  );
} finally {
  await proc.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
