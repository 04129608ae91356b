import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { storeBytes } from '../../src/repo/git-store.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { byIntensity, INTENSITY } from '../helpers/intensity.js';
import { waitFor } from '../helpers/processes.js';
import { unsealValue } from '../helpers/unseal.js';

/**
 * N clusters commissioned while C clients seal secrets and fetch statuses in
 * a loop, everything in this process (embedded core, manager, HTTP API,
 * clients). No request may fail except by documented back-pressure (429 or
 * 503 with Retry-After); every cluster becomes ready; every acknowledged
 * secret is in its repo; memory stays bounded.
 *
 * 40 clusters and 10 clients in npm test, 150 and 20 in npm run
 * test:resilience, 2000 and 100 in the soak (test/helpers/intensity.ts);
 * LOAD_CLUSTERS and LOAD_CLIENTS override.
 */

const run = promisify(execFile);
const SOAK = INTENSITY === 'soak';
const N = Number(process.env.LOAD_CLUSTERS ?? byIntensity({ short: 40, long: 150, soak: 2000 }));
const C = Number(process.env.LOAD_CLIENTS ?? byIntensity({ short: 10, long: 20, soak: 100 }));
const RSS_LIMIT = 1024 * 1024 * 1024;
const REQUEST_BOUND_MS = 20_000;
const READY_WITHIN_MS = SOAK ? 3_600_000 : 110_000;
/** SOAK: a progress line this often. */
const PROGRESS_MS = Number(process.env.LOAD_PROGRESS_MS ?? 60_000);

