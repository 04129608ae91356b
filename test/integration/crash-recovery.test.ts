import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/index.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { adminAuth, startTestCore, tempDir, type TestCore } from '../helpers/core.js';
import { startManagerProcess, waitFor, type ManagerProcess } from '../helpers/processes.js';

const run = promisify(execFile);
const u = loadConfig({ env: {} }).uuids;
const N = 50;

describe('the manager killed with SIGKILL while commissioning', function () {
  this.timeout(240_000);
  let t: TestCore;
  let m: ManagerProcess | undefined;
  const dataDir = tempDir('cm-crash-');

  before(async () => {
    t = await startTestCore();
  });
  after(async () => {
    await m?.kill();
    await t.stop();
  });

  const statuses = () =>
    t.core.store
      .list(u.app.setupStatus)
      .map((id) => [id, t.core.store.get(u.app.setupStatus, id)?.json as Record<string, any>] as const);
  const readyCount = () => statuses().filter(([, s]) => s?.ready === true).length;
  const start = () =>
    startManagerProcess({
      directoryUrl: t.core.endpoints.directory,
      ...t.core.credentials.clusterManager,
      dataDir,
      env: { RESYNC_SECONDS: '600' },
    });

  it(`brings all ${N} clusters to ready with one account per role and one commit per repo`, async () => {
    m = await start();
    const clusters: string[] = [];
    for (let i = 0; i < N; i++) {
      const uuid = t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
      clusters.push(uuid);
    }
    await Promise.all(
      clusters.map(async (uuid, i) => {
        const r = await fetch(`${t.core.endpoints.configdb}/v2/app/${u.app.clusterConfig}/object/${uuid}`, {
          method: 'PUT',
          headers: { Authorization: adminAuth(t.core), 'Content-Type': 'application/json' },
          body: JSON.stringify({ name: `Crash_${i}`, namespace: 'fplus-edge' }),
        });
        expect(r.status).to.equal(201);
      }),
    );

    // Two kills at different depths of the work: early, and with part of the clusters ready.
    const killedAt: number[] = [];
    for (const threshold of [1, Math.floor(N / 2)]) {
      await waitFor(() => readyCount() >= threshold, 90_000, m, `${threshold} ready clusters`);
      await m.kill();
      killedAt.push(readyCount());
      m = await start();
    }
    expect(
      killedAt.every((n) => n < N),
      `ready counts when killed: ${killedAt}`,
    ).to.equal(true);

    await waitFor(() => readyCount() === N, 120_000, m, 'every cluster ready');
    const all = statuses();
    expect(all).to.have.length(N);

    const accounts = new Set(t.core.objects.members(u.class.edgeAccount));
    expect(accounts.size, 'account objects').to.equal(2 * N);
    const recorded = new Set<string>();
    for (const [, s] of all) {
      for (const role of ['flux', 'krbkeys']) {
        expect(s[role].done, `${role} done`).to.equal(true);
        expect(accounts.has(s[role].uuid), `${role} account exists`).to.equal(true);
        recorded.add(s[role].uuid);
      }
    }
    expect(recorded.size, 'distinct recorded accounts').to.equal(2 * N);

    for (const uuid of clusters) {
      const { stdout } = await run('git', ['--git-dir', t.core.git.dir(uuid), 'rev-list', '--count', 'main']);
      expect(Number(stdout.trim()), `commits in ${uuid}`).to.equal(1);
    }
  });
});
