/**
 * Sealing through the HTTP API against the embedded core, manager and API
 * in this process; HTTP load comes from a child process (bench/load-client.ts).
 *   npx tsx bench/seal.ts [throughputSeconds=15] [originalSeconds=8] [sequential=100]
 * (a 0 skips that part, e.g. for profiling one of them)
 * BENCH_CLUSTERS and BENCH_CLIENTS change the 10 clusters and 50 clients.
 * BENCH_CORE=process runs the embedded core (Config Store, Auth, Git server
 * and its `git http-backend` spawns) in its own process, as a deployed
 * Cluster Manager has it, instead of in this one (test/helpers/api.ts).
 * a. Latency of single sequential PUTs on a warm working copy, beside "the
 *    floor": one commit+push of a trivial edit to `git http-backend` with
 *    isomorphic-git on a warm clone (write, add, commit, push), and beside
 *    the same trivial edit through our RepoWriter (objects built with
 *    node:crypto and node:zlib, one receive-pack request per push).
 *    Targets: p50 <= 60 ms, p99 <= 200 ms.
 * b. Throughput: 50 concurrent clients over 10 clusters: sealed secrets/s
 *    (target >= 200/s), commits made (git rev-list on the bare repos), errors.
 * c. The original's way, same concurrency and clusters, for a shorter time:
 *    for each secret a fresh depth-1 clone (isomorphic-git, on disk, as the
 *    original Cluster Manager did), write the manifest, commit, push, delete
 *    the clone; no coalescing, a refused push is a failed request. Sealing is
 *    done natively here (the original ran kubeseal), which flatters it.
 * Prints one JSON object.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import * as fs from 'node:fs';
import { parseSealingCertificate } from '../src/sealing/certificate.js';
import { sealedSecretPath, upsertSealedKey } from '../src/sealing/manifest.js';
import { scopeLabel, sealValue } from '../src/sealing/seal.js';
import { loadConfig } from '../src/config/index.js';
import { GitStorage } from '../src/embedded/git/storage.js';
import { createApi } from '../src/http/index.js';
import { listen } from '../src/lib/listen.js';
import { silentLogger } from '../src/lib/log.js';
import { startManager, type Manager } from '../src/manager.js';
import type { Config } from '../src/config/types.js';
import { startApiStack } from '../test/helpers/api.js';
import { testCert } from '../test/helpers/certs.js';
import { basic, tempDir } from '../test/helpers/core.js';
import { git as gitCli } from '../test/helpers/git.js';
import { startCoreProcess, waitFor } from '../test/helpers/processes.js';
import { runLoad, summarise } from './load-client.js';

const THROUGHPUT_S = Number(process.argv[2] ?? 15);
const ORIGINAL_S = Number(process.argv[3] ?? 8);
const SEQUENTIAL = Number(process.argv[4] ?? 100);
const CLUSTERS = Number(process.env.BENCH_CLUSTERS ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CLIENTS ?? 50);
const FLOOR_RUNS = 30;

/**
 * CPU seconds of a process, and of everything below it: children already
 * waited for, and live ones (the Git server's helper process, whose own
 * children are the git processes), from /proc.
 */
function cpuSeconds(pid: number): { self: number; children: number } {
  const stat = (p: number) => readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const f = stat(pid);
  let children = (Number(f[13]) + Number(f[14])) / 100;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let kid: string[];
    try {
      kid = stat(Number(entry));
    } catch {
      continue;
    }
    if (Number(kid[1]) !== pid) continue;
    const below = cpuSeconds(Number(entry));
    children += below.self + below.children;
  }
  return { self: (Number(f[11]) + Number(f[12])) / 100, children };
}

