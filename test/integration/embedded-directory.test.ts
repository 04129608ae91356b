import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthModel } from '../../src/embedded/auth/model.js';
import { ObjectRegistry } from '../../src/embedded/configdb/objects.js';
import { openDatabase, type Db } from '../../src/embedded/db.js';
import {
  createDirectoryApp,
  DIRECTORY_SERVICE,
  type Advertisement,
  type DirectoryDevice,
} from '../../src/embedded/directory/index.js';
import { listen, TokenStore, type Listening } from '../../src/embedded/http-kit.js';
import { silentLogger } from '../../src/lib/log.js';
import { newUuid } from '../../src/lib/uuid.js';

const REALM = 'TEST.REALM';
const CONFIGDB = 'af15f175-78a0-4e05-97c0-2a0bb82b9f3b';
const AUTH = 'cab2642a-f7d9-42e5-8845-8f35affe1fd4';
const CLUSTERS = '2706aa43-a826-441e-9cec-cd3d4ce623c2';
const GIT = '7adf4db0-2e7b-4a68-ab9d-376f4c5ce14b';
const CONFIGDB_DEVICE = '36861e8d-9152-40c4-8f08-f51c2d7e3c25';

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

describe('embedded Directory over HTTP', () => {
  const root = newUuid();
  const user = newUuid();
  const node = newUuid();
  const device = newUuid();
  const cmNode = newUuid();
  let dir: string;
  let file: string;
  let db: Db;
  let auth: AuthModel;
  let server: Listening;
  const adverts: Advertisement[] = [
    { service: CONFIGDB, url: 'http://127.0.0.1:1001', device: CONFIGDB_DEVICE },
    { service: AUTH, url: 'http://127.0.0.1:1002', device: null },
  ];
  const devices: DirectoryDevice[] = [
    { uuid: CONFIGDB_DEVICE, group_id: 'ACME-Service-Core', node_id: 'Config_DB' },
    { uuid: cmNode, group_id: 'ACME-Service-Core', node_id: 'Cluster_Manager', device_id: null },
    { uuid: node, group_id: 'ACME-Edge', node_id: 'Cell_1', online: true },
    { uuid: device, group_id: 'ACME-Edge', node_id: 'Cell_1', device_id: 'Robot' },
  ];

  async function start(): Promise<void> {
    db = openDatabase(file);
    auth = new AuthModel(db, new ObjectRegistry(db), { realm: REALM, roots: new Set([root]) });
    const app = createDirectoryApp({
      auth,
      tokens: new TokenStore(),
      log: silentLogger,
      db,
      adverts: () => adverts,
      devices: () => devices,
    });
    server = await listen(app.callback(), '127.0.0.1', 0);
  }

  async function stop(): Promise<void> {
    await server.close();
    auth.dispose();
    db.close();
  }

  async function call(
    method: string,
    path: string,
    o: { user?: string; body?: unknown; raw?: string; auth?: string } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (o.auth) headers.authorization = o.auth;
    else if (o.user) headers.authorization = `Basic ${Buffer.from(`${o.user}:${o.user}-pw`).toString('base64')}`;
    const body = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${server.url}${path}`, { method, headers, body });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text,
    };
  }
  const get = (path: string) => call('GET', path, { user: 'user' });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'embedded-directory-'));
    file = join(dir, 'core.db');
    await start();
    for (const [name, uuid] of [
      ['root', root],
      ['user', user],
    ] as const) {
      auth.ensurePrincipal(uuid);
      auth.setPassword(name, uuid, `${name}-pw`);
    }
  });

  after(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('needs authentication: 401 with WWW-Authenticate', async () => {
    for (const r of [
      await call('GET', '/v1/service'),
      await call('GET', '/v1/service', { auth: 'Basic dXNlcjp3cm9uZw==' }),
    ]) {
      expect(r.status).to.equal(401);
      expect(r.headers.get('www-authenticate')).to.equal('Basic realm="Factory+"');
    }
  });

  it('answers /ping with the Directory service UUID', async () => {
    const r = await get('/ping');
    expect(r.status).to.equal(200);
    expect(r.body).to.have.property('service', DIRECTORY_SERVICE);
  });

  it('locates the embedded services; an unknown service is []', async () => {
    const r = await get(`/v1/service/${CONFIGDB}`);
    expect(r.status).to.equal(200);
    expect(r.body).to.deep.equal([{ device: CONFIGDB_DEVICE, url: 'http://127.0.0.1:1001' }]);
    expect((await get(`/v1/service/${AUTH}`)).body).to.deep.equal([{ device: null, url: 'http://127.0.0.1:1002' }]);
    const unknown = await get(`/v1/service/${newUuid()}`);
    expect(unknown.status).to.equal(200);
    expect(unknown.body).to.deep.equal([]);
    expect((await get('/v1/service')).body).to.deep.equal([CONFIGDB, AUTH].sort());
  });

  it('answers 410 JSON for a malformed UUID', async () => {
    for (const path of ['/v1/service/not-a-uuid', '/v1/device/1234']) {
      const r = await get(path);
      expect(r.status).to.equal(410);
      expect(r.body).to.have.property('error', 'Gone');
    }
  });

  it('loads a dump as root; embedded services win over loaded adverts', async () => {
    const dump = {
      service: DIRECTORY_SERVICE,
      version: 1,
      advertisements: [
        { service: CLUSTERS, url: 'http://clusters.example.svc.cluster.local' },
        { service: GIT, url: 'https://git.example.com', device: '626df296-8156-4c67-8aed-aac70161aa8b' },
        { service: CONFIGDB, url: 'http://configdb.example.svc.cluster.local', device: CONFIGDB_DEVICE },
      ],
    };
    const r = await call('POST', '/load', { user: 'root', body: dump });
    expect(r.status).to.equal(204);
    expect((await get(`/v1/service/${CLUSTERS}`)).body).to.deep.equal([
      { device: null, url: 'http://clusters.example.svc.cluster.local' },
    ]);
    expect((await get(`/v1/service/${GIT}`)).body).to.deep.equal([
      { device: '626df296-8156-4c67-8aed-aac70161aa8b', url: 'https://git.example.com' },
    ]);
    expect((await get(`/v1/service/${CONFIGDB}`)).body).to.deep.equal([
      { device: CONFIGDB_DEVICE, url: 'http://127.0.0.1:1001' },
    ]);
    expect((await get('/v1/service')).body).to.deep.equal([CONFIGDB, AUTH, CLUSTERS, GIT].sort());
  });

  it('refuses dumps from others (403), invalid or empty dumps (422), bad JSON (400), changing nothing', async () => {
    const other = newUuid();
    const dump = { service: DIRECTORY_SERVICE, version: 1, advertisements: [{ service: other, url: 'http://x' }] };
    expect((await call('POST', '/load', { user: 'user', body: dump })).status).to.equal(403);
    expect((await call('POST', '/load', { user: 'root', body: { ...dump, advertisements: [] } })).status).to.equal(422);
    expect((await call('POST', '/load', { user: 'root', body: { ...dump, version: 2 } })).status).to.equal(422);
    expect(
      (
        await call('POST', '/load', {
          user: 'root',
          body: { ...dump, advertisements: [{ service: 'x', url: 'http://x' }] },
        })
      ).status,
    ).to.equal(422);
    expect((await call('POST', '/load', { user: 'root', raw: '{"service"' })).status).to.equal(400);
    expect((await get(`/v1/service/${other}`)).body).to.deep.equal([]);
  });

  it('keeps loaded adverts across a restart', async () => {
    await stop();
    await start();
    expect((await get(`/v1/service/${CLUSTERS}`)).body).to.deep.equal([
      { device: null, url: 'http://clusters.example.svc.cluster.local' },
    ]);
  });

  it('lists devices and describes one; unknown is 404', async () => {
    const list = await get('/v1/device');
    expect(list.body).to.deep.equal([CONFIGDB_DEVICE, cmNode, node, device].sort());
    const d = await get(`/v1/device/${device}`);
    expect(d.status).to.equal(200);
    expect(d.body).to.deep.include({
      uuid: device,
      group_id: 'ACME-Edge',
      node_id: 'Cell_1',
      device_id: 'Robot',
      online: false,
    });
    const n = await get(`/v1/device/${node}`);
    expect(n.body).to.deep.include({ uuid: node, device_id: null, online: true });
    const missing = await get(`/v1/device/${newUuid()}`);
    expect(missing.status).to.equal(404);
    expect(missing.body).to.have.property('error', 'Not Found');
  });

  it('walks Sparkplug addresses', async () => {
    expect((await get('/v1/address')).body).to.deep.equal({
      address: '',
      children: ['ACME-Edge', 'ACME-Service-Core'],
    });
    expect((await get('/v1/address/ACME-Service-Core')).body).to.deep.equal({
      address: 'ACME-Service-Core',
      children: ['Cluster_Manager', 'Config_DB'],
    });
    expect((await get('/v1/address/ACME-Service-Core/Config_DB')).body).to.deep.equal({
      address: 'ACME-Service-Core/Config_DB',
      uuid: CONFIGDB_DEVICE,
    });
    expect((await get('/v1/address/ACME-Edge/Cell_1')).body).to.deep.equal({
      address: 'ACME-Edge/Cell_1',
      uuid: node,
      children: ['Robot'],
    });
    expect((await get('/v1/address/ACME-Edge/Cell_1/Robot')).body).to.deep.equal({
      address: 'ACME-Edge/Cell_1/Robot',
      uuid: device,
    });
    for (const path of ['/v1/address/Nope', '/v1/address/ACME-Edge/Cell_2', '/v1/address/ACME-Edge/Cell_1/Arm']) {
      expect((await get(path)).status).to.equal(404);
    }
  });
});
