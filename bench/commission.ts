/**
 * Commissioning throughput against the embedded core on this machine.
 *   npx tsx bench/commission.ts [clusters=1000]
 * Prints clusters/s, p50/p99 time from entry creation to ready, the time of
 * a resync of the ready clusters and the Git operations it caused, and peak RSS.
 */
import { loadConfig } from '../src/config/index.js';
import { Local } from '../src/embedded/seed/local-uuids.js';
import { silentLogger } from '../src/lib/log.js';
import { startManager } from '../src/manager.js';
import { adminAuth, startTestCore, tempDir } from '../test/helpers/core.js';

const N = Number(process.argv[2] ?? 1000);
const config = loadConfig({ env: {}, overrides: { dataDir: tempDir('bench-'), reconcile: { resyncSeconds: 3600 } } });
const u = config.uuids;
let peakRss = 0;
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 100);

const t = await startTestCore();
const m = await startManager({ config, directoryUrl: t.core.endpoints.directory, credentials: t.core.credentials.clusterManager, mqttProtocol: 4, log: silentLogger });
const auth = adminAuth(t.core);
const created = new Map<string, number>();
const readyAt = new Map<string, number>();
const watch = setInterval(() => {
  for (const [id, at] of created) if (!readyAt.has(id) && m.status.get(id)?.ready === true) readyAt.set(id, Date.now() - at);
}, 20);

const start = Date.now();
const ids: string[] = [];
for (let i = 0; i < N; i++) {
  const uuid = t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
  ids.push(uuid);
}
await Promise.all(ids.map(async (uuid, i) => {
  created.set(uuid, Date.now());
  const r = await fetch(`${t.core.endpoints.configdb}/v2/app/${u.app.clusterConfig}/object/${uuid}`, {
    method: 'PUT', headers: { Authorization: auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: `Bench_${i}`, namespace: 'edge' }),
  });
  if (r.status !== 201) throw new Error(`create failed: ${r.status}`);
}));
while (readyAt.size < N) await new Promise((r) => setTimeout(r, 50));
const total = (Date.now() - start) / 1000;
await m.status.flush();

const pushesBefore = (await Promise.all(ids.slice(0, 50).map((id) => t.core.git.branches(id)))).map((b) => b.main).join();
const resyncStart = Date.now();
await m.controller.resync('bench');
await m.controller.idle();
const resyncMs = Date.now() - resyncStart;
const pushesAfter = (await Promise.all(ids.slice(0, 50).map((id) => t.core.git.branches(id)))).map((b) => b.main).join();

const times = [...readyAt.values()].sort((a, b) => a - b);
const pct = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
clearInterval(watch);
clearInterval(sampler);
console.log(JSON.stringify({
  clusters: N,
  seconds: +total.toFixed(2),
  clustersPerSecond: +(N / total).toFixed(1),
  timeToReadyMs: { p50: pct(0.5), p99: pct(0.99) },
  resyncMs,
  resyncChangedRepoHeads: pushesBefore !== pushesAfter,
  peakRssMB: Math.round(peakRss / 1048576),
}, null, 2));
await m.stop();
await t.stop();
