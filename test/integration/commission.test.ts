import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { AuthClient } from '../../src/factoryplus/auth.js';
import { ConfigDbClient } from '../../src/factoryplus/configdb.js';
import { DirectoryClient } from '../../src/factoryplus/directory.js';
import { FplusHttp } from '../../src/factoryplus/http.js';
import { silentLogger } from '../../src/lib/log.js';
import { Commissioner, FLUX_VERSION } from '../../src/reconcile/commission.js';
import { StatusStore } from '../../src/reconcile/status.js';
import { TemplateCache } from '../../src/reconcile/templates.js';
import { RepoPool } from '../../src/repo/pool.js';
import { clone as cloneRepo, repoUrl } from '../helpers/git.js';
import { adminAuth, startTestCore, tempDir, type TestCore } from '../helpers/core.js';

const run = promisify(execFile);
const config = loadConfig({ env: {} });
const u = config.uuids;

describe('commissioning steps against the embedded core', function () {
  this.timeout(60_000);
  let t: TestCore;
  let cdb: ConfigDbClient;
  let status: StatusStore;
  let c: Commissioner;

  const adminPut = (app: string, obj: string, body: unknown) =>
    fetch(`${t.core.endpoints.configdb}/v2/app/${app}/object/${obj}`, {
      method: 'PUT',
      headers: { Authorization: adminAuth(t.core), 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  const newCluster = async (spec: unknown) => {
    const uuid = t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
    expect((await adminPut(u.app.clusterConfig, uuid, spec)).status).to.equal(201);
    return uuid;
  };
  const clone = (uuid: string) => cloneRepo(repoUrl(t.core.endpoints.git, uuid, t.core.credentials.admin));

  before(async () => {
    t = await startTestCore();
    const http = new FplusHttp(t.core.credentials.clusterManager);
    const dir = new DirectoryClient(http, t.core.endpoints.directory);
    cdb = new ConfigDbClient(http, () => dir.serviceUrl(u.service.configdb));
    const auth = new AuthClient(http, () => dir.serviceUrl(u.service.auth));
    status = new StatusStore(cdb, u.app.setupStatus);
    c = new Commissioner({
      cdb,
      auth,
      gitBase: () => dir.serviceUrl(u.service.git),
      uuids: u,
      organisation: 'AMRC',
      realm: config.factoryplus.realm,
      status,
      log: silentLogger,
      repos: new RepoPool({
        storeRoot: tempDir('co-'),
        gitBase: () => dir.serviceUrl(u.service.git),
        token: (o) => http.token(o),
        author: { name: 'Edge deployment operator', email: 'cm@test' },
      }),
      templates: new TemplateCache(cdb, u),
    });
  });
  after(async () => {
    await t.stop();
  });

  it('commissions a cluster: address, accounts, repo, ready', async () => {
    const uuid = await newCluster({ name: 'Building_1', namespace: 'fplus-edge' });
    await c.update(uuid, { name: 'Building_1', namespace: 'fplus-edge' });
    await status.flush();
    const st = (await cdb.get<Record<string, any>>(u.app.setupStatus, uuid))!;
    expect(st).to.deep.include({ ready: true, fluxVersion: FLUX_VERSION, phase: 'ready' });
    expect(st.flux.done).to.equal(true);
    expect(st.krbkeys.done).to.equal(true);
    expect(st.repo.head).to.match(/^[0-9a-f]{40}$/);
    expect(st.self_link).to.include(`/uuid/${uuid}`);
    expect(await cdb.get(u.app.sparkplugAddress, uuid)).to.deep.equal({ group_id: 'AMRC-Building_1' });
    expect(await cdb.get(u.app.gitRepoConfig, uuid)).to.deep.equal({ path: 'cluster/Building_1' });
    expect(t.core.auth.principal(st.flux.uuid)?.upn).to.equal(`op1flux/Building_1@${config.factoryplus.realm}`);
    expect(t.core.auth.principal(st.krbkeys.uuid)?.upn).to.equal(`op1krbkeys/Building_1@${config.factoryplus.realm}`);
    expect(t.core.objects.isMember(Local.role.edgeFlux, st.flux.uuid)).to.equal(true);
    expect(t.core.auth.check(t.core.auth.principal(st.flux.uuid)!, u.perm.gitPull, uuid)).to.equal(true);

    const dir = await clone(uuid);
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).to.match(/Edge Deployment Operator/);
    for (const f of ['edge-cluster.yaml', 'flux-system.yaml', 'helm-charts.yaml', 'self-link.yaml']) {
      const docs = parseAllDocuments(readFileSync(join(dir, 'edo/cluster', f), 'utf8')) as unknown as Array<{
        errors: unknown[];
        toJS(): any;
      }>;
      for (const d of docs) {
        expect(d.errors).to.deep.equal([]);
        expect(d.toJS().metadata.namespace).to.equal('fplus-edge');
      }
    }
    const { stdout } = await run('git', ['-C', dir, 'log', '--format=%an|%s']);
    expect(stdout.trim()).to.equal('Edge deployment operator|Cluster flux update');

    // Running again changes nothing.
    await c.update(uuid, { name: 'Building_1', namespace: 'fplus-edge' });
    await status.flush();
    expect((await cdb.get<Record<string, any>>(u.app.setupStatus, uuid))!.repo.head).to.equal(st.repo.head);
  });

  it('re-renders a ready cluster when its values change, and refuses a rename', async () => {
    const spec = { name: 'Line_2', namespace: 'edge' };
    const uuid = await newCluster(spec);
    await c.update(uuid, spec);
    const head1 = status.get(uuid)!.repo as { head: string };
    await c.update(uuid, { ...spec, values: { cluster: { tier: 'gold' } } });
    await status.flush();
    const st = status.get(uuid)!;
    expect(st.ready).to.equal(true);
    expect((st.repo as { head: string }).head).to.not.equal(head1.head);
    const dir = await clone(uuid);
    expect(readFileSync(join(dir, 'edo/cluster/edge-cluster.yaml'), 'utf8')).to.include('tier: gold');
    const { stdout } = await run('git', ['-C', dir, 'rev-list', '--count', 'HEAD']);
    expect(stdout.trim()).to.equal('2');

    const before = JSON.stringify(await cdb.get(u.app.gitRepoConfig, uuid));
    await c.update(uuid, { ...spec, name: 'Renamed' });
    const conds = status.get(uuid)!.conditions as Array<{ reason: string; message: string }>;
    expect(conds.some((x) => x.reason === 'NameChangeRefused' && /Renamed/.test(x.message))).to.equal(true);
    expect(JSON.stringify(await cdb.get(u.app.gitRepoConfig, uuid))).to.equal(before);
    expect(existsSync(dir)).to.equal(true);
  });

  it('fails a bad entry with a condition naming the problem, and recovers when it is fixed', async () => {
    const uuid = t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
    await c.update(uuid, { name: 'Bad', namespace: 'Not_A_Namespace' });
    let st = status.get(uuid)!;
    expect(st.phase).to.equal('failed');
    expect((st.conditions as Array<{ reason: string }>)[0].reason).to.equal('InvalidNamespace');
    await c.update(uuid, { name: 'Bad', namespace: 'fixed', chart: '5a8f7c6e-0000-4000-8000-0000000000cc' });
    st = status.get(uuid)!;
    expect((st.conditions as Array<{ reason: string }>)[0].reason).to.equal('UnknownChart');
    await c.update(uuid, { name: 'Bad', namespace: 'fixed' });
    expect(status.get(uuid)!.ready).to.equal(true);
  });

  it('removes everything setup made, then the status entry', async () => {
    const spec = { name: 'Doomed', namespace: 'edge' };
    const uuid = await newCluster(spec);
    await c.update(uuid, spec);
    await status.flush();
    const st = status.get(uuid)! as Record<string, any>;
    const accounts = [st.flux.uuid, st.krbkeys.uuid];
    await c.remove(uuid);
    await status.flush();
    expect(status.get(uuid)).to.equal(undefined);
    expect(await cdb.get(u.app.setupStatus, uuid)).to.equal(undefined);
    expect(await cdb.get(u.app.gitRepoConfig, uuid)).to.equal(undefined);
    expect(await cdb.get(u.app.sparkplugAddress, uuid)).to.equal(undefined);
    expect(t.core.objects.isMember(Local.repoGroup.cluster, uuid)).to.equal(false);
    for (const a of accounts) {
      expect(t.core.objects.exists(a), a).to.equal(false);
      expect(t.core.auth.principal(a)?.upn ?? null).to.equal(null);
      expect(t.core.auth.findGrants({ principal: a })).to.deep.equal([]);
      expect(await cdb.get(u.app.info, a)).to.equal(undefined);
    }
    // Removing again is harmless.
    await c.remove(uuid);
  });

  // The embedded Auth filters grant listings as ACS does (by grant UUID), so the
  // service's own credentials find none of the grants it made: teardown works by UUID.
  const pullGrants = (cluster: string) => t.core.auth.findGrants({ permission: u.perm.gitPull, target: cluster });

  it("records the Git Pull grant's UUID and removes the grant by it", async () => {
    const uuid = await newCluster({ name: 'Granted', namespace: 'edge' });
    await c.update(uuid, { name: 'Granted', namespace: 'edge' });
    const st = status.get(uuid)! as Record<string, any>;
    expect(pullGrants(uuid).map((g) => g.uuid)).to.deep.equal(st.flux.grants);
    expect(pullGrants(uuid)[0]).to.include({ principal: st.flux.uuid, plural: false });
    await c.remove(uuid);
    expect(pullGrants(uuid)).to.deep.equal([]);
  });

  it('tears down a cluster whose status has no grant UUIDs (older status) without leaving its grant', async () => {
    const uuid = await newCluster({ name: 'Adopted', namespace: 'edge' });
    await c.update(uuid, { name: 'Adopted', namespace: 'edge' });
    await status.update(uuid, { flux: { grants: null } });
    expect((status.get(uuid) as Record<string, any>).flux).to.not.have.property('grants');
    expect(pullGrants(uuid)).to.have.length(1);
    await c.remove(uuid);
    expect(pullGrants(uuid)).to.deep.equal([]);
  });

  it("deletes no grant a status names that is not this cluster's account's", async () => {
    const victim = await newCluster({ name: 'Victim', namespace: 'edge' });
    await c.update(victim, { name: 'Victim', namespace: 'edge' });
    const theirs = pullGrants(victim).map((g) => g.uuid);
    expect(theirs).to.have.length(1);
    const forged = await newCluster({ name: 'Forged', namespace: 'edge' });
    await c.update(forged, { name: 'Forged', namespace: 'edge' });
    await status.update(forged, { flux: { grants: theirs } });
    await c.remove(forged);
    expect(pullGrants(victim).map((g) => g.uuid)).to.deep.equal(theirs);
    expect(pullGrants(forged)).to.deep.equal([]);
  });

  it('resumes a removal that stopped half-way', async () => {
    const spec = { name: 'Half_Gone', namespace: 'edge' };
    const uuid = await newCluster(spec);
    await c.update(uuid, spec);
    await status.flush();
    const krb = (status.get(uuid) as Record<string, any>).krbkeys.uuid;
    // As if a previous run deleted the krbkeys account object and then died.
    await status.update(uuid, { phase: 'deleting' });
    t.core.auth.deleteIdentity(krb);
    t.core.objects.removeMember(Local.role.edgeKrbkeys, krb);
    t.core.store.delete(u.app.info, krb);
    t.core.store.deleteObject(krb);
    await c.remove(uuid);
    await status.flush();
    expect(await cdb.get(u.app.setupStatus, uuid)).to.equal(undefined);
    expect(t.core.objects.exists(krb)).to.equal(false);
  });
});