type Kind = 'seal' | 'status' | 'list';
interface Sample {
  kind: Kind;
  ms: number;
  status: number | string;
  retryAfter: boolean;
}
interface Acked {
  cluster: string;
  name: string;
  key: string;
  value: Buffer;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

describe(`resilience: ${N} clusters commissioned while ${C} clients seal and read`, function () {
  this.timeout(SOAK ? 0 : 150_000);
  let s: ApiStack;

  before(async function () {
    this.timeout(60_000);
    testCert('rsa');
    s = await startApiStack();
  });
  after(async function () {
    this.timeout(60_000);
    await s?.stop();
  });

  it('answers every request or pushes back with Retry-After, brings every cluster to ready, keeps every acknowledged secret, in bounded memory', async () => {
    const u = s.config.uuids;
    const cert = testCert('rsa');
    const core = s.t.core;
    const started = Date.now();

    // ---- memory
    let peakRss = process.memoryUsage().rss;
    const baseRss = peakRss;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 250);

    // ---- clusters, created by an operator in a stream, a few at a time
    const clusters: string[] = [];
    const ready = new Set<string>();
    const readyList: string[] = [];
    const offReady = s.m.status.onChange((id, st) => {
      if (st?.ready === true && !ready.has(id)) {
        ready.add(id);
        readyList.push(id);
      }
    });
    const cdb = async (app: string, obj: string, body: unknown) => {
      const r = await fetch(`${core.endpoints.configdb}/v2/app/${app}/object/${obj}`, {
        method: 'PUT',
        headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (r.status >= 300) throw new Error(`PUT ${app}/${obj}: ${r.status}`);
    };
    let next = 0;
    const creator = async () => {
      while (next < N) {
        const i = next++;
        const uuid = core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
        await cdb(u.app.edgeStatus, uuid, { kubeseal_cert: cert.certPem });
        await cdb(u.app.clusterConfig, uuid, { name: `Load_${i}`, namespace: 'fplus-edge' });
        clusters.push(uuid); // status requests only for clusters that exist as far as the operator is concerned
      }
    };
    const creating = Promise.all(Array.from({ length: 4 }, creator)).then(() => Date.now());

    // ---- clients
    const samples: Sample[] = [];
    const acked: Acked[] = [];
    let stop = false;
    let seq = 0;
    const client = async (n: number) => {
      while (!stop) {
        const r = Math.random();
        let kind: Kind;
        let path: string;
        let init: RequestInit;
        let ack: Acked | undefined;
        if (r < 0.5 && readyList.length) {
          kind = 'seal';
          const cluster = readyList[Math.floor(Math.random() * readyList.length)]!;
          ack = { cluster, name: `load-${n % 2}`, key: `c${n}k${seq++}`, value: randomBytes(32) };
          path = `/v1/cluster/${cluster}/secret/app/${ack.name}/${ack.key}`;
          init = {
            method: 'PUT',
            body: new Uint8Array(ack.value),
            headers: { Authorization: s.admin, 'Content-Type': 'application/octet-stream' },
          };
        } else if (r < 0.97 && clusters.length) {
          kind = 'status';
          path = `/v1/cluster/${clusters[Math.floor(Math.random() * clusters.length)]}/status`;
          init = { headers: { Authorization: s.admin } };
        } else {
          kind = 'list';
          path = '/v1/cluster';
          init = { headers: { Authorization: s.admin } };
        }
        const t0 = performance.now();
        let status: number | string;
        let retryAfter = false;
        try {
          const res = await fetch(`${s.url}${path}`, { ...init, signal: AbortSignal.timeout(REQUEST_BOUND_MS) });
          const body = await res.text();
          status = res.status;
          if (status >= 400 && !messages.has(`${kind}:${status}`))
            messages.set(`${kind}:${status}`, body.slice(0, 300));
          retryAfter = res.headers.has('retry-after');
          if (status === 204 && ack) acked.push(ack);
        } catch (e) {
          const err = e as Error & { cause?: { code?: string } };
          status = err.name === 'TimeoutError' ? 'timeout' : `error:${err.cause?.code ?? err.name}`;
        }
        samples.push({ kind, ms: performance.now() - t0, status, retryAfter });
        // Back-pressure is honoured (briefly: the figure is in seconds, the test is not a real client).
        if (status === 429 || status === 503) await sleep(250);
      }
    };
    /** The first error answer of each kind and status, printed with the figures. */
    const messages = new Map<string, string>();
    const clientRuns = Array.from({ length: C }, (_, n) => client(n));

    // ---- figures, printed whether or not the clusters all become ready
    const lat = (k?: Kind) =>
      samples
        .filter((x) => !k || x.kind === k)
        .map((x) => x.ms)
        .sort((a, b) => a - b);
    const fmt = (k?: Kind) => {
      const l = lat(k);
      return `${k ?? 'all'} n=${l.length} p50=${percentile(l, 50).toFixed(1)} p99=${percentile(l, 99).toFixed(1)} max=${(l.at(-1) ?? 0).toFixed(0)} ms`;
    };
    const answers = () => {
      const byStatus = new Map<string, number>();
      for (const x of samples) byStatus.set(`${x.kind}:${x.status}`, (byStatus.get(`${x.kind}:${x.status}`) ?? 0) + 1);
      return [...byStatus]
        .sort()
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
    };
    let createdAt = 0;
    let allReadyAt = 0;
    const report = () => {
      const commissionS = ((allReadyAt || Date.now()) - started) / 1000;
      console.log(
        `    injected: ${N} clusters (created in ${createdAt ? ((createdAt - started) / 1000).toFixed(1) : '-'} s) under ${C} clients; ${samples.length} requests in ${((Date.now() - started) / 1000).toFixed(1)} s; ${ready.size} ready`,
      );
      console.log(`    latency: ${fmt()}; ${fmt('seal')}; ${fmt('status')}; ${fmt('list')}`);
      console.log(
        `    answers: ${answers()}; ${(ready.size / commissionS).toFixed(1)} clusters/s; RSS peak ${(peakRss / 2 ** 20).toFixed(0)} MiB (start ${(baseRss / 2 ** 20).toFixed(0)} MiB)`,
      );
      for (const [k, m] of messages) console.log(`    first ${k}: ${m}`);
    };
    let lastReady = 0;
    const progress = SOAK
      ? setInterval(() => {
          console.log(
            `    … ${Math.round((Date.now() - started) / 1000)} s: ${ready.size}/${N} ready (+${ready.size - lastReady} in ${PROGRESS_MS / 1000} s), ${samples.length} requests, ${fmt()}, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB, ext ${(process.memoryUsage().external / 2 ** 20).toFixed(0)} MiB, ab ${(process.memoryUsage().arrayBuffers / 2 ** 20).toFixed(0)} MiB, stores ${(storeBytes() / 2 ** 20).toFixed(0)} MiB, writers ${s.m.repos.size}`,
          );
          lastReady = ready.size;
        }, PROGRESS_MS)
      : undefined;

    // ---- every cluster ready
    try {
      createdAt = await creating;
      await waitFor(() => ready.size >= N, READY_WITHIN_MS, undefined, `${N} clusters ready`).catch((e) => {
        const phases = new Map<string, number>();
        for (const id of clusters) {
          const p = String(s.m.status.get(id)?.phase ?? 'none');
          phases.set(p, (phases.get(p) ?? 0) + 1);
        }
        throw new Error(
          `${(e as Error).message}: ${ready.size} ready; phases ${JSON.stringify(Object.fromEntries(phases))}; queue ${JSON.stringify(s.m.controller.stats)}`,
        );
      });
      allReadyAt = Date.now();
      // A little more load on the settled manager, then stop.
      await sleep(2000);
    } finally {
      stop = true;
      clearInterval(progress);
      await Promise.all(clientRuns);
      offReady();
      clearInterval(sampler);
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      report();
    }
    await s.m.status.flush();

    // ---- checks
    const expected: Record<Kind, number> = { seal: 204, status: 200, list: 200 };
    const failures = samples.filter(
      (x) => x.status !== expected[x.kind] && !((x.status === 429 || x.status === 503) && x.retryAfter),
    );
    const summary = new Map<string, number>();
    for (const f of failures)
      summary.set(
        `${f.kind}:${f.status}${f.retryAfter ? '+Retry-After' : ''}`,
        (summary.get(`${f.kind}:${f.status}${f.retryAfter ? '+Retry-After' : ''}`) ?? 0) + 1,
      );
    expect(Object.fromEntries(summary), 'requests failed other than by back-pressure with Retry-After').to.deep.equal(
      {},
    );
    expect(samples.filter((x) => x.kind === 'seal' && x.status === 204).length, 'secrets sealed').to.be.greaterThan(0);

    const statuses = core.store.list(u.app.setupStatus);
    expect(
      clusters.filter(
        (id) => (core.store.get(u.app.setupStatus, id)?.json as { ready?: boolean } | undefined)?.ready !== true,
      ),
      'clusters not ready in the Config Store',
    ).to.deep.equal([]);
    expect(statuses.length, 'status entries').to.equal(N);
    expect(core.objects.members(u.class.edgeAccount).length, 'edge accounts').to.equal(2 * N);

    // Every acknowledged secret is in its repo, with the value sent.
    const cache = new Map<string, Record<string, string> | null>();
    const missing: string[] = [];
    for (const a of acked) {
      const ref = `${a.cluster}:app/${a.name}`;
      if (!cache.has(ref)) {
        try {
          const { stdout } = await run(
            'git',
            ['--git-dir', core.git.dir(a.cluster), 'show', `main:edo/secrets/app/${a.name}.yaml`],
            { maxBuffer: 256 << 20 },
          );
          cache.set(ref, (parseYaml(stdout) as { spec: { encryptedData: Record<string, string> } }).spec.encryptedData);
        } catch {
          cache.set(ref, null);
        }
      }
      const sealed = cache.get(ref)?.[a.key];
      if (!sealed || !unsealValue(cert.keyPem, sealed, Buffer.from(`app/${a.name}`)).equals(a.value))
        missing.push(`${ref}/${a.key}`);
    }
    console.log(
      `    checked: ${failures.length} failed requests, ${N} clusters ready, ${acked.length} acknowledged secrets in ${cache.size} manifests (${missing.length} missing), peak RSS < ${RSS_LIMIT / 2 ** 20} MiB`,
    );
    expect(missing, 'acknowledged secrets missing from the repos').to.deep.equal([]);
    expect(peakRss, 'peak RSS of the process (core, manager and clients)').to.be.lessThan(RSS_LIMIT);
  });
});
