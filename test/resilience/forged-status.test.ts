import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../src/config/index.js';
import type { Config } from '../../src/config/types.js';
import { ConfigDbPerm } from '../../src/embedded/configdb/index.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { silentLogger } from '../../src/lib/log.js';
import { startManager, type Manager } from '../../src/manager.js';
import { adminAuth, basic, startTestCore, tempDir, type TestCore } from '../helpers/core.js';
import { waitFor } from '../helpers/processes.js';

/*
 * The setup status entries are data: anyone with write access to the setup
 * status app can write one. A forged status for a cluster without a
 * configuration entry makes the service remove that "cluster" at its next
 * start; one naming another cluster's accounts (or any other principal) must
 * not make it delete their identities, grants or objects.
 */

interface Cond {
  type: string;
  reason: string;
  message: string;
}

describe('forged setup status entries', function () {
  this.timeout(120_000);
  let t: TestCore;
  let config: Config;
  let m: Manager | undefined;
  let attacker: string;

  const u = () => config.uuids;
  const start = async () => {
    m = await startManager({
      config,
      directoryUrl: t.core.endpoints.directory,
      credentials: t.core.credentials.clusterManager,
      mqttProtocol: process.env.TEST_MQTT_URL ? 5 : 4,
      log: silentLogger,
    });
    await waitFor(() => m!.controller.ready, 15_000, undefined, 'first resync');
    return m;
  };
  const stop = async () => {
    await m?.stop();
    m = undefined;
  };
  const put = (app: string, obj: string, body: unknown, auth: string) =>
    fetch(`${t.core.endpoints.configdb}/v2/app/${app}/object/${obj}`, {
      method: 'PUT',
      headers: { Authorization: auth, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  const newClusterObject = () =>
    t.core.objects.create({ class: u().class.edgeCluster, owner: Local.account.admin }).registration.uuid;

  /** Everything the teardown of an account would delete. */
  const accountState = (uuid: string) => ({
    exists: t.core.objects.exists(uuid),
    upn: t.core.auth.principal(uuid)?.upn ?? null,
    grants: t.core.auth
      .findGrants({ principal: uuid })
      .map((g) => g.uuid)
      .sort(),
    info: t.core.store.get(u().app.info, uuid)?.json ?? null,
    member: t.core.objects.isMember(u().class.edgeAccount, uuid),
  });
  const failedWith = async (mgr: Manager, cluster: string): Promise<Cond> => {
    await waitFor(
      () => mgr.status.get(cluster)?.phase === 'failed',
      30_000,
      undefined,
      `forged cluster ${cluster} refused`,
    );
    await mgr.status.flush();
    return (mgr.status.get(cluster)!.conditions as unknown as Cond[]).find((c) => c.type === 'Ready')!;
  };

  before(async () => {
    t = await startTestCore();
    config = loadConfig({ env: {}, overrides: { dataDir: tempDir('cm-forged-'), reconcile: { resyncSeconds: 600 } } });
    // A principal that may write setup status entries and nothing else.
    attacker = randomUUID();
    t.core.auth.ensurePrincipal(attacker);
    t.core.auth.setPassword('status-writer', attacker, 'status-writer-pw');
    t.core.auth.addGrant({
      principal: attacker,
      permission: ConfigDbPerm.WriteConfig,
      target: config.uuids.app.setupStatus,
      plural: false,
    });
  });
  after(async () => {
    await stop();
    await t?.stop();
  });

  it("refuses to remove a forged cluster that names another cluster's accounts, and deletes nothing", async () => {
    const mgr = await start();
    const victim = newClusterObject();
    expect(
      (await put(u().app.clusterConfig, victim, { name: 'Victim', namespace: 'fplus-edge' }, adminAuth(t.core))).status,
    ).to.equal(201);
    await waitFor(() => mgr.status.get(victim)?.ready === true, 30_000, undefined, 'victim ready');
    const vs = mgr.status.get(victim) as Record<string, { uuid: string }>;
    const flux = vs.flux!.uuid;
    const krbkeys = vs.krbkeys!.uuid;
    const before = { flux: accountState(flux), krbkeys: accountState(krbkeys) };
    expect(before.flux.upn).to.match(/^op1flux\/Victim@/);
    expect(before.flux.grants).to.have.length(1);
    await stop();

    // While the service is down, statuses for clusters that have no configuration entry.
    const writer = basic('status-writer', 'status-writer-pw');
    const forged = newClusterObject();
    const res = await put(
      u().app.setupStatus,
      forged,
      {
        spec: { name: 'Victim', namespace: 'fplus-edge' },
        phase: 'ready',
        ready: true,
        flux: { uuid: flux.toUpperCase(), done: true },
        krbkeys: { uuid: krbkeys, done: true },
      },
      writer,
    );
    expect(res.status, await res.text()).to.equal(201);
    // One naming the service's own account and the administrator.
    const forged2 = newClusterObject();
    expect(
      (
        await put(
          u().app.setupStatus,
          forged2,
          {
            spec: { name: 'Other', namespace: 'fplus-edge' },
            phase: 'ready',
            ready: true,
            flux: { uuid: Local.account.admin, done: true },
            krbkeys: { uuid: Local.account.clusterManager, done: true },
          },
          writer,
        )
      ).status,
    ).to.equal(201);
    // One for the Config Store's own object, which has a Sparkplug address.
    const configdbAddress = t.core.store.get(u().app.sparkplugAddress, u().special.configdbDevice)!.json;
    expect(
      (
        await put(
          u().app.setupStatus,
          u().special.configdbDevice,
          { spec: { name: 'X', namespace: 'x' }, phase: 'ready', ready: true },
          writer,
        )
      ).status,
    ).to.equal(201);
    const service = { admin: accountState(Local.account.admin), cm: accountState(Local.account.clusterManager) };

    const again = await start();
    for (const c of [forged, forged2, u().special.configdbDevice]) {
      const cond = await failedWith(again, c);
      expect(cond.reason, c).to.equal('RemovalRefused');
      expect(cond.message, c).to.match(/^nothing was removed: /);
    }
    expect((await failedWith(again, forged)).message).to.include(`belongs to cluster ${victim}`);
    await again.controller.idle();

    expect({ flux: accountState(flux), krbkeys: accountState(krbkeys) }, "the victim's accounts").to.deep.equal(before);
    expect(again.status.get(victim)).to.deep.include({ ready: true, phase: 'ready' });
    expect(accountState(Local.account.admin), 'the administrator').to.deep.equal(service.admin);
    expect(accountState(Local.account.clusterManager), "the service's own account").to.deep.equal(service.cm);
    expect(
      t.core.store.get(u().app.sparkplugAddress, u().special.configdbDevice)?.json,
      "the Config Store's address",
    ).to.deep.equal(configdbAddress);
    // The service still works: its identity was not deleted.
    const ok = newClusterObject();
    expect(
      (await put(u().app.clusterConfig, ok, { name: 'After_forgery', namespace: 'fplus-edge' }, adminAuth(t.core)))
        .status,
    ).to.equal(201);
    await waitFor(() => again.status.get(ok)?.ready === true, 30_000, undefined, 'a new cluster ready');
  });

  it("refuses to set up a cluster whose status names another cluster's account, before anything is made", async () => {
    const mgr = m ?? (await start());
    const victim = newClusterObject();
    expect(
      (await put(u().app.clusterConfig, victim, { name: 'Victim_2', namespace: 'fplus-edge' }, adminAuth(t.core)))
        .status,
    ).to.equal(201);
    await waitFor(() => mgr.status.get(victim)?.ready === true, 30_000, undefined, 'victim ready');
    const flux = (mgr.status.get(victim) as Record<string, { uuid: string }>).flux!.uuid;
    const before = accountState(flux);
    await stop();

    const thief = newClusterObject();
    expect(
      (
        await put(
          u().app.setupStatus,
          thief,
          { flux: { uuid: flux, done: false } },
          basic('status-writer', 'status-writer-pw'),
        )
      ).status,
    ).to.equal(201);
    expect(
      (await put(u().app.clusterConfig, thief, { name: 'Thief', namespace: 'fplus-edge' }, adminAuth(t.core))).status,
    ).to.equal(201);
    const again = await start();
    const cond = await failedWith(again, thief);
    expect(cond.reason).to.equal('ForeignAccount');
    await again.controller.idle();
    // Without the check the victim's Flux account would be renamed op1flux/Thief and given pull on the thief's repo.
    expect(accountState(flux)).to.deep.equal(before);
    expect(t.core.store.get(u().app.sparkplugAddress, thief), 'no address made').to.equal(undefined);
  });

  it('still removes a cluster whose configuration entry is deleted', async () => {
    const mgr = m ?? (await start());
    const c = newClusterObject();
    expect(
      (await put(u().app.clusterConfig, c, { name: 'Going', namespace: 'fplus-edge' }, adminAuth(t.core))).status,
    ).to.equal(201);
    await waitFor(() => mgr.status.get(c)?.ready === true, 30_000, undefined, 'cluster ready');
    const flux = (mgr.status.get(c) as Record<string, { uuid: string }>).flux!.uuid;
    const del = await fetch(`${t.core.endpoints.configdb}/v2/app/${u().app.clusterConfig}/object/${c}`, {
      method: 'DELETE',
      headers: { Authorization: adminAuth(t.core) },
    });
    expect(del.status).to.equal(204);
    await waitFor(() => mgr.status.get(c) === undefined, 30_000, undefined, 'cluster removed');
    expect(accountState(flux)).to.include({ upn: null, member: false });
    expect(accountState(flux).grants).to.deep.equal([]);
  });
});
