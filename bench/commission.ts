/**
 * Commissioning throughput and resync cost against the embedded core, which
 * runs in its own process as it would beside a deployed Cluster Manager.
 *   npx tsx bench/commission.ts [clusters=1000] [known=10000]
 * Prints clusters/s, p50/p99 time from entry creation to ready; then loads
 * `known` ready clusters, each with a real repo, and prints for each resync
 * its time and its drift check's (repos compared, moved, failed, deferred to
 * the next), how many resyncs it took to compare every repo, the Git
 * requests made (counted by a proxy in front of the Git server) and the RSS
 * of the Cluster Manager's process.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../src/config/index.js';
import { ConfigDbClient } from '../src/factoryplus/configdb.js';
import { FplusHttp } from '../src/factoryplus/http.js';
import { silentLogger } from '../src/lib/log.js';
import { startManager, type Manager } from '../src/manager.js';
import { FLUX_VERSION, specHash } from '../src/reconcile/commission.js';
import { TemplateCache } from '../src/reconcile/templates.js';
import { validateSpec } from '../src/repo/manifests.js';
import { basic, tempDir } from '../test/helpers/core.js';
import { startFaultProxy } from '../test/helpers/fault-proxy.js';
import { startCoreProcess, startManagerProcess } from '../test/helpers/processes.js';

/** CPU seconds of a process and of its waited-for children (the git processes), from /proc. */
function cpuSeconds(pid: number): { self: number; children: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const tick = 100;
  return {
    self: +((Number(f[11]) + Number(f[12])) / tick).toFixed(1),
    children: +((Number(f[13]) + Number(f[14])) / tick).toFixed(1),
  };
}

const N = Number(process.argv[2] ?? 1000);
const KNOWN = Number(process.argv[3] ?? 10_000);
const CONFIGDB_SERVICE = 'af15f175-78a0-4e05-97c0-2a0bb82b9f3b';

let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 100);
// BENCH_CORE_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the core's process.
const coreDir = tempDir('bench-core-');
const core = await startCoreProcess(coreDir, {}, process.env.BENCH_CORE_NODE_ARGS?.split(' ') ?? []);
const gitCounter = await startFaultProxy(core.endpoints.git);
const config = loadConfig({
  env: {},
  overrides: {
    dataDir: tempDir('bench-cm-'),
    factoryplus: { gitUrl: gitCounter.url },
    reconcile: { resyncSeconds: 3600, concurrency: Number(process.env.BENCH_CONCURRENCY ?? 8) },
  },
});
const u = config.uuids;
const adminHttp = new FplusHttp(core.credentials.admin);
const admin = new ConfigDbClient(adminHttp, async () => `${core.endpoints.configdb}/`);
const manager = (): Promise<Manager> =>
  startManager({
    config,
    directoryUrl: core.endpoints.directory,
    credentials: core.credentials.clusterManager,
    mqttProtocol: 4,
    log: silentLogger,
  });

// 1. Commissioning N clusters from entry creation to ready.
const m = await manager();
const created = new Map<string, number>();
const readyAt = new Map<string, number>();
const watch = setInterval(() => {
  for (const [id, at] of created)
    if (!readyAt.has(id) && m.status.get(id)?.ready === true) readyAt.set(id, Date.now() - at);
}, 20);
const ids = await Promise.all(Array.from({ length: N }, () => admin.createObject(u.class.edgeCluster)));
const start = Date.now();
await Promise.all(
  ids.map(async (uuid, i) => {
    created.set(uuid, Date.now());
    await admin.put(u.app.clusterConfig, uuid, { name: `Bench_${i}`, namespace: 'edge' });
  }),
);
while (readyAt.size < N) await new Promise((r) => setTimeout(r, 50));
const seconds = (Date.now() - start) / 1000;
const cpu = cpuSeconds(core.child.pid!);
const managerCpu = process.cpuUsage();
const gitPerCluster = +(gitCounter.stats.forwarded / N).toFixed(1);
clearInterval(watch);
const sample = m.status.get(ids[0]!)!;
await m.stop();

