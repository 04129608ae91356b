import { expect } from 'chai';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { SpecError, validateSpec } from '../../src/repo/manifests.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { waitFor } from '../helpers/processes.js';

/*
 * Configuration entries a careless or hostile writer can put in the Config
 * Store: values nested thousands of levels deep, megabytes of values, a chart
 * UUID in upper case. Each must end in a clear state before anything is
 * made for the cluster, and the embedded Config Store must refuse documents
 * it cannot handle with a 422, not fail with a 500.
 */

function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = {};
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

interface Row {
  uuid: string;
  name: string | null;
  phase: string;
  ready: boolean;
}
interface Cond {
  type: string;
  reason: string;
  message: string;
}

describe('pathological configuration entries', function () {
  this.timeout(120_000);
  let s: ApiStack;

  const cdbUrl = (app: string, obj: string) => `${s.t.core.endpoints.configdb}/v2/app/${app}/object/${obj}`;
  const putEntry = (app: string, obj: string, body: string, type = 'application/json', method = 'PUT') =>
    fetch(cdbUrl(app, obj), { method, headers: { Authorization: s.admin, 'Content-Type': type }, body });
  /**
   * A cluster with this configuration entry, written over HTTP or, `direct`,
   * straight into the store as a Config Store without the embedded one's
   * depth limit and schema (a Factory+ installation's) would hold it.
   */
  const newCluster = async (spec: Record<string, unknown>, direct = false): Promise<string> => {
    const u = s.config.uuids;
    const uuid = s.t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
    const entry = { namespace: 'fplus-edge', ...spec };
    if (direct) {
      s.t.core.store.put(u.app.clusterConfig, uuid, entry as never);
      s.m.controller.touch(uuid);
      return uuid;
    }
    const res = await putEntry(u.app.clusterConfig, uuid, JSON.stringify(entry));
    expect(res.status, await res.clone().text()).to.equal(201);
    return uuid;
  };
  /** What commissioning makes outside the status entry, to show that nothing was made. */
  const sideEffects = (cluster: string) => {
    const u = s.config.uuids;
    const core = s.t.core;
    return {
      address: core.store.get(u.app.sparkplugAddress, cluster)?.json ?? null,
      repoConfig: core.store.get(u.app.gitRepoConfig, cluster)?.json ?? null,
      accounts: core.objects.members(u.class.edgeAccount).length,
      identities: core.auth.principalsWithIdentity().length,
      grantsOnCluster: core.auth.findGrants({ target: cluster }).length,
    };
  };
  const listed = async (): Promise<Row[]> => {
    const res = await fetch(`${s.url}/v1/cluster`, { headers: { Authorization: s.admin } });
    expect(res.status).to.equal(200);
    return (await res.json()) as Row[];
  };
  const failedWith = async (cluster: string): Promise<Cond> => {
    await waitFor(() => s.m.status.get(cluster)?.phase === 'failed', 30_000, undefined, 'cluster failed');
    await s.m.controller.idle();
    return (s.m.status.get(cluster)!.conditions as unknown as Cond[])[0]!;
  };

  before(async () => {
    s = await startApiStack();
  });
  after(async () => {
    await s?.stop();
  });

  for (const [depth, direct] of [
    [65, false],
    [250, false],
    [2000, true],
    [3000, true],
  ] as const) {
    it(`refuses values ${depth} levels deep with InvalidValues before anything is made${direct ? ' (entry written past the embedded limit)' : ''}`, async () => {
      const before = sideEffects('none');
      const cluster = await newCluster({ name: `Deep_${depth}`, values: nested(depth) }, direct);
      const cond = await failedWith(cluster);
      expect(cond.reason).to.equal('InvalidValues');
      expect(cond.message).to.include('64').and.include('MAX_VALUES_DEPTH');
      const st = s.m.status.get(cluster)!;
      expect(st.flux, 'no flux account recorded').to.equal(undefined);
      expect(st.krbkeys, 'no krbkeys account recorded').to.equal(undefined);
      expect(sideEffects(cluster)).to.deep.equal({ ...before, address: null, repoConfig: null, grantsOnCluster: 0 });
      const row = (await listed()).find((r) => r.uuid === cluster);
      expect(row, 'listed in /v1/cluster').to.include({ phase: 'failed', ready: false });
    });
  }

  it('commissions values exactly at the depth limit', async () => {
    const cluster = await newCluster({ name: 'Deep_64', values: nested(64) });
    await waitFor(() => s.m.status.get(cluster)?.ready === true, 30_000, undefined, 'cluster ready');
  });

  it('refuses values over the size limit with InvalidValues naming it, before anything is made', async () => {
    const before = sideEffects('none');
    const big = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, 'x'.repeat(1000)]));
    const cluster = await newCluster({ name: 'Big_values', values: big });
    const cond = await failedWith(cluster);
    expect(cond.reason).to.equal('InvalidValues');
    expect(cond.message).to.include(String(s.config.reconcile.maxValuesBytes)).and.include('MAX_VALUES_BYTES');
    expect(sideEffects(cluster)).to.deep.equal({ ...before, address: null, repoConfig: null, grantsOnCluster: 0 });
    expect((await listed()).map((r) => r.uuid)).to.include(cluster);
  });

  it('commissions a cluster whose chart UUID is written in upper case, with that chart', async () => {
    const u = s.config.uuids;
    const sc = s.t.core.store.get(u.app.serviceConfig, u.service.clusterManager)!.json as { helm: { cluster: string } };
    const chart = sc.helm.cluster.toUpperCase();
    const cluster = await newCluster({ name: 'Upper_chart', chart });
    await waitFor(() => s.m.status.get(cluster)?.ready === true, 30_000, undefined, 'cluster ready');
    expect((s.m.status.get(cluster)!.spec as { chart?: string }).chart).to.equal(sc.helm.cluster);
    expect((await listed()).find((r) => r.uuid === cluster)).to.include({
      name: 'Upper_chart',
      phase: 'ready',
      ready: true,
    });
  });

  it('commissions with a ServiceConfig whose UUIDs are written in upper case', async () => {
    const u = s.config.uuids;
    const original = s.t.core.store.get(u.app.serviceConfig, u.service.clusterManager)!.json as {
      group: { cluster: { uuid: string } };
    };
    const upper = JSON.stringify(original).replace(
      /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g,
      (m) => m.toUpperCase(),
    );
    expect(upper).to.not.equal(JSON.stringify(original));
    const write = async (text: string) => {
      expect((await putEntry(u.app.serviceConfig, u.service.clusterManager, text)).status).to.equal(204);
      s.m.templates.invalidate();
    };
    await write(upper);
    try {
      const cluster = await newCluster({ name: 'Upper_service_config' });
      await waitFor(() => s.m.status.get(cluster)?.ready === true, 30_000, undefined, 'cluster ready');
      expect(s.t.core.objects.isMember(original.group.cluster.uuid, cluster), 'member of the cluster group').to.equal(
        true,
      );
    } finally {
      await write(JSON.stringify(original));
    }
  });

  describe('validateSpec on its own', () => {
    // Parsed from text, as a Config Store without a depth limit would serve it.
    const deepText = (depth: number) => JSON.parse(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`) as unknown;
    const refusal = (entry: unknown): SpecError => {
      try {
        validateSpec(entry);
      } catch (e) {
        expect(e, (e as Error).message).to.be.instanceOf(SpecError);
        return e as SpecError;
      }
      return expect.fail('accepted');
    };

    it('refuses fields of any depth or size with a short message, never overflowing the stack', () => {
      const deep = deepText(200_000);
      const cases: Array<[string, unknown, string]> = [
        ['values 200,000 levels deep', { name: 'A', namespace: 'a', values: deep }, 'InvalidValues'],
        ['a namespace 200,000 levels deep', { name: 'A', namespace: deep }, 'InvalidNamespace'],
        ['a chart 200,000 levels deep', { name: 'A', namespace: 'a', chart: deep }, 'InvalidChart'],
        ['a 1 MB name', { name: 'x'.repeat(1 << 20), namespace: 'a' }, 'InvalidName'],
        ['a 1 MB chart', { name: 'A', namespace: 'a', chart: 'x'.repeat(1 << 20) }, 'InvalidChart'],
      ];
      for (const [what, entry, reason] of cases) {
        const e = refusal(entry);
        expect(e.reason, what).to.equal(reason);
        expect(e.message.length, `${what}: message length`).to.be.below(200);
      }
    });
  });

  describe('the embedded Config Store', () => {
    const deep = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

    it('refuses an over-deep PUT or merge patch with 422 and keeps the entry as it was', async () => {
      const u = s.config.uuids;
      const obj = s.t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
      const app = u.app.edgeStatus;
      expect((await putEntry(app, obj, '{"kept":true}')).status).to.equal(201);
      for (const depth of [257, 4000, 100_000]) {
        for (const [method, type] of [
          ['PUT', 'application/json'],
          ['PATCH', 'application/merge-patch+json'],
        ]) {
          const res = await putEntry(app, obj, deep(depth), type, method);
          expect(res.status, `${method} ${depth} deep`).to.equal(422);
          const body = (await res.json()) as { error: string; message: string };
          expect(body.message, `${method} ${depth} deep`).to.include('256');
        }
      }
      const now = await fetch(cdbUrl(app, obj), { headers: { Authorization: s.admin } });
      expect(await now.json()).to.deep.equal({ kept: true });
      // At the limit the entry is taken.
      expect((await putEntry(app, obj, deep(255))).status).to.equal(204);
    });
  });
});
