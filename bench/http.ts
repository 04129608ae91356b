/**
 * HTTP API throughput against the embedded core, manager and API in this
 * process; the load comes from a child process (bench/load-client.ts).
 *   npx tsx bench/http.ts [seconds=10] [parts=status,bootstrap]
 * 1. GET /v1/cluster/{uuid}/status at concurrency 50, with a Bearer token
 *    from POST /token and with Basic: req/s, p50/p99 latency, errors.
 * 2. GET /v1/cluster/{uuid}/bootstrap?token=... at concurrency 20, with the
 *    473 kB test/fixtures/flux-system.yaml (the size and shape of a real
 *    Flux installation) in the shared Helm repo: req/s,
 *    p50/p99 latency, bytes/s.
 * Targets: status >= 2,000 req/s, bootstrap >= 300 req/s (2 cores).
 * Prints one JSON object.
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { FLUX_SYSTEM_PATH } from '../src/bootstrap/flux-system.js';
import { startApiStack } from '../test/helpers/api.js';
import { fluxSystemFile } from '../test/fixtures/flux-system.js';
import { clone, git, repoUrl } from '../test/helpers/git.js';
import { runLoad, type LoadResult } from './load-client.js';

const SECONDS = Number(process.argv[2] ?? 10);
const PARTS = new Set((process.argv[3] ?? 'status,bootstrap').split(','));
const WARMUP_MS = 1500;

const s = await startApiStack();
const { t, m, url } = s;
try {
  const cluster = await s.createCluster('bench_http');

  // A full-size flux-system.yaml into the shared Helm repo, pushed as admin.
  const helm = (await m.templates.serviceConfig()).repo.helm.uuid;
  const dir = await clone(repoUrl(t.core.endpoints.git, helm, t.core.credentials.admin));
  mkdirSync(dirname(join(dir, FLUX_SYSTEM_PATH)), { recursive: true });
  copyFileSync(fluxSystemFile, join(dir, FLUX_SYSTEM_PATH));
  await git(['add', FLUX_SYSTEM_PATH], dir);
  await git(['commit', '-q', '--allow-empty', '-m', 'bench: full-size flux-system.yaml'], dir);
  await git(['push', '-q', 'origin', 'HEAD:main'], dir);
  rmSync(dirname(dir), { recursive: true, force: true });

  const tok = await fetch(`${url}/token`, { method: 'POST', headers: { Authorization: s.admin } });
  if (tok.status !== 200) throw new Error(`POST /token: ${tok.status} ${await tok.text()}`);
  const bearer = `Bearer ${((await tok.json()) as { token: string }).token}`;

  const cpu = async (run: () => Promise<LoadResult>) => {
    const c0 = process.cpuUsage();
    const r = await run();
    const c = process.cpuUsage(c0);
    return { ...r, serverCpuPercent: Math.round(((c.user + c.system) / 1e6 / r.seconds) * 100) };
  };
  const measure = async (spec: Parameters<typeof runLoad>[0]) => {
    await runLoad({ ...spec, durationMs: WARMUP_MS });
    return cpu(() => runLoad(spec));
  };
  const brief = (r: LoadResult & { serverCpuPercent: number }, extra: Record<string, unknown> = {}) => ({
    concurrency: r.concurrency,
    seconds: r.seconds,
    requests: r.requests,
    reqPerSecond: r.reqPerSecond,
    latencyMs: { p50: r.latencyMs.p50, p99: r.latencyMs.p99, mean: r.latencyMs.mean, max: r.latencyMs.max },
    errors: r.errors,
    ...extra,
    serverCpuPercent: r.serverCpuPercent,
    clientCpuPercent: r.clientCpuPercent,
    ...(r.errors ? { statuses: r.statuses, sampleErrors: r.sampleErrors } : {}),
  });

  // 1. Status.
  const statusPath = `/v1/cluster/${cluster}/status`;
  const statusBearer =
    PARTS.has('status') &&
    (await measure({
      base: url,
      path: statusPath,
      headers: { Authorization: bearer },
      concurrency: 50,
      durationMs: SECONDS * 1000,
    }));
  const statusBasic =
    PARTS.has('status') &&
    (await measure({
      base: url,
      path: statusPath,
      headers: { Authorization: s.admin },
      concurrency: 50,
      durationMs: SECONDS * 1000,
    }));

  // 2. Bootstrap.
  const bu = await fetch(`${url}/v1/cluster/${cluster}/bootstrap-url`, {
    method: 'POST',
    headers: { Authorization: bearer },
  });
  if (bu.status !== 200) throw new Error(`POST bootstrap-url: ${bu.status} ${await bu.text()}`);
  const bootstrapUrl = new URL((await bu.json()) as string);
  const first = await fetch(bootstrapUrl);
  const script = await first.text();
  if (first.status !== 200) throw new Error(`GET bootstrap: ${first.status} ${script.slice(0, 300)}`);
  const fluxBytes = statSync(fluxSystemFile).size;
  if (!script.includes(readFileSync(fluxSystemFile, 'utf8').slice(0, 2000)))
    throw new Error('the bootstrap script does not hold the pushed flux-system.yaml');
  const fetchesBefore = (m.status.get(cluster)?.bootstrap as { fetches?: number } | undefined)?.fetches ?? 0;
  const bootstrap = await measure({
    base: url,
    path: `${bootstrapUrl.pathname}${bootstrapUrl.search}`,
    concurrency: 20,
    durationMs: SECONDS * 1000,
  });
  const fetchesAfter = (m.status.get(cluster)?.bootstrap as { fetches?: number } | undefined)?.fetches ?? 0;
  const pendingAtEnd = m.status.pending;
  const flushStart = Date.now();
  await m.status.flush();
  const flushMs = Date.now() - flushStart;
  const stored = await fetch(
    `${t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.setupStatus}/object/${cluster}`,
    { headers: { Authorization: s.admin } },
  ).then((r) => r.json() as Promise<{ bootstrap?: { fetches?: number } }>);

  console.log(
    JSON.stringify(
      {
        machine: { cpus: cpus().length, loadAverage: loadavg().map((x) => +x.toFixed(2)) },
        status: {
          target: '>= 2000 req/s',
          bearer: statusBearer && brief(statusBearer),
          basic: statusBasic && brief(statusBasic),
        },
        bootstrap: {
          target: '>= 300 req/s',
          ...brief(bootstrap, {
            mbPerSecond: +(bootstrap.bytesPerSecond / 1e6).toFixed(1),
            scriptBytes: Buffer.byteLength(script),
            fluxSystemBytes: fluxBytes,
          }),
          // Includes the warm-up run's fetches.
          fetchCounter: {
            inMemoryDelta: fetchesAfter - fetchesBefore,
            stored: stored.bootstrap?.fetches ?? null,
            inMemory: fetchesAfter,
            statusWritesPendingAtEnd: pendingAtEnd,
            flushMs,
          },
        },
      },
      null,
      2,
    ),
  );
} finally {
  await s.stop();
  rmSync(s.config.dataDir, { recursive: true, force: true });
}
