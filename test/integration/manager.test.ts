import { expect } from 'chai';
import { loadConfig } from '../../src/config/index.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import type { Manager } from '../../src/manager.js';
import { startTestManager } from '../helpers/api.js';
import { adminAuth, startTestCore, tempDir, type TestCore } from '../helpers/core.js';

async function until<T>(fn: () => T | Promise<T>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the Cluster Manager on the embedded core', function () {
  this.timeout(60_000);
  let t: TestCore;
  let m: Manager;
  const config = loadConfig({ env: {}, overrides: { dataDir: tempDir(), reconcile: { resyncSeconds: 600 } } });
  const u = config.uuids;
  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${t.core.endpoints.configdb}${path}`, {
      method,
      headers: { Authorization: adminAuth(t.core), 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  before(async () => {
    t = await startTestCore();
    m = await startTestManager(t, config);
    await until(() => m.controller.ready, 5000);
  });
  after(async () => {
    await m.stop();
    await t.stop();
  });

  it('commissions a cluster created through the Config Store only, told by the change notification', async () => {
    const { uuid } = await (await admin('POST', '/v2/object', { class: u.class.edgeCluster })).json();
    expect(
      (
        await admin('PUT', `/v2/app/${u.app.clusterConfig}/object/${uuid}`, {
          name: 'Auto_1',
          namespace: 'fplus-edge',
          chart: Local.chart.cluster,
        })
      ).status,
    ).to.equal(201);
    const st = await until(async () => {
      const r = await admin('GET', `/v2/app/${u.app.setupStatus}/object/${uuid}`);
      const v = r.status === 200 ? await r.json() : undefined;
      return v?.ready === true ? v : undefined;
    }, 10_000);
    expect(st.phase).to.equal('ready');
    expect(st.repo.head).to.match(/^[0-9a-f]{40}$/);
  });

  it('tears a cluster down when its configuration entry is deleted', async () => {
    const { uuid } = await (await admin('POST', '/v2/object', { class: u.class.edgeCluster })).json();
    await admin('PUT', `/v2/app/${u.app.clusterConfig}/object/${uuid}`, { name: 'Auto_2', namespace: 'edge' });
    await until(() => m.status.get(uuid)?.ready === true, 10_000);
    expect((await admin('DELETE', `/v2/app/${u.app.clusterConfig}/object/${uuid}`)).status).to.equal(204);
    await until(async () => (await admin('GET', `/v2/app/${u.app.setupStatus}/object/${uuid}`)).status === 404, 10_000);
    expect((await admin('GET', `/v2/app/${u.app.gitRepoConfig}/object/${uuid}`)).status).to.equal(404);
  });
});
