import { expect } from 'chai';
import { loadConfig } from '../../src/config/index.js';
import { ConfigDbClient } from '../../src/factoryplus/configdb.js';
import { FplusHttp } from '../../src/factoryplus/http.js';
import type { Json } from '../../src/lib/merge-patch.js';
import { readStatus, setCondition, type Condition } from '../../src/reconcile/setup-status.js';
import { StatusStore } from '../../src/reconcile/status.js';
import { startTestCore, tempDir, type TestCore } from '../helpers/core.js';

const u = loadConfig({ env: {} }).uuids;
const A = '5a8f7c6e-0000-4000-8000-00000000a001';
const B = '5a8f7c6e-0000-4000-8000-00000000b002';
const C = '5a8f7c6e-0000-4000-8000-00000000c003';

describe('setup status store', function () {
  this.timeout(40_000);
  let t: TestCore;
  let cdb: ConfigDbClient;

  before(async () => {
    t = await startTestCore({ dataDir: tempDir() });
    // Status entries are for registered objects (clusters).
    for (const id of [A, B, C]) t.core.objects.create({ class: u.class.edgeCluster, uuid: id, owner: id });
    cdb = new ConfigDbClient(
      new FplusHttp(t.core.credentials.clusterManager),
      async () => `${t.core.endpoints.configdb}/`,
    );
  });
  after(async () => {
    await t.stop();
  });

  it('writes merge patches in order and serves the patched status at once', async () => {
    const s = new StatusStore(cdb, u.app.setupStatus);
    const writes = [
      s.update(A, { spec: { name: 'A', namespace: 'ns', values: { x: 1 } } }),
      s.update(A, { flux: { uuid: 'f' } }),
      s.update(A, { flux: { done: true }, spec: { values: null } }),
      s.update(B, { ready: false }),
    ];
    expect(s.get(A)).to.deep.equal({ spec: { name: 'A', namespace: 'ns' }, flux: { uuid: 'f', done: true } });
    await Promise.all(writes);
    expect(await cdb.get(u.app.setupStatus, A)).to.deep.equal(s.get(A));
    expect(await cdb.get(u.app.setupStatus, B)).to.deep.equal({ ready: false });

    const reloaded = new StatusStore(cdb, u.app.setupStatus);
    await reloaded.load();
    expect(reloaded.get(A)).to.deep.equal(s.get(A));
    expect(reloaded.clusters().sort()).to.deep.equal([A, B].sort());

    await s.update(B, null);
    expect(s.get(B)).to.equal(undefined);
    expect(await cdb.get(u.app.setupStatus, B)).to.equal(undefined);
  });

  it('writes the condition history with the conditions, in the same request, and reads it back after a reload', async () => {
    // Every request the store makes to the Config Store, counted on the way through.
    let patches = 0;
    const counted = {
      list: (app: string) => cdb.list(app),
      get: <T>(app: string, obj: string) => cdb.get<T>(app, obj),
      delete: (app: string, obj: string) => cdb.delete(app, obj),
      patch: (app: string, obj: string, p: unknown) => {
        patches++;
        return cdb.patch(app, obj, p);
      },
    };
    let clock = Date.parse('2025-03-01T10:00:00.000Z');
    const s = new StatusStore(counted, u.app.setupStatus, { now: () => new Date(clock) });
    let conditions: Condition[] = [];
    const set = async (c: Parameters<typeof setCondition>[1]) => {
      clock += 1000;
      conditions = setCondition(conditions, c, new Date(clock));
      await s.update(C, { conditions: conditions as unknown as Json });
    };
    const failing = { type: 'Ready', status: 'False' as const, reason: 'GitUnavailable', message: 'refused' };
    await s.update(C, { phase: 'repo', ready: false });
    await set({ ...failing, attempts: 1 });
    await set({ ...failing, attempts: 2 });
    await set({ ...failing, attempts: 3 });
    await set({ type: 'Ready', status: 'True', reason: 'Commissioned', message: 'repo at 0123' });
    expect(patches, 'one request per update, the history in it').to.equal(5);

    const stored = await cdb.get(u.app.setupStatus, C);
    const expected = [
      { type: 'Ready', status: 'False', reason: 'GitUnavailable', message: 'refused', at: '2025-03-01T10:00:01.000Z' },
      {
        type: 'Ready',
        status: 'True',
        reason: 'Commissioned',
        message: 'repo at 0123',
        at: '2025-03-01T10:00:04.000Z',
      },
    ];
    expect((stored as { history?: unknown }).history).to.deep.equal(expected);
    expect(stored).to.deep.equal(s.get(C));
    const reloaded = new StatusStore(cdb, u.app.setupStatus);
    await reloaded.load();
    expect(readStatus(reloaded.get(C))!.history).to.deep.equal(expected);
  });

  it('keeps retrying through a Config Store outage and lands every patch in order', async () => {
    const s = new StatusStore(cdb, u.app.setupStatus, { retryBaseMs: 50, retryMaxMs: 200 });
    let errors = 0;
    s.onWriteError = () => {
      errors++;
    };
    await s.load();
    const writes: Promise<void>[] = [];
    await t.restart({
      samePorts: true,
      whileStopped: async () => {
        for (let i = 0; i < 20; i++) writes.push(s.update(A, { counter: i, [`k${i}`]: i % 3 === 0 ? null : i }));
        for (let i = 0; i < 60 && !s.degraded; i++) await new Promise((r) => setTimeout(r, 50));
        expect(s.degraded).to.equal(true);
        expect(s.pending).to.be.greaterThan(0);
      },
    });
    await Promise.all(writes);
    await s.flush();
    expect(errors).to.be.greaterThan(0);
    expect(s.degraded).to.equal(false);
    expect(s.pending).to.equal(0);
    const stored = await cdb.get<Record<string, unknown>>(u.app.setupStatus, A);
    expect(stored).to.deep.equal(s.get(A));
    expect(stored?.counter).to.equal(19);
  });
});