interface Stack {
  m: Manager;
  /** The core's process when it has its own. */
  corePid?: number;
  config: Config;
  url: string;
  admin: string;
  endpoints: { configdb: string; git: string };
  gitDir(repo: string): string;
  createCluster(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** Like startApiStack, but with the embedded core in its own process. */
async function startSplitStack(): Promise<Stack> {
  const coreDir = tempDir('bench-core-');
  const core = await startCoreProcess(coreDir);
  const config = loadConfig({
    env: {},
    overrides: { dataDir: tempDir('bench-cm-'), reconcile: { resyncSeconds: 600 } },
  });
  const m = await startManager({
    config,
    directoryUrl: core.endpoints.directory,
    credentials: core.credentials.clusterManager,
    mqttProtocol: 4,
    log: silentLogger,
  });
  let base = '';
  const { app } = createApi(m, silentLogger, { externalUrl: () => base });
  const server = await listen(app.callback(), '127.0.0.1', 0);
  base = server.url.replace(/\/$/, '');
  await waitFor(() => m.controller.ready, 10_000, undefined, 'first resync');
  const admin = basic(core.credentials.admin.username, core.credentials.admin.password);
  const storage = new GitStorage(join(coreDir, 'git'));
  const cdb = async (method: string, path: string, body: unknown) => {
    const r = await fetch(`${core.endpoints.configdb}${path}`, {
      method,
      headers: { Authorization: admin, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    const text = await r.text();
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  return {
    m,
    config,
    url: base,
    admin,
    endpoints: core.endpoints,
    corePid: core.child.pid,
    gitDir: (repo) => storage.dir(repo),
    async createCluster(name) {
      const { uuid } = (await cdb('POST', '/v2/object', { class: config.uuids.class.edgeCluster })) as { uuid: string };
      await cdb('PUT', `/v2/app/${config.uuids.app.clusterConfig}/object/${uuid}`, { name, namespace: 'fplus-edge' });
      await waitFor(() => m.status.get(uuid)?.ready === true, 30_000, undefined, `cluster ${name} ready`);
      return uuid;
    },
    async stop() {
      await server.close();
      await m.stop();
      await core.stop();
      rmSync(coreDir, { recursive: true, force: true });
    },
  };
}

async function startStack(): Promise<Stack> {
  if (process.env.BENCH_CORE === 'process') return startSplitStack();
  const a = await startApiStack();
  return { ...a, endpoints: a.t.core.endpoints, gitDir: (repo) => a.t.core.git.dir(repo) };
}

const cert = testCert('rsa');
const s = await startStack();
const { m, url } = s;
const u = s.config.uuids;
const round = (x: number, d = 1) => +x.toFixed(d);
const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};

try {
  // Ten commissioned clusters, each with a sealing certificate.
  const clusters = await Promise.all(Array.from({ length: CLUSTERS }, (_, i) => s.createCluster(`bench_seal_${i}`)));
  await Promise.all(
    clusters.map(async (c) => {
      const r = await fetch(`${s.endpoints.configdb}/v2/app/${u.app.edgeStatus}/object/${c}`, {
        method: 'PUT',
        headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
        body: JSON.stringify({ kubeseal_cert: cert.certPem }),
      });
      if (r.status >= 300) throw new Error(`PUT edge status of ${c}: ${r.status} ${await r.text()}`);
    }),
  );
  const put = async (c: string, path: string, value: string) => {
    const r = await fetch(`${url}/v1/cluster/${c}/secret/${path}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/octet-stream' },
      body: value,
    });
    if (r.status !== 204) throw new Error(`PUT ${path}: ${r.status} ${await r.text()}`);
  };
  const commitCount = async (c: string) => Number((await gitCli(['rev-list', '--count', 'main'], s.gitDir(c))).trim());
  const totalCommits = async () => (await Promise.all(clusters.map(commitCount))).reduce((a, b) => a + b, 0);
  // Warm every working copy (and the Basic credential and ACL caches).
  await Promise.all(clusters.map((c) => put(c, 'warm/up/k', 'warm')));

  // a. Sequential latency on a warm copy, and the floor.
  const C0 = clusters[0];
  const sequential =
    SEQUENTIAL > 0
      ? await runLoad({
          base: url,
          method: 'PUT',
          path: `/v1/cluster/${C0}/secret/ns/name/key-{n}`,
          headers: { Authorization: s.admin },
          bodyBytes: 32,
          concurrency: 1,
          durationMs: 30_000,
          maxRequests: SEQUENTIAL,
        })
      : undefined;
  // Our commit and push of a trivial edit (RepoWriter.submit, warm).
  const writer = await m.repos.writer(C0);
  const oursMs: number[] = [];
  for (let i = 0; i < (SEQUENTIAL > 0 ? FLOOR_RUNS : 0); i++) {
    const t0 = performance.now();
    const r = await writer.submit({
      message: `bench floor ${i}`,
      apply: async (files) => files.write('bench/floor.txt', `${i}\n`),
    });
    oursMs.push(performance.now() - t0);
    if (!r.committed) throw new Error('the floor edit made no commit');
  }
  // The floor: the same with isomorphic-git on a warm clone (write, add, commit, push).
  const gitHeaders = {
    Authorization: `Bearer ${
      (
        await fetch(`${s.endpoints.git}/token`, { method: 'POST', headers: { Authorization: s.admin } }).then(
          (r) => r.json() as Promise<{ token: string }>,
        )
      ).token
    }`,
  };
  const floorMs: number[] = [];
  if (SEQUENTIAL > 0) {
    const C1 = clusters[1 % CLUSTERS];
    const dir = mkdtempSync(join(tmpdir(), 'bench-seal-floor-'));
    try {
      await git.clone({
        fs,
        http,
        dir,
        url: `${s.endpoints.git}/uuid/${C1}`,
        singleBranch: true,
        noTags: true,
        depth: 1,
        headers: gitHeaders,
      });
      for (let i = 0; i < FLOOR_RUNS; i++) {
        const t0 = performance.now();
        writeFileSync(join(dir, 'floor.txt'), `${i}\n`);
        await git.add({ fs, dir, filepath: 'floor.txt' });
        await git.commit({
          fs,
          dir,
          message: `bench floor ${i}`,
          author: { name: 'bench', email: 'bench@example.com' },
        });
        const r = await git.push({ fs, http, dir, headers: gitHeaders });
        if (!r.ok) throw new Error('the floor push was refused');
        floorMs.push(performance.now() - t0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await put(C1, 'warm/up/k', 'again');
  }

  // b. Throughput, 50 clients over 10 clusters.
  const commitsBefore = await totalCommits();
  const cpuB = cpu();
  const coreB = s.corePid ? cpuSeconds(s.corePid) : undefined;
  const ours =
    THROUGHPUT_S > 0
      ? await runLoad({
          base: url,
          method: 'PUT',
          path: '/v1/cluster/{c}/secret/bench/s{w}/k{n}',
          vars: { c: clusters },
          headers: { Authorization: s.admin },
          bodyBytes: 32,
          concurrency: CONCURRENCY,
          durationMs: THROUGHPUT_S * 1000,
          timeoutMs: 60_000,
        })
      : undefined;
  const serverCpuB = (cpu() - cpuB) / (ours?.seconds ?? 1);
  const coreCpuB =
    coreB &&
    (({ self, children }) => ({ self: self - coreB.self, children: children - coreB.children }))(
      cpuSeconds(s.corePid!),
    );
  await m.status.flush();
  const commitsB = (await totalCommits()) - commitsBefore;
  // Every acknowledged secret must be in the repos.
  let landed = 0;
  for (const c of clusters) {
    const list = await fetch(`${url}/v1/cluster/${c}/secret`, { headers: { Authorization: s.admin } }).then(
      (r) => r.json() as Promise<Array<{ namespace: string; keys: string[] }>>,
    );
    landed += list.filter((x) => x.namespace === 'bench').reduce((n, x) => n + x.keys.length, 0);
  }

  // c. The original's way.
  const scratch = mkdtempSync(join(tmpdir(), 'bench-seal-orig-'));
  const original = { ok: 0, errors: 0, pushRejected: 0, latencies: [] as number[], sampleErrors: new Set<string>() };
  const commitsBeforeC = await totalCommits();
  const sealOriginal = async (cluster: string, ns: string, name: string, key: string, value: Buffer) => {
    // The certificate from the Edge cluster status entry, each time.
    const entry = await fetch(`${s.endpoints.configdb}/v2/app/${u.app.edgeStatus}/object/${cluster}`, {
      headers: { Authorization: s.admin },
    }).then((r) => r.json() as Promise<{ kubeseal_cert: string }>);
    const c = parseSealingCertificate(entry.kubeseal_cert);
    const ciphertext = sealValue(c.publicKey, value, scopeLabel('strict', ns, name));
    const dir = mkdtempSync(join(scratch, 'wd-'));
    try {
      await git.clone({
        fs,
        http,
        dir,
        url: `${s.endpoints.git}/uuid/${cluster}`,
        singleBranch: true,
        noTags: true,
        depth: 1,
        headers: gitHeaders,
      });
      const path = sealedSecretPath(ns, name);
      const file = join(dir, path);
      mkdirSync(dirname(file), { recursive: true });
      let existing: string | undefined;
      try {
        existing = readFileSync(file, 'utf8');
      } catch {
        existing = undefined;
      }
      rmSync(file, { force: true });
      writeFileSync(
        file,
        upsertSealedKey(existing, {
          namespace: ns,
          name,
          key,
          ciphertext,
          scope: 'strict',
          certFingerprint: c.fingerprint,
        }),
      );
      await git.add({ fs, dir, filepath: path });
      await git.commit({
        fs,
        dir,
        message: `Updated sealed secret ${ns}/${name}/${key}`,
        author: { name: 'Edge deployment operator', email: 'bench@example.com' },
      });
      const r = await git.push({ fs, http, dir, headers: gitHeaders });
      if (!r.ok) throw new git.Errors.PushRejectedError('not-fast-forward');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const cpuC = cpu();
  const startC = performance.now();
  const deadlineC = startC + ORIGINAL_S * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      for (let n = 0; performance.now() < deadlineC; n++) {
        const t0 = performance.now();
        try {
          await sealOriginal(clusters[w % CLUSTERS], 'orig', `s${w}`, `k${n}`, Buffer.from(`value ${w} ${n}`));
          original.ok++;
          original.latencies.push(performance.now() - t0);
        } catch (e) {
          original.errors++;
          const msg = (e as Error).message;
          if (
            e instanceof git.Errors.PushRejectedError ||
            e instanceof git.Errors.GitPushError ||
            /not-fast-forward|fetch first|rejected/i.test(msg)
          )
            original.pushRejected++;
          else if (original.sampleErrors.size < 5)
            original.sampleErrors.add(`${(e as Error).name}: ${msg.slice(0, 200)}`);
        }
      }
    }),
  );
  const secondsC = (performance.now() - startC) / 1000;
  const serverCpuC = (cpu() - cpuC) / secondsC;
  const commitsC = (await totalCommits()) - commitsBeforeC;
  rmSync(scratch, { recursive: true, force: true });

  const floor = summarise(floorMs);
  const originalRate = original.ok / secondsC;
  console.log(
    JSON.stringify(
      {
        machine: { cpus: cpus().length, loadAverage: loadavg().map((x) => round(x, 2)) },
        core: process.env.BENCH_CORE === 'process' ? 'own process' : 'in this process (startApiStack)',
        sequential: sequential && {
          target: 'p50 <= 60 ms, p99 <= 200 ms',
          requests: sequential.requests,
          errors: sequential.errors,
          latencyMs: {
            p50: sequential.latencyMs.p50,
            p99: sequential.latencyMs.p99,
            mean: sequential.latencyMs.mean,
            max: sequential.latencyMs.max,
          },
          floorIsomorphicGitCommitPushMs: { p50: floor.p50, p99: floor.p99, mean: floor.mean, runs: FLOOR_RUNS },
          ourCommitPushMs: (({ p50, p99, mean }) => ({ p50, p99, mean }))(summarise(oursMs)),
          overFloorP50Ms: round(sequential.latencyMs.p50 - floor.p50, 2),
          ...(sequential.errors ? { statuses: sequential.statuses, sampleErrors: sequential.sampleErrors } : {}),
        },
        throughput: ours && {
          target: '>= 200 sealed secrets/s',
          clients: CONCURRENCY,
          clusters: CLUSTERS,
          seconds: ours.seconds,
          secretsPerSecond: ours.reqPerSecond,
          sealed: ours.ok,
          errors: ours.errors,
          commits: commitsB,
          secretsPerCommit: round(ours.ok / Math.max(1, commitsB), 2),
          landedInRepos: landed,
          latencyMs: { p50: ours.latencyMs.p50, p99: ours.latencyMs.p99, max: ours.latencyMs.max },
          serverCpuPercent: Math.round(serverCpuB * 100),
          clientCpuPercent: ours.clientCpuPercent,
          ...(coreCpuB
            ? {
                coreProcess: {
                  cpuPercent: Math.round((coreCpuB.self / ours.seconds) * 100),
                  gitProcessesCpuPercent: Math.round((coreCpuB.children / ours.seconds) * 100),
                  cpuMsPerCommit: {
                    core: Math.round((coreCpuB.self * 1000) / Math.max(1, commitsB)),
                    gitProcesses: Math.round((coreCpuB.children * 1000) / Math.max(1, commitsB)),
                  },
                },
              }
            : {}),
          ...(ours.errors ? { statuses: ours.statuses, sampleErrors: ours.sampleErrors } : {}),
        },
        original: ORIGINAL_S > 0 && {
          how: 'per secret: depth-1 isomorphic-git clone on disk, write, commit, push, delete; refused push = failed request',
          clients: CONCURRENCY,
          clusters: CLUSTERS,
          seconds: round(secondsC, 2),
          secretsPerSecond: round(originalRate),
          attemptsPerSecond: round((original.ok + original.errors) / secondsC),
          sealed: original.ok,
          errors: original.errors,
          pushRejected: original.pushRejected,
          commits: commitsC,
          latencyMs: (({ p50, p99, max }) => ({ p50, p99, max }))(summarise(original.latencies)),
          serverCpuPercent: Math.round(serverCpuC * 100),
          ...(original.sampleErrors.size ? { sampleErrors: [...original.sampleErrors] } : {}),
        },
        ratioOursToOriginal: ours && originalRate > 0 ? round(ours.reqPerSecond / originalRate, 1) : null,
      },
      null,
      2,
    ),
  );
} finally {
  await s.stop();
  rmSync(s.config.dataDir, { recursive: true, force: true });
}
