import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { testCert } from '../helpers/certs.js';
import { adminAuth, startTestCore, tempDir, type TestCore } from '../helpers/core.js';
import { byIntensity, INTENSITY } from '../helpers/intensity.js';
import { prng } from '../helpers/random.js';
import { runMain, waitFor, type Proc } from '../helpers/processes.js';
import { unsealValue } from '../helpers/unseal.js';

/**
 * The manager in its own process, killed with SIGKILL at random points
 * (seeded) while clusters are commissioned and deleted and clients seal
 * secrets through its HTTP API; restarted after every kill. Once the kills
 * stop, every effect must have converged exactly once: no lost acknowledged
 * secret, no duplicate account, grant or population commit, nothing left of
 * the deleted clusters.
 *
 * 8 kills in npm test, 20 in npm run test:resilience, 60 in the soak, with
 * clusters and clients to match (test/helpers/intensity.ts). SEED=n replays a run.
 */

const run = promisify(execFile);
const SOAK = INTENSITY === 'soak';
const SEED = Number(process.env.SEED ?? 20240611);
const KILLS = byIntensity({ short: 8, long: 20, soak: 60 });
const CLUSTERS = byIntensity({ short: 10, long: 20, soak: 40 });
const DELETES = byIntensity({ short: 3, long: 5, soak: 10 });
const CLIENTS = byIntensity({ short: 4, long: 4, soak: 8 });
/** Kill delay after spawn (or after listening, every other kill): uniform in [MIN_KILL_MS, MIN_KILL_MS + SPREAD_KILL_MS). */
const MIN_KILL_MS = 300;
const SPREAD_KILL_MS = SOAK ? 6000 : 3500;
const REQUEST_BOUND_MS = 20_000;

const cfg = loadConfig({ env: {} });
const u = cfg.uuids;
const REALM = cfg.factoryplus.realm;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Acked {
  cluster: string;
  ns: string;
  name: string;
  key: string;
  value: Buffer;
}

