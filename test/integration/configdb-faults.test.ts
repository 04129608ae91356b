import { expect } from 'chai';
import { loadConfig } from '../../src/config/index.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import type { Manager } from '../../src/manager.js';
import { startTestManager } from '../helpers/api.js';
import { adminAuth, startTestCore, tempDir, type TestCore } from '../helpers/core.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { waitFor } from '../helpers/processes.js';

const PHASES = ['pending', 'address', 'accounts', 'repo', 'ready'];
const N = 12;

describe('the Config Store answering 500 to a third of requests', function () {
  this.timeout(120_000);
  let t: TestCore;
  let proxy: FaultProxy;
  let m: Manager;
  const phases = new Map<string, string[]>();

  before(async () => {
    t = await startTestCore();
    proxy = await startFaultProxy(t.core.endpoints.configdb);
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: tempDir(),
        factoryplus: { configdbUrl: proxy.url },
        reconcile: { resyncSeconds: 600, backoffBaseMs: 50, backoffMaxMs: 500 },
      },
    });
    const u = config.uuids;
    t.core.store.onChange((app, obj) => {
      if (app !== u.app.setupStatus) return;
      const phase = (t.core.store.get(app, obj)?.json as { phase?: string } | undefined)?.phase ?? 'deleted';
      const seq = phases.get(obj) ?? [];
      if (seq.at(-1) !== phase) seq.push(phase);
      phases.set(obj, seq);
    });
    m = await startTestManager(t, config);
  });
  after(async () => {
    await m?.stop();
    await proxy?.close();
    await t?.stop();
  });

  it("still brings every cluster to ready, with each cluster's status written in order", async () => {
    const u = loadConfig({ env: {} }).uuids;
    proxy.set({ fault: { kind: 'status', status: 500 }, every: 3 });
    const clusters: string[] = [];
    for (let i = 0; i < N; i++) {
      const uuid = t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
      clusters.push(uuid);
      const r = await fetch(`${t.core.endpoints.configdb}/v2/app/${u.app.clusterConfig}/object/${uuid}`, {
        method: 'PUT',
        headers: { Authorization: adminAuth(t.core), 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: `Flaky_${i}`, namespace: 'fplus-edge' }),
      });
      expect(r.status).to.equal(201);
    }
    const stored = (id: string) => t.core.store.get(u.app.setupStatus, id)?.json as Record<string, unknown> | undefined;
    await waitFor(
      () => clusters.every((id) => stored(id)?.ready === true),
      60_000,
      undefined,
      'every cluster ready',
    ).catch((e) => {
      const state = clusters.map((id) => ({
        phase: m.status.get(id)?.phase,
        error: String(m.controller.lastError(id)),
      }));
      throw new Error(
        `${(e as Error).message}: ${JSON.stringify({ queue: m.controller.stats, proxy: proxy.stats, state })}`,
      );
    });
    expect(proxy.stats.injected, 'faults injected').to.be.greaterThan(N);
    proxy.set(null);
    await m.status.flush();

    for (const id of clusters) {
      const seq = phases.get(id)!;
      const order = seq.map((p) => PHASES.indexOf(p));
      expect(
        order.every((i) => i >= 0),
        `phases of ${id}: ${seq}`,
      ).to.equal(true);
      expect(order, `phases of ${id} in order`).to.deep.equal([...order].sort((a, b) => a - b));
      expect(seq.at(-1)).to.equal('ready');
      expect(stored(id), "stored status equals the manager's").to.deep.equal(m.status.get(id));
      const accounts = [stored(id)!.flux, stored(id)!.krbkeys] as Array<{ uuid: string }>;
      expect(accounts.every((a) => t.core.objects.exists(a.uuid))).to.equal(true);
    }
    expect(t.core.objects.members(u.class.edgeAccount)).to.have.length(2 * N);
  });
});
