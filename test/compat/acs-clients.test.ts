/**
 * The embedded core as ACS's own client libraries see it: the npm packages
 * `@amrc-factoryplus/service-client` and `@amrc-factoryplus/sparkplug-app`,
 * called as ACS services call them, with the Cluster Manager running beside
 * the core. What passes here is what an ACS service would get from the core;
 * where ACS behaves in a way the Cluster Manager depends on (grant listings,
 * identity lookups, device births, rebirth requests), the library is the judge.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { firstValueFrom, filter, timeout } from 'rxjs';
import { Address, ServiceClient, UUIDs } from '@amrc-factoryplus/service-client';
import { SparkplugApp } from '@amrc-factoryplus/sparkplug-app';
import { Known, Local } from '../../src/embedded/seed/local-uuids.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { spawnMosquitto, type RestartableBroker } from '../helpers/mosquitto.js';

/* The libraries are plain JavaScript; these are the parts used here. */
type Fplus = any;

describe('ACS client libraries (npm) against the embedded core', function () {
  this.timeout(60_000);
  let s: ApiStack;
  let fplus: Fplus;
  let cm: Fplus;
  let cluster: string;
  const u = () => s.config.uuids;

  const client = (username: string, password: string): Promise<Fplus> =>
    new ServiceClient({ directory_url: s.t.core.endpoints.directory, username, password, verbose: '' }).init();

  let broker: RestartableBroker | undefined;

  before(async () => {
    // The libraries speak MQTT 5 only, which the embedded broker (aedes) does not: a real mosquitto stands in.
    const mqttUrl = process.env.TEST_MQTT_URL || (broker = await spawnMosquitto()).url;
    s = await startApiStack({ mqttUrl });
    fplus = await client('admin', s.t.core.credentials.admin.password);
    const c = s.t.core.credentials.clusterManager;
    cm = await client(c.username, c.password);
    cluster = await s.createCluster('Compat_1');
  });
  after(async () => {
    for (const f of [fplus, cm]) {
      const mqtt = f?.MQTT?._mqtt ?? undefined;
      await mqtt?.endAsync?.();
    }
    await s?.stop();
    await broker?.close();
  });

  describe('Directory', () => {
    it('finds every embedded service by its UUID', async () => {
      const e = s.t.core.endpoints;
      expect(await fplus.Directory.get_service_url(UUIDs.Service.ConfigDB)).to.equal(e.configdb);
      expect(await fplus.Directory.get_service_url(UUIDs.Service.Authentication)).to.equal(e.auth);
      expect(await fplus.Directory.get_service_url(UUIDs.Service.Directory)).to.equal(e.directory);
      expect(await fplus.Directory.get_service_url(UUIDs.Service.Command_Escalation)).to.equal(e.cmdesc);
    });

    it('knows the Config Store device and the Cluster Manager node from their births, by Instance_UUID', async () => {
      const info = await fplus.Directory.get_service_info(UUIDs.Service.ConfigDB);
      expect(info.device).to.equal(u().special.configdbDevice);
      const addr = await fplus.Directory.get_device_address(info.device);
      expect(String(addr)).to.equal('AMRC-Service-Core/Config_DB');
      const me = await cm.Auth.whoami_uuid();
      const node = await fplus.Directory.get_device_info(me);
      expect(node).to.include({ uuid: me, group_id: 'AMRC-Service-Core', node_id: 'Cluster_Manager', online: true });
      expect(node.top_schema).to.equal('05688a03-730e-4cda-9932-172e2c62e45c');
    });

    it("knows each edge cluster's Sparkplug device under the cluster's own UUID", async () => {
      const dev = await fplus.Directory.get_device_info(cluster);
      expect(dev).to.include({
        uuid: cluster,
        group_id: 'AMRC-Service-Core',
        node_id: 'Cluster_Manager',
        device_id: cluster,
        online: true,
      });
      expect(String(await fplus.Directory.get_device_address(cluster))).to.equal(
        `AMRC-Service-Core/Cluster_Manager/${cluster}`,
      );
    });
  });

  describe('Config Store', () => {
    it('reads, writes, lists and deletes entries (v1 paths the library uses)', async () => {
      const obj = await fplus.ConfigDB.create_object(u().class.edgeCluster);
      expect(obj).to.match(/^[0-9a-f-]{36}$/);
      await fplus.ConfigDB.put_config(u().app.info, obj, { name: 'compat object' });
      expect(await fplus.ConfigDB.get_config(u().app.info, obj)).to.deep.equal({ name: 'compat object' });
      expect(await fplus.ConfigDB.list_configs(u().app.info)).to.include(obj);
      const [entry, etag] = await fplus.ConfigDB.get_config_with_etag(u().app.info, obj);
      expect(entry).to.deep.equal({ name: 'compat object' });
      expect(etag).to.be.a('string');
      await fplus.ConfigDB.patch_config(u().app.info, obj, 'merge', { deleted: true });
      expect(await fplus.ConfigDB.get_config(u().app.info, obj)).to.deep.equal({
        name: 'compat object',
        deleted: true,
      });
      await fplus.ConfigDB.delete_config(u().app.info, obj);
      expect(await fplus.ConfigDB.get_config(u().app.info, obj)).to.equal(undefined);
      await fplus.ConfigDB.delete_object(obj);
    });

    it('searches an app and resolves names', async () => {
      const found = await fplus.ConfigDB.search({ app: u().app.clusterConfig, query: { name: 'Compat_1' } });
      expect(found).to.deep.equal([cluster]);
      const all = await fplus.ConfigDB.get_all_configs(u().app.clusterConfig);
      expect(all.get?.(cluster) ?? all[cluster]).to.deep.include({ name: 'Compat_1' });
    });

    it('lists class members and memberships', async () => {
      expect(await fplus.ConfigDB.class_members(u().class.edgeCluster)).to.include(cluster);
      expect(await fplus.ConfigDB.class_has_member(u().class.edgeCluster, cluster)).to.equal(true);
    });

    it('watches an entry over Sparkplug (Last_Changed), asking Command Escalation for the birth it missed', async () => {
      const watcher = await fplus.ConfigDB.watcher();
      const obj = randomUUID();
      s.t.core.objects.create({ class: u().class.edgeCluster, uuid: obj, owner: Local.account.admin });
      const seen = firstValueFrom(
        watcher.watch_config(u().app.info, obj).pipe(
          filter((v: unknown) => (v as { name?: string } | undefined)?.name === 'watched'),
          timeout(30_000),
        ),
      );
      // The library drops changes until it holds a birth; the Config_DB node was born long
      // before, so the library asks Command Escalation for a rebirth (after 5 s without one).
      await firstValueFrom(watcher.device.births.pipe(timeout(20_000)));
      await fplus.ConfigDB.put_config(u().app.info, obj, { name: 'watched' });
      expect(await seen).to.deep.equal({ name: 'watched' });
    });
  });

  describe('Auth', () => {
    it('answers whoami, identities and principal lookups', async () => {
      const me = await fplus.Auth.whoami();
      expect(me).to.deep.equal({ kerberos: 'admin@FACTORYPLUS.LOCAL', uuid: Local.account.admin });
      expect(await fplus.Auth.whoami_uuid()).to.equal(Local.account.admin);
      const p = await fplus.Auth.find_principal('kerberos', 'admin@FACTORYPLUS.LOCAL');
      expect(p).to.include({ uuid: Local.account.admin, kerberos: 'admin@FACTORYPLUS.LOCAL' });
      expect(await fplus.Auth.get_identity(Local.account.admin, 'kerberos')).to.equal('admin@FACTORYPLUS.LOCAL');
      expect(await fplus.Auth.list_principals()).to.include(Local.account.admin);
    });

    it('checks ACLs as a service does for its callers', async () => {
      const me = await cm.Auth.whoami_uuid();
      expect(
        await fplus.Auth.check_acl({ uuid: Local.account.admin }, u().perm.manageClusters, cluster, true),
      ).to.equal(true);
      expect(await fplus.Auth.check_acl({ uuid: me }, u().perm.manageClusters, cluster, true)).to.equal(false);
      expect(await fplus.Auth.check_acl({ uuid: me }, u().perm.gitPush, cluster, false)).to.equal(true);
    });

    it('adds, reads, finds and deletes grants; a caller managing one permission finds none, as on ACS', async () => {
      const principal = randomUUID();
      s.t.core.objects.create({ class: Known.class.humanUser, uuid: principal, owner: Local.account.admin });
      const grant = { principal, permission: u().perm.gitPull, target: cluster, plural: false };
      const g = await cm.Auth.add_grant(grant);
      expect(await cm.Auth.add_grant(grant), 'an identical grant answers its UUID').to.equal(g);
      expect(await cm.Auth.get_grant(g)).to.deep.include(grant);
      expect(await cm.Auth.find_grants({ principal })).to.deep.equal([]);
      expect(await fplus.Auth.find_grants({ principal })).to.deep.equal([g]);
      await cm.Auth.delete_grant(g);
      expect(await fplus.Auth.find_grants({ principal })).to.deep.equal([]);
    });
  });

  describe('Sparkplug (sparkplug-app)', () => {
    it("gets a cluster device's birth it joined too late for, through a rebirth request, and follows its metrics", async () => {
      const app = await new SparkplugApp({ fplus }).init();
      try {
        const device = app.device({ device: cluster, rebirth: 1000 });
        const birth = (await firstValueFrom(device.births.pipe(timeout(20_000)))) as {
          address: unknown;
          factoryplus: boolean;
          metrics: { name: string; value: unknown }[];
        };
        expect(String(birth.address)).to.equal(`AMRC-Service-Core/Cluster_Manager/${cluster}`);
        const byName = Object.fromEntries(birth.metrics.map((m) => [m.name, m.value]));
        expect(byName).to.include({ Instance_UUID: cluster, Name: 'Compat_1', Phase: 'ready', Ready: true });
      } finally {
        await app.mqtt.endAsync();
      }
    });

    it('asks a node to rebirth through Command Escalation, refusing callers without the Rebirth permission', async () => {
      const addr = new Address('AMRC-Service-Core', 'Cluster_Manager');
      const before = s.m.node!.bdSeq;
      let births = 0;
      s.m.node!.on('born', () => births++);
      await fplus.CmdEsc.rebirth(addr);
      await new Promise((r) => setTimeout(r, 1000));
      expect(births).to.be.at.least(1);
      expect(s.m.node!.bdSeq, 'a rebirth keeps the bdSeq').to.equal(before);
      let refused: unknown;
      await cm.CmdEsc.rebirth(addr).catch((e: unknown) => (refused = e));
      expect(String(refused)).to.match(/403/);
    });
  });
});