describe(`resilience: the manager process killed with SIGKILL ${KILLS} times while it works`, function () {
  this.timeout(SOAK ? 0 : 170_000);
  let t: TestCore;
  let proc: Proc | undefined;
  const dataDir = tempDir('cm-kill-');

  before(async () => {
    testCert('rsa');
    t = await startTestCore();
  });
  after(async () => {
    await proc?.kill();
    await t?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('converges to exactly the requested clusters, accounts, grants, commits and acknowledged secrets', async () => {
    const rand = prng(SEED);
    const admin = adminAuth(t.core);
    const cert = testCert('rsa');
    const started = Date.now();

    // ---- the manager process, restartable; `url` is set while it listens
    let url: string | undefined;
    const spawnManager = (): Proc => {
      url = undefined;
      const p = runMain('serve', {
        DIRECTORY_URL: t.core.endpoints.directory,
        SERVICE_USERNAME: t.core.credentials.clusterManager.username,
        SERVICE_PASSWORD: t.core.credentials.clusterManager.password,
        DATA_DIR: dataDir,
        PORT: '0',
        LOG_LEVEL: 'info',
        MQTT_PROTOCOL: process.env.TEST_MQTT_URL ? '5' : '4',
        RESYNC_SECONDS: '600',
      });
      const scan = () => {
        if (url !== undefined || proc !== p) return;
        for (const line of p.output().split('\n')) {
          if (!line.startsWith('{') || !line.includes('HTTP API listening')) continue;
          try {
            const rec = JSON.parse(line) as { msg?: string; url?: string };
            if (rec.msg === 'HTTP API listening' && rec.url) url = rec.url.replace(/\/$/, '');
          } catch {
            /* partial */
          }
        }
      };
      p.child.stdout!.on('data', scan);
      p.exited.then(
        () => {
          if (proc === p) url = undefined;
        },
        () => undefined,
      );
      return p;
    };

    // ---- Config Store writes as an operator would make them
    const cdb = async (method: string, app: string, obj: string, body?: unknown) => {
      const r = await fetch(`${t.core.endpoints.configdb}/v2/app/${app}/object/${obj}`, {
        method,
        headers: { Authorization: admin, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (r.status >= 300) throw new Error(`${method} ${app}/${obj}: ${r.status} ${await r.text()}`);
    };
    const clusters: Array<{ uuid: string; name: string }> = [];
    const targets = new Set<string>(); // sealable (created, not being deleted)
    const deleted = new Map<string, { name: string; accounts: string[] }>();
    const create = async (i: number) => {
      const uuid = t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
      const name = `Kill_${i}`;
      await cdb('PUT', u.app.clusterConfig, uuid, { name, namespace: 'fplus-edge' });
      await cdb('PUT', u.app.edgeStatus, uuid, { kubeseal_cert: cert.certPem });
      clusters.push({ uuid, name });
      targets.add(uuid);
    };
    const statusOf = (id: string) => t.core.store.get(u.app.setupStatus, id)?.json as Record<string, any> | undefined;
    const accountsIn = (st: Record<string, any> | undefined) =>
      ['flux', 'krbkeys'].map((r) => st?.[r]?.uuid as string | undefined).filter((x): x is string => !!x);
    const remove = async (c: { uuid: string; name: string }) => {
      targets.delete(c.uuid);
      deleted.set(c.uuid, { name: c.name, accounts: accountsIn(statusOf(c.uuid)) });
      await cdb('DELETE', u.app.clusterConfig, c.uuid);
    };

    // ---- sealing clients: PUT unique keys, remember every 204
    const acked: Acked[] = [];
    const outcomes = new Map<string, number>();
    const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    let stopClients = false;
    let seq = 0;
    let slowest = 0;
    const client = async (n: number) => {
      const r = prng(SEED + 1000 + n);
      while (!stopClients) {
        const base = url;
        const pool = [...targets];
        if (!base || pool.length === 0) {
          await sleep(50);
          continue;
        }
        const cluster = pool[Math.floor(r() * pool.length)]!;
        const ns = 'app';
        const name = `creds-${Math.floor(r() * 3)}`;
        const key = `k${n}x${seq++}`;
        const value = randomBytes(24);
        const t0 = Date.now();
        try {
          const res = await fetch(`${base}/v1/cluster/${cluster}/secret/${ns}/${name}/${key}`, {
            method: 'PUT',
            headers: { Authorization: admin, 'Content-Type': 'application/octet-stream' },
            body: value,
            signal: AbortSignal.timeout(REQUEST_BOUND_MS),
          });
          await res.arrayBuffer();
          count(String(res.status));
          if (res.status === 204) acked.push({ cluster, ns, name, key, value });
        } catch (e) {
          const err = e as Error & { cause?: { code?: string } };
          count(err.name === 'TimeoutError' ? 'timeout' : `error:${err.cause?.code ?? err.name}`);
        }
        slowest = Math.max(slowest, Date.now() - t0);
        await sleep(10 + Math.floor(r() * 40));
      }
    };
    const clientRuns = Array.from({ length: CLIENTS }, (_, n) => client(n));

    // ---- the schedule: clusters created over the first half, some deleted (early ones right after creation)
    const createAt = new Map<number, number[]>();
    for (let i = 0; i < CLUSTERS; i++) {
      const cycle = Math.floor((i * KILLS) / 2 / CLUSTERS);
      createAt.set(cycle, [...(createAt.get(cycle) ?? []), i]);
    }
    const victims = new Set<number>();
    while (victims.size < DELETES) victims.add(Math.floor(rand() * CLUSTERS));
    const deleteAt = new Map<number, number[]>();
    for (const i of victims) {
      const created = Math.floor((i * KILLS) / 2 / CLUSTERS);
      // Half right after creation (mid-commissioning), half later (after readiness, most likely).
      const cycle = rand() < 0.5 ? created : Math.min(KILLS - 1, created + 2 + Math.floor(rand() * (KILLS / 2)));
      deleteAt.set(cycle, [...(deleteAt.get(cycle) ?? []), i]);
    }

    const kills: Array<{ after: number; listening: boolean; ready: number }> = [];
    const readyCount = () => clusters.filter((c) => statusOf(c.uuid)?.ready === true).length;
    for (let k = 0; k < KILLS; k++) {
      proc = spawnManager();
      const delay = MIN_KILL_MS + Math.floor(rand() * SPREAD_KILL_MS);
      // Work lands while the process starts or runs; deletions after the creations of the cycle.
      const work = (async () => {
        await sleep(Math.floor(rand() * delay));
        for (const i of createAt.get(k) ?? []) await create(i);
        for (const i of deleteAt.get(k) ?? []) {
          const c = clusters[i];
          if (c) await remove(c);
        }
      })();
      // Every other kill is timed from when the process listens, so that on a
      // busy machine, where starting takes longer than the spread, kills still
      // land in a working process and not only in its start-up.
      if (k % 2 === 1) await waitFor(() => url, 60_000, proc, 'the manager to listen');
      await sleep(delay);
      const listening = url !== undefined;
      await proc.kill();
      url = undefined;
      await work;
      kills.push({ after: delay, listening, ready: readyCount() });
    }
    // Any victim whose cycle was past the last kill.
    for (const i of victims) if (!deleted.has(clusters[i]!.uuid)) await remove(clusters[i]!);
    console.log(
      `    injected: ${KILLS} SIGKILLs (seed ${SEED}) at ${kills.map((x) => x.after).join(',')} ms after spawn; ` +
        `${kills.filter((x) => x.listening).length} while listening; ready counts at kill: ${kills.map((x) => x.ready).join(',')}`,
    );

    // ---- the last run: no more kills; wait for convergence
    proc = spawnManager();
    await waitFor(() => url, 60_000, proc, 'the final manager to listen');
    const kept = clusters.filter((c) => !deleted.has(c.uuid));
    const converged = () =>
      kept.every((c) => statusOf(c.uuid)?.ready === true) &&
      [...deleted.keys()].every((id) => statusOf(id) === undefined) &&
      t.core.objects.members(u.class.edgeAccount).length === 2 * kept.length;
    await waitFor(converged, 120_000, proc, 'convergence').catch((e) => {
      const state = clusters.map(
        (c) => `${c.name}:${deleted.has(c.uuid) ? 'del/' : ''}${statusOf(c.uuid)?.phase ?? '-'}`,
      );
      throw new Error(
        `${(e as Error).message.split('\n')[0]}\n${state.join(' ')}\naccounts=${t.core.objects.members(u.class.edgeAccount).length}\n${proc!.output().slice(-3000)}`,
      );
    });
    // Let the clients seal on the settled manager for a moment, then stop them.
    await sleep(1500);
    stopClients = true;
    await Promise.all(clientRuns);
    const health = (await (await fetch(`${url}/health`)).json()) as { statusWritesPending: number };
    await waitFor(
      async () =>
        ((await (await fetch(`${url}/health`)).json()) as { statusWritesPending: number }).statusWritesPending === 0,
      30_000,
      proc,
      'status writes',
    );

    // ---- every cluster kept: ready, one account per role, one grant, one population commit, every acked secret
    const sc = t.core.store.get(u.app.serviceConfig, u.service.clusterManager)!.json as {
      group: { cluster: { uuid: string } };
    };
    const accounts = new Set(t.core.objects.members(u.class.edgeAccount));
    expect(accounts.size, 'edge accounts = 2 x live clusters').to.equal(2 * kept.length);
    expect(t.core.store.list(u.app.setupStatus).sort(), 'status entries').to.deep.equal(kept.map((c) => c.uuid).sort());
    let commitsChecked = 0;
    for (const c of kept) {
      const st = statusOf(c.uuid)!;
      expect(st.phase, `${c.name} phase`).to.equal('ready');
      const [flux, krbkeys] = [st.flux.uuid as string, st.krbkeys.uuid as string];
      expect(accounts.has(flux) && accounts.has(krbkeys), `${c.name} accounts exist`).to.equal(true);
      expect(t.core.auth.principal(flux)?.upn).to.equal(`op1flux/${c.name}@${REALM}`);
      expect(t.core.auth.principal(krbkeys)?.upn).to.equal(`op1krbkeys/${c.name}@${REALM}`);
      const grants = t.core.auth.findGrants({ principal: flux });
      expect(
        grants.map((g) => [g.permission, g.target]),
        `${c.name}: grants of the flux account`,
      ).to.deep.equal([[u.perm.gitPull, c.uuid]]);
      expect(t.core.auth.findGrants({ principal: krbkeys }), `${c.name}: grants of the krbkeys account`).to.have.length(
        0,
      );
      expect(
        t.core.auth.findGrants({ permission: u.perm.gitPull, target: c.uuid }),
        `${c.name}: Git Pull grants on the repo`,
      ).to.have.length(1);
      expect(t.core.store.get(u.app.sparkplugAddress, c.uuid)?.json).to.deep.equal({ group_id: `AMRC-${c.name}` });
      expect(t.core.objects.directMembers(sc.group.cluster.uuid)).to.include(c.uuid);

      const gitDir = t.core.git.dir(c.uuid);
      const { stdout } = await run('git', ['--git-dir', gitDir, 'log', '--format=%s', '--reverse', 'main']);
      const subjects = stdout.trim().split('\n');
      expect(subjects[0], `${c.name}: the root commit populates the repo`).to.equal('Cluster flux update');
      expect(
        subjects.filter((s) => s.includes('Cluster flux update')),
        `${c.name}: population commits`,
      ).to.have.length(1);
      const { stdout: bodies } = await run('git', ['--git-dir', gitDir, 'log', '--format=%B%x00', 'main']);
      expect(
        bodies.split('\0').filter((b) => b.includes('Cluster flux update')),
        `${c.name}: commits mentioning population`,
      ).to.have.length(1);
      for (const s of subjects.slice(1))
        expect(s, `${c.name}: later commits are secret changes`).to.match(/^(Updated sealed secret |\d+ changes$)/);
      commitsChecked += subjects.length;
    }

    // Every acknowledged secret is in its repo with the value sent (deleted clusters' repos are kept by the Git server).
    const files = new Map<string, Record<string, string> | null>();
    const missing: string[] = [];
    for (const a of acked) {
      const ref = `${a.cluster}:${a.ns}/${a.name}`;
      if (!files.has(ref)) {
        try {
          const { stdout } = await run(
            'git',
            ['--git-dir', t.core.git.dir(a.cluster), 'show', `main:edo/secrets/${a.ns}/${a.name}.yaml`],
            { maxBuffer: 64 << 20 },
          );
          files.set(ref, (parseYaml(stdout) as { spec: { encryptedData: Record<string, string> } }).spec.encryptedData);
        } catch {
          files.set(ref, null);
        }
      }
      const sealed = files.get(ref)?.[a.key];
      if (!sealed) {
        missing.push(`${ref}/${a.key}`);
        continue;
      }
      expect(
        unsealValue(cert.keyPem, sealed, Buffer.from(`${a.ns}/${a.name}`)).equals(a.value),
        `value of ${ref}/${a.key}`,
      ).to.equal(true);
    }
    expect(missing, `acknowledged secrets missing from the repos (${missing.length} of ${acked.length})`).to.deep.equal(
      [],
    );

    // ---- every deleted cluster: nothing left but its repo's history
    const infoNames = t.core.store
      .entries(u.app.info)
      .map(([, v]) => String((v as { name?: unknown } | null)?.name ?? ''));
    for (const [id, d] of deleted) {
      expect(statusOf(id), `${d.name}: status entry`).to.equal(undefined);
      expect(t.core.store.get(u.app.sparkplugAddress, id), `${d.name}: Sparkplug address`).to.equal(undefined);
      expect(t.core.store.get(u.app.gitRepoConfig, id), `${d.name}: repo config`).to.equal(undefined);
      expect(t.core.objects.directMembers(sc.group.cluster.uuid), `${d.name}: cluster group`).to.not.include(id);
      for (const acc of d.accounts) {
        expect(t.core.objects.exists(acc), `${d.name}: account ${acc} object`).to.equal(false);
        expect(t.core.auth.findGrants({ principal: acc }), `${d.name}: grants of ${acc}`).to.have.length(0);
        expect(t.core.auth.principal(acc)?.upn ?? null, `${d.name}: identity of ${acc}`).to.equal(null);
      }
      expect(t.core.auth.findGrants({ target: id }), `${d.name}: grants on its repo`).to.have.length(0);
      for (const role of ['op1flux', 'op1krbkeys'])
        expect(t.core.auth.principalByUpn(`${role}/${d.name}@${REALM}`), `${d.name}: ${role} identity`).to.equal(
          undefined,
        );
      expect(
        infoNames.filter((n) => n.endsWith(`: ${d.name}`)),
        `${d.name}: account info entries`,
      ).to.deep.equal([]);
    }

    const byStatus = [...outcomes]
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    console.log(
      `    checked: ${kept.length} ready, ${deleted.size} deleted, ${accounts.size} accounts, ${commitsChecked} commits, ` +
        `${acked.length} acknowledged secrets all present (PUTs: ${byStatus}; slowest ${slowest} ms; pending writes at stop ${health.statusWritesPending}; ${Math.round((Date.now() - started) / 1000)} s)`,
    );
    expect(slowest, 'slowest PUT (bounded by the client at 20 s)').to.be.lessThan(REQUEST_BOUND_MS);
    expect(acked.length, 'some secrets were acknowledged').to.be.greaterThan(0);
  });
});