// 2. Many ready clusters: load their entries and statuses in one dump, as if commissioned earlier.
const templates = new TemplateCache(admin, u);
const inputs = await templates.forChart(undefined);
const dump = {
  service: CONFIGDB_SERVICE,
  version: 2,
  objects: { [u.class.edgeCluster]: {} as Record<string, object> },
  configs: {
    [u.app.clusterConfig]: {} as Record<string, unknown>,
    [u.app.setupStatus]: {} as Record<string, unknown>,
    [u.app.gitRepoConfig]: {} as Record<string, unknown>,
  },
};
// Each known cluster has a real repo on the Git server at the recorded head:
// a bare repo whose objects are the sample cluster's (git's alternates), so
// every drift check reads a real repo as it would after commissioning.
const gitRoot = join(coreDir, 'git');
const sampleRepo = join(gitRoot, `${ids[0]}.git`);
const head = (sample.repo as { head: string }).head;
const gitConfig = readFileSync(join(sampleRepo, 'config'));
const makeRepo = (uuid: string) => {
  const dir = join(gitRoot, `${uuid}.git`);
  mkdirSync(join(dir, 'refs', 'heads'), { recursive: true, mode: 0o700 });
  mkdirSync(join(dir, 'objects', 'info'), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'config'), gitConfig, { mode: 0o600 });
  writeFileSync(join(dir, 'HEAD'), 'ref: refs/heads/main\n', { mode: 0o600 });
  writeFileSync(join(dir, 'refs', 'heads', 'main'), `${head}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'objects', 'info', 'alternates'), `${join(sampleRepo, 'objects')}\n`, { mode: 0o600 });
};
for (let i = 0; i < KNOWN - N; i++) {
  const uuid = randomUUID();
  const spec = validateSpec({ name: `Known_${i}`, namespace: 'edge' });
  // In the cluster repo group, as commissioning puts it, which is what grants the manager its repo access.
  dump.objects[u.class.edgeCluster][uuid] = { memberOf: [inputs.sc.group.cluster.uuid] };
  dump.configs[u.app.gitRepoConfig][uuid] = { path: `${inputs.sc.group.cluster.path}/${spec.name}` };
  makeRepo(uuid);
  dump.configs[u.app.clusterConfig][uuid] = spec;
  dump.configs[u.app.setupStatus][uuid] = {
    spec,
    specHash: specHash(spec, inputs),
    ready: true,
    phase: 'ready',
    fluxVersion: FLUX_VERSION,
    flux: { uuid: randomUUID(), done: true },
    krbkeys: { uuid: randomUUID(), done: true },
    // As big as a real one: the self-link manifests and a repo head.
    self_link: String(sample.self_link).replaceAll(ids[0]!, uuid),
    repo: sample.repo,
    conditions: sample.conditions,
    // Commissioned earlier, so the edge health summary is recorded too.
    edge: sample.edge,
  };
}
await adminHttp.request(`${core.endpoints.configdb}/`, 'POST', 'load', { body: dump, timeoutMs: 300_000 });

// The manager as deployed: compiled, in its own process, its memory read from /proc.
execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
const startupAt = Date.now();
const proc = await startManagerProcess({
  directoryUrl: core.endpoints.directory,
  ...core.credentials.clusterManager,
  dataDir: tempDir('bench-cm2-'),
  compiled: true,
  // The image's node flags (Dockerfile ENTRYPOINT), unless BENCH_MANAGER_NODE_ARGS says otherwise.
  nodeArgs: (process.env.BENCH_MANAGER_NODE_ARGS ?? '--max-semi-space-size=2').split(' ').filter(Boolean),
  env: {
    MQTT_PROTOCOL: '4',
    GIT_URL: gitCounter.url,
    RESYNC_SECONDS: '10',
    DRIFT_CHECK_SECONDS: '3',
    LOG_LEVEL: 'info',
  },
});
const health = async () => (await fetch(`${proc.url}/health`)).status === 200;
while (!(await health())) await new Promise((r) => setTimeout(r, 100));
const startupMs = Date.now() - startupAt;
const metric = async (name: string) => {
  const text = await (
    await fetch(`${proc.url}/metrics`, {
      headers: { Authorization: basic(core.credentials.admin.username, core.credentials.admin.password) },
    })
  ).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
};
const gitBefore = gitCounter.stats.forwarded;
// The resyncs (at start-up, then every 10 s) over every known cluster, all
// of them ready, and the drift check after each (within DRIFT_CHECK_SECONDS,
// least recently compared repos first), until every repo has been compared.
const drift = async () => ({
  resyncMs: Math.round((await metric('cluster_manager_last_resync_seconds')) * 1000),
  driftMs: Math.round((await metric('cluster_manager_last_drift_check_seconds')) * 1000),
  checked: await metric('cluster_manager_last_drift_check_repos{outcome="checked"}'),
  failed: await metric('cluster_manager_last_drift_check_repos{outcome="failed"}'),
  moved: await metric('cluster_manager_last_drift_check_repos{outcome="moved"}'),
  deferred: await metric('cluster_manager_last_drift_check_repos{outcome="deferred"}'),
});
const checks: Array<Awaited<ReturnType<typeof drift>>> = [];
const waitedFrom = Date.now();
let counted = 0;
while (Date.now() - waitedFrom < 300_000) {
  const n = await metric('cluster_manager_drift_checks_total');
  if (n > counted) {
    counted = n;
    checks.push(await drift());
    // Every repo compared once, and one more check after that (with a warm Git server).
    const compared = checks.reduce((a, c) => a + c.checked + c.failed, 0);
    if (compared >= KNOWN + checks.at(-1)!.checked && checks.length >= 2) break;
  }
  await new Promise((r) => setTimeout(r, 100));
}
const sweep = checks.findIndex((_, i) => checks.slice(0, i + 1).reduce((a, c) => a + c.checked + c.failed, 0) >= KNOWN);
const gitRequests = gitCounter.stats.forwarded - gitBefore;
const known = await metric('cluster_manager_clusters{phase="ready"}');
const status = readFileSync(`/proc/${proc.child.pid}/status`, 'utf8');
const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
const managerRss = { currentMB: Math.round(kb('VmRSS') / 1024), peakMB: Math.round(kb('VmHWM') / 1024) };
await proc.stop();

const times = [...readyAt.values()].sort((a, b) => a - b);
const pct = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
clearInterval(sampler);
console.log(
  JSON.stringify(
    {
      commission: {
        clusters: N,
        seconds: +seconds.toFixed(2),
        clustersPerSecond: +(N / seconds).toFixed(1),
        timeToReadyMs: { p50: pct(0.5), p99: pct(0.99) },
        gitRequestsPerCluster: gitPerCluster,
        cpuSeconds: {
          manager: +((managerCpu.user + managerCpu.system) / 1e6).toFixed(1),
          core: cpu.self,
          gitProcesses: cpu.children,
        },
      },
      resync: {
        knownClusters: known,
        startupMs,
        driftCheckSeconds: 3,
        checks,
        resyncWithDriftMs: Math.max(...checks.map((c) => c.resyncMs + c.driftMs)),
        // Resyncs until every known repo had been compared with the Git server.
        fullDriftSweep:
          sweep < 0
            ? null
            : { resyncs: sweep + 1, driftMs: checks.slice(0, sweep + 1).reduce((a, c) => a + c.driftMs, 0) },
        gitRequests,
      },
      managerRss,
      benchProcessPeakRssMB: Math.round(peakRss / 1048576),
    },
    null,
    2,
  ),
);
await gitCounter.close();
await core.stop();
