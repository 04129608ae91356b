import { expect } from 'chai';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config/index.js';
import { Known, Local } from '../../src/embedded/seed/local-uuids.js';
import { AuthClient } from '../../src/factoryplus/auth.js';
import { ConfigDbClient } from '../../src/factoryplus/configdb.js';
import { DirectoryClient } from '../../src/factoryplus/directory.js';
import { FplusHttp, ServiceError } from '../../src/factoryplus/http.js';
import { startTestCore, tempDir, type TestCore } from '../helpers/core.js';

const u = loadConfig({ env: {} }).uuids;

describe('Factory+ clients against the embedded core, as the Cluster Manager account', function () {
  this.timeout(30_000);
  let t: TestCore;
  let http: FplusHttp;
  let dir: DirectoryClient;
  let cdb: ConfigDbClient;
  let auth: AuthClient;

  before(async () => {
    t = await startTestCore({ dataDir: tempDir() });
    const cm = t.core.credentials.clusterManager;
    http = new FplusHttp(cm);
    dir = new DirectoryClient(http, t.core.endpoints.directory);
    cdb = new ConfigDbClient(http, () => dir.serviceUrl(u.service.configdb));
    auth = new AuthClient(http, () => dir.serviceUrl(u.service.auth));
  });
  after(async () => {
    await t.stop();
  });

  it('finds services through the Directory', async () => {
    expect(await dir.serviceUrl(u.service.configdb)).to.equal(`${t.core.endpoints.configdb}/`);
    expect(await dir.serviceUrl(u.service.git)).to.equal(`${t.core.endpoints.git}/`);
    await expectServiceError(dir.serviceUrl('5a8f7c6e-0000-4000-8000-000000000000'), 404);
  });

  it('reads templates and writes only what its grants allow', async () => {
    const sc = await cdb.get<{ repo: { helm: { uuid: string } } }>(u.app.serviceConfig, u.service.clusterManager);
    expect(sc?.repo.helm.uuid).to.equal(Local.repo.helmCharts);
    expect(await cdb.get(u.app.setupStatus, '5a8f7c6e-0000-4000-8000-000000000001')).to.equal(undefined);
    // No WriteConfig on the configuration app: 403 surfaces as a ServiceError.
    await expectServiceError(cdb.put(u.app.clusterConfig, Local.chart.cluster, { name: 'x', namespace: 'y' }), 403);
  });

  it('creates accounts, sets their identity and grants, and cleans them up', async () => {
    const account = await cdb.createObject(u.class.edgeAccount);
    await cdb.put(u.app.info, account, { name: 'Edge flux: Client_Test' });
    await cdb.addMember(Local.role.edgeFlux, account);
    expect(await cdb.isDirectMember(Local.role.edgeFlux, account)).to.equal(true);
    const cluster = await cdb.createObject(u.class.edgeCluster).catch(() => undefined);
    expect(cluster, 'the account may not create clusters').to.equal(undefined);
    await auth.setKerberos(account, 'op1flux/Client_Test@FACTORYPLUS.LOCAL');
    await auth.setKerberos(account, 'op1flux/Client_Test@FACTORYPLUS.LOCAL');
    expect(await auth.getKerberos(account)).to.equal('op1flux/Client_Test@FACTORYPLUS.LOCAL');
    const target = '5a8f7c6e-0000-4000-8000-0000000000aa';
    const g1 = await auth.addGrant({ principal: account, permission: u.perm.gitPull, target, plural: false });
    const g2 = await auth.addGrant({ principal: account, permission: u.perm.gitPull, target, plural: false });
    expect(g2).to.equal(g1);
    expect(await auth.getGrant(g1)).to.deep.include({
      principal: account,
      permission: u.perm.gitPull,
      target,
      plural: false,
    });
    await expectServiceError(
      auth.addGrant({ principal: account, permission: u.perm.gitPush, target, plural: false }),
      403,
    );

    expect(await auth.deleteGrant(g1)).to.equal(true);
    expect(await auth.deleteGrant(g1)).to.equal(false);
    expect(await auth.deleteKerberos(account)).to.equal(true);
    expect(await cdb.removeMember(Local.role.edgeFlux, account)).to.equal(true);
    await cdb.delete(u.app.info, account);
    expect(await cdb.deleteObject(account)).to.equal(true);
    expect(await cdb.registration(account)).to.equal(undefined);
  });

  it('reads ACLs of other principals for its own permissions only', async () => {
    const acl = await auth.acl({ uuid: Local.account.admin });
    expect(acl).to.deep.include({ permission: u.perm.manageClusters, target: Known.special.wildcard });
    expect(acl.every((e) => e.permission === u.perm.manageClusters || e.permission === u.perm.manageSecrets)).to.equal(
      true,
    );
    expect(await auth.acl({ upn: 'nobody@FACTORYPLUS.LOCAL' })).to.deep.equal([]);
  });

  it('fetches a new token when a service forgets the old one', async () => {
    await cdb.get(u.app.serviceConfig, u.service.clusterManager);
    const origin = new URL(t.core.endpoints.configdb).origin;
    const before = await http.token(origin);
    // A restart on the same ports forgets every issued token.
    await t.restart({ samePorts: true });
    expect(new URL(t.core.endpoints.configdb).origin).to.equal(origin);
    expect(await cdb.get(u.app.serviceConfig, u.service.clusterManager)).to.be.an('object');
    expect(await http.token(origin)).to.not.equal(before);
  });

  it('counts a service as failing while a request to it has gone unanswered too long, before the request times out', async () => {
    const held: ServerResponse[] = [];
    const server = createServer((req, res) => {
      if (req.url === '/token') {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ token: 'tok', expiry: Date.now() + 3_600_000 }));
        return;
      }
      held.push(res); // a hang
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const h = new FplusHttp({ username: 'x', password: 'y' }, { timeoutMs: 10_000, stallMs: 300 });
      const answered = h.request(origin, 'GET', '/v1/app');
      await new Promise((r) => setTimeout(r, 100));
      expect(h.originHealth(origin)?.ok, 'not yet stalled').to.not.equal(false);
      await new Promise((r) => setTimeout(r, 400));
      const stalled = h.originHealth(origin);
      expect(stalled?.ok).to.equal(false);
      expect(stalled?.error).to.match(/no answer for \d+ s/);
      held[0]!.setHeader('Content-Type', 'application/json');
      held[0]!.end('{}');
      await answered;
      expect(h.originHealth(origin)?.ok, 'answered again').to.equal(true);
    } finally {
      for (const res of held) res.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('reports an unreachable service as a ServiceError with status 0', async () => {
    const c = new ConfigDbClient(
      new FplusHttp({ username: 'x', password: 'y' }, { timeoutMs: 2000 }),
      async () => 'http://127.0.0.1:9/',
    );
    await expectServiceError(c.get(u.app.info, Local.chart.cluster), 0);
  });
});

async function expectServiceError(p: Promise<unknown>, status: number): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(ServiceError);
    expect((e as ServiceError).status).to.equal(status);
    return;
  }
  expect.fail(`expected a ServiceError ${status}`);
}
