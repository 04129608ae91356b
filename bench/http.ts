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
 * 3. GET /v1/events: 100 clients connected while 1,000 status changes are
 *    made over 10 clusters (one every millisecond): the delay from each
 *    change to the first event that shows it, at every client, p50/p99/max.
 * Targets: status >= 2,000 req/s, bootstrap >= 300 req/s, events p99 < 1 s
 * (2 cores).
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
import { request } from 'node:http';

/**
 * `clients` streams of GET /v1/events; each records, per cluster, when it
 * received which `bootstrap.fetches` value.
 */
async function eventClients(base: string, authorization: string, clients: number) {
  const seen: Array<Map<string, Array<[number, number]>>> = [];
  const requests: Array<ReturnType<typeof request>> = [];
  await Promise.all(
    Array.from({ length: clients }, (_, n) => {
      const got = new Map<string, Array<[number, number]>>();
      seen.push(got);
      return new Promise<void>((resolve, reject) => {
        const req = request(`${base}/v1/events`, { headers: { Authorization: authorization } }, (res) => {
          if (res.statusCode !== 200) return reject(new Error(`client ${n}: GET /v1/events ${res.statusCode}`));
          res.setEncoding('utf8');
          let buf = '';
          res.on('data', (chunk: string) => {
            const at = performance.now();
            buf += chunk;
            let end;
            while ((end = buf.indexOf('\n\n')) >= 0) {
              const frame = buf.slice(0, end);
              buf = buf.slice(end + 2);
              if (frame.startsWith('event: synced')) resolve();
              if (!frame.startsWith('event: cluster')) continue;
              const c = JSON.parse(frame.slice(frame.indexOf('data: ') + 6)) as {
                uuid: string;
                bootstrap: { fetches: number };
              };
              let l = got.get(c.uuid);
              if (!l) got.set(c.uuid, (l = []));
              l.push([c.bootstrap.fetches, at]);
            }
          });
        });
        req.on('error', reject);
        req.end();
        requests.push(req);
      });
    }),
  );
  return { seen, close: () => requests.forEach((r) => r.destroy()) };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

const SECONDS = Number(process.argv[2] ?? 10);
const PARTS = new Set((process.argv[3] ?? 'status,bootstrap,events').split(','));
const WARMUP_MS = 1500;

// The event clients are one caller: its share of the streams is all of them.
const s = await startApiStack({ config: { http: { maxEventStreamsPerCaller: 100 } } });
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

  // 3. Events.
  let events: Record<string, unknown> | undefined;
  if (PARTS.has('events')) {
    const CLIENTS = 100;
    const CHANGES = 1000;
    const clusters = await Promise.all(Array.from({ length: 10 }, (_, i) => s.createCluster(`bench_events_${i}`)));
    const { seen, close } = await eventClients(url, bearer, CLIENTS);
    // Change k of a cluster sets its bootstrap.fetches to k, at sentAt.
    const sentAt = new Map(clusters.map((c) => [c, [] as number[]]));
    const base = new Map(clusters.map((c) => [c, (m.status.get(c)?.bootstrap as { fetches?: number })?.fetches ?? 0]));
    const c0 = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < CHANGES; i++) {
      const c = clusters[i % clusters.length];
      const times = sentAt.get(c)!;
      times.push(performance.now());
      void m.status.update(c, { bootstrap: { fetches: base.get(c)! + times.length } });
      await new Promise((r) => setTimeout(r, 1));
    }
    const changeSeconds = (performance.now() - start) / 1000;
    const last = (got: Map<string, Array<[number, number]>>, c: string) => got.get(c)?.at(-1)?.[0] ?? 0;
    const deadline = Date.now() + 30_000;
    while (!seen.every((got) => clusters.every((c) => last(got, c) === base.get(c)! + sentAt.get(c)!.length))) {
      if (Date.now() > deadline) throw new Error('not every change reached every client within 30 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const cpu = process.cpuUsage(c0);
    close();
    // A change is delivered by the first event showing it or a later one (events coalesce).
    const delays: number[] = [];
    let received = 0;
    for (const got of seen) {
      for (const c of clusters) {
        const l = got.get(c)!;
        received += l.length;
        let j = 0;
        sentAt.get(c)!.forEach((t, k) => {
          while (l[j][0] < base.get(c)! + k + 1) j++;
          delays.push(l[j][1] - t);
        });
      }
    }
    delays.sort((a, b) => a - b);
    events = {
      target: 'p99 < 1000 ms',
      clients: CLIENTS,
      changes: CHANGES,
      clusters: clusters.length,
      changeSeconds: +changeSeconds.toFixed(2),
      delayMs: {
        p50: +percentile(delays, 0.5).toFixed(1),
        p99: +percentile(delays, 0.99).toFixed(1),
        max: +delays[delays.length - 1].toFixed(1),
      },
      eventsReceived: received,
      eventsPerClient: Math.round(received / CLIENTS),
      cpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(2),
    };
  }

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
        events,
      },
      null,
      2,
    ),
  );
} finally {
  await s.stop();
  rmSync(s.config.dataDir, { recursive: true, force: true });
}
