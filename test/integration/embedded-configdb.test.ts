import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthModel } from '../../src/embedded/auth/model.js';
import { createConfigDbApp } from '../../src/embedded/configdb/index.js';
import { ObjectRegistry, RankClass } from '../../src/embedded/configdb/objects.js';
import { ConfigApp, ConfigStore } from '../../src/embedded/configdb/store.js';
import { openDatabase, type Db } from '../../src/embedded/db.js';
import { listen, TokenStore, type Listening } from '../../src/embedded/http-kit.js';
import { silentLogger } from '../../src/lib/log.js';
import { newUuid, WILDCARD } from '../../src/lib/uuid.js';
import { seededClusterConfigSchema } from '../helpers/seed.js';

/** The Edge cluster configuration schema the embedded core seeds. */
const EDGE_CONFIG_SCHEMA = JSON.stringify(seededClusterConfigSchema(), null, 2);

const PERM = {
  ReadConfig: '4a339562-cd57-408d-9d1a-6529a383ea4b',
  WriteConfig: '6c799ccb-d2ad-4715-a2a7-3c8728d6c0bf',
  CreateObject: 'ae09e2ba-50ef-11f0-ac03-1f9f5e6548be',
  CreateSpecificObject: 'e3491b9c-50f1-11f0-8e16-e75c8f93227b',
  WriteMembers: 'c2759f6e-50ef-11f0-8730-ef0ba0514a0e',
  WriteMemberships: 'e08d89bc-50ef-11f0-8352-83e3d3d35028',
  ReadMembers: 'd4fd61da-50ef-11f0-ad24-335234e4c8a2',
  ListObjects: '6b4d73ea-50f1-11f0-9333-132037a152a5',
  DeleteObject: '6957174b-7b08-45ca-ac5c-c03ab6928a6e',
};

const SERVICE = 'af15f175-78a0-4e05-97c0-2a0bb82b9f3b';
const APPLICATION = 'd319bd87-f42b-4b66-be4f-f82ff48b93f0';
const EDGE_CLUSTER = 'f24d354d-abc1-4e32-98e1-0667b3e40b61';
const EDGE_CONFIG = 'bdb13634-0b3d-4e38-a065-9d88c12ee78d';
const { Registration: REGISTRATION, Info: INFO, ConfigSchema: SCHEMA_APP } = ConfigApp;

const ADMIN = newUuid();
const USER = newUuid();
const ADMIN_AUTH = `Basic ${Buffer.from('admin:admin-secret').toString('base64')}`;
const USER_AUTH = `Basic ${Buffer.from('operator@TEST.LOCAL:operator-secret').toString('base64')}`;

interface Call {
  body?: unknown;
  raw?: string;
  type?: string;
  auth?: string | null;
  headers?: Record<string, string>;
}

describe('embedded Config Store over HTTP', function () {
  this.timeout(30000);

  let dir: string;
  let file: string;
  let db: Db;
  let objects: ObjectRegistry;
  let auth: AuthModel;
  let store: ConfigStore;
  let server: Listening;
  const events: Array<[string, string]> = [];

  // Objects created through the API in `before`.
  const PLAIN_APP = newUuid();
  const OTHER_APP = newUuid();
  const CLUSTER_A = newUuid();
  const CLUSTER_B = newUuid();
  let clusterC: string;

  async function call(method: string, path: string, opts: Call = {}): Promise<Response> {
    const headers: Record<string, string> = { ...opts.headers };
    const a = opts.auth === undefined ? ADMIN_AUTH : opts.auth;
    if (a) headers.authorization = a;
    let body: string | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined) headers['content-type'] = opts.type ?? 'application/json';
    return fetch(`${server.url}${path}`, { method, headers, body });
  }

  async function json(
    method: string,
    path: string,
    opts: Call = {},
  ): Promise<{ status: number; body: any; res: Response }> {
    const res = await call(method, path, opts);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, res };
  }

  async function expectStatus(method: string, path: string, status: number, opts: Call = {}): Promise<any> {
    const r = await json(method, path, opts);
    expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).to.equal(status);
    return r.body;
  }

  const entry = (app: string, obj: string) => `/v2/app/${app}/object/${obj}`;

  /** Everything stored: entries with ETags and registrations with relations. */
  function snapshot(): unknown {
    return {
      entries: db.prepare('SELECT app, object, json, etag FROM config_entry ORDER BY app, object').all(),
      objects: db.prepare('SELECT * FROM objects ORDER BY uuid').all(),
      membership: db.prepare('SELECT * FROM membership ORDER BY class, member').all(),
      subclass: db.prepare('SELECT * FROM subclass ORDER BY class, subclass').all(),
    };
  }

  function grant(permission: string, target: string): void {
    auth.addGrant({ principal: USER, permission, target, plural: false });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'configdb-'));
    file = join(dir, 'core.sqlite');
    db = openDatabase(file);
    objects = new ObjectRegistry(db);
    auth = new AuthModel(db, objects, { realm: 'TEST.LOCAL', roots: new Set([ADMIN]) });
    for (const [uuid, name, pw] of [
      [ADMIN, 'admin', 'admin-secret'],
      [USER, 'operator', 'operator-secret'],
    ] as const) {
      auth.ensurePrincipal(uuid);
      expect(auth.setIdentity(uuid, `${name}@TEST.LOCAL`)).to.equal('created');
      auth.setPassword(name, uuid, pw);
    }
    store = new ConfigStore(db, objects, { log: silentLogger });
    store.onChange((app, obj) => events.push([app, obj]));
    const app = createConfigDbApp({ db, objects, store, auth, tokens: new TokenStore(), log: silentLogger });
    server = await listen(app.callback(), '127.0.0.1', 0);

    // The Application class (rank 2) and the applications used here (rank 1).
    await expectStatus('POST', '/v2/object', 201, { body: { class: RankClass.r2, uuid: APPLICATION } });
    for (const a of [PLAIN_APP, OTHER_APP, EDGE_CONFIG, SCHEMA_APP, INFO]) {
      await expectStatus('POST', '/v2/object', 201, { body: { class: APPLICATION, uuid: a } });
    }
    await expectStatus('POST', '/v2/object', 201, { body: { class: RankClass.r1, uuid: EDGE_CLUSTER } });
    for (const c of [CLUSTER_A, CLUSTER_B]) {
      await expectStatus('POST', '/v2/object', 201, { body: { class: EDGE_CLUSTER, uuid: c } });
    }
    clusterC = (await expectStatus('POST', '/v2/object', 201, { body: { class: EDGE_CLUSTER } })).uuid;
  });

  after(async () => {
    await server?.close();
    if (db?.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    events.length = 0;
  });

  describe('service basics', () => {
    it('answers /ping without credentials with the ConfigDB service UUID and version', async () => {
      const body = await expectStatus('GET', '/ping', 200, { auth: null });
      expect(body.service).to.equal(SERVICE);
      expect(body.version).to.equal('2.0.0');
    });

    it('accepts Bearer tokens from POST /token', async () => {
      const { token } = await expectStatus('POST', '/token', 200);
      await expectStatus('GET', '/v2/object', 200, { auth: `Bearer ${token}` });
    });
  });

  describe('objects and classes', () => {
    it('creates objects with the registration as answer; owner defaults to the caller', async () => {
      const reg = await expectStatus('GET', `/v2/object/${CLUSTER_A}`, 200);
      expect(reg).to.deep.equal({ uuid: CLUSTER_A, class: EDGE_CLUSTER, rank: 0, owner: ADMIN, deleted: false });
      const app = await expectStatus('GET', `/v2/object/${PLAIN_APP}`, 200);
      expect(app.rank).to.equal(1);
      expect(clusterC).to.match(/^[0-9a-f-]{36}$/);
    });

    it('answers 200 when the given UUID already exists and 409 for another class', async () => {
      const again = await expectStatus('POST', '/v2/object', 200, { body: { class: EDGE_CLUSTER, uuid: CLUSTER_A } });
      expect(again.uuid).to.equal(CLUSTER_A);
      const before = snapshot();
      await expectStatus('POST', '/v2/object', 409, { body: { class: APPLICATION, uuid: CLUSTER_A } });
      expect(snapshot()).to.deep.equal(before);
    });

    it('refuses a missing class (422), a rank (422) and an unknown class (409)', async () => {
      const before = snapshot();
      await expectStatus('POST', '/v2/object', 422, { body: {} });
      await expectStatus('POST', '/v2/object', 422, { body: { class: EDGE_CLUSTER, rank: 0 } });
      await expectStatus('POST', '/v2/object', 422, { body: { class: 'nope' } });
      const e = await expectStatus('POST', '/v2/object', 409, { body: { class: newUuid() } });
      expect(e.message).to.match(/does not exist/);
      await expectStatus('POST', '/v2/object', 409, { body: { class: CLUSTER_A } });
      expect(snapshot()).to.deep.equal(before);
    });

    it('enforces the rank rules for members and subclasses', async () => {
      const group = (await expectStatus('POST', '/v2/object', 201, { body: { class: RankClass.r2 } })).uuid;
      const special = (await expectStatus('POST', '/v2/object', 201, { body: { class: RankClass.r1 } })).uuid;
      const sc = (await expectStatus('POST', '/v2/object', 201, { body: { class: special } })).uuid;

      // A rank-0 object cannot join a rank-2 class; a rank-1 class can.
      let before = snapshot();
      const e = await expectStatus('PUT', `/v2/class/${group}/direct/member/${CLUSTER_A}`, 409);
      expect(e.message).to.match(/rank/);
      expect(snapshot()).to.deep.equal(before);
      await expectStatus('PUT', `/v2/class/${group}/direct/member/${EDGE_CLUSTER}`, 204);
      await expectStatus('PUT', `/v2/class/${group}/direct/member/${EDGE_CLUSTER}`, 204);
      expect(await expectStatus('GET', `/v2/class/${group}/member`, 200)).to.deep.equal([EDGE_CLUSTER]);

      // Subclasses need equal ranks; members of a subclass are members of the class.
      before = snapshot();
      await expectStatus('PUT', `/v2/class/${EDGE_CLUSTER}/direct/subclass/${group}`, 409);
      expect(snapshot()).to.deep.equal(before);
      await expectStatus('PUT', `/v2/class/${EDGE_CLUSTER}/direct/subclass/${special}`, 204);
      expect(await expectStatus('GET', `/v2/class/${EDGE_CLUSTER}/subclass`, 200)).to.deep.equal([special]);
      await expectStatus('GET', `/v2/class/${EDGE_CLUSTER}/member/${sc}`, 204);
      await expectStatus('GET', `/v2/class/${EDGE_CLUSTER}/direct/member/${sc}`, 404);
      expect(await expectStatus('GET', `/v2/class/${EDGE_CLUSTER}/member`, 200)).to.include.members([
        CLUSTER_A,
        CLUSTER_B,
        clusterC,
        sc,
      ]);
      const info = await expectStatus('GET', `/v2/class/${EDGE_CLUSTER}`, 200);
      expect(info.members).to.include.members([CLUSTER_A, CLUSTER_B, clusterC]).and.not.include(sc);
      expect(info.subclasses).to.deep.equal([special]);

      // The primary class cannot be left; another class can.
      await expectStatus('DELETE', `/v2/class/${special}/direct/member/${sc}`, 409);
      await expectStatus('PUT', `/v2/class/${EDGE_CLUSTER}/direct/member/${sc}`, 204);
      await expectStatus('GET', `/v2/class/${EDGE_CLUSTER}/direct/member/${sc}`, 204);
      await expectStatus('DELETE', `/v2/class/${EDGE_CLUSTER}/direct/member/${sc}`, 204);
      await expectStatus('GET', `/v2/class/${EDGE_CLUSTER}/direct/member/${sc}`, 404);
      await expectStatus('DELETE', `/v2/class/${EDGE_CLUSTER}/direct/subclass/${special}`, 204);
      await expectStatus('GET', `/v2/class/${EDGE_CLUSTER}/member/${sc}`, 404);
      await expectStatus('PUT', `/v2/class/${newUuid()}/direct/member/${sc}`, 404);
      await expectStatus('GET', `/v2/class/${newUuid()}/member`, 404);
    });

    it('lists objects and lists members through the v1 compatibility paths', async () => {
      const all = await expectStatus('GET', '/v2/object', 200);
      expect(all).to.include.members([CLUSTER_A, PLAIN_APP, APPLICATION]);
      expect(await expectStatus('GET', '/v1/object', 200)).to.deep.equal(all);
      expect(await expectStatus('GET', '/v1/app', 200)).to.include.members([PLAIN_APP, OTHER_APP, EDGE_CONFIG]);
      expect(await expectStatus('GET', `/v1/object/${CLUSTER_A}`, 200)).to.have.property('class', EDGE_CLUSTER);
      expect(await expectStatus('GET', `/v1/class/${EDGE_CLUSTER}`, 200)).to.include(CLUSTER_B);
      await expectStatus('GET', `/v1/app/${PLAIN_APP}`, 403);
    });

    it('serves registrations as virtual entries and marks objects deleted by merge patch', async () => {
      const victim = (await expectStatus('POST', '/v2/object', 201, { body: { class: EDGE_CLUSTER } })).uuid;
      const r = await json('GET', entry(REGISTRATION, victim));
      expect(r.status).to.equal(200);
      expect(r.body).to.deep.equal({ uuid: victim, class: EDGE_CLUSTER, rank: 0, owner: ADMIN, deleted: false });
      const etag = r.res.headers.get('etag');
      expect(etag).to.match(/^"[0-9a-f-]{36}"$/);

      await expectStatus('PATCH', entry(REGISTRATION, victim), 204, {
        body: { deleted: true },
        type: 'application/merge-patch+json',
      });
      const after = await json('GET', entry(REGISTRATION, victim));
      expect(after.body.deleted).to.equal(true);
      expect(after.res.headers.get('etag')).to.not.equal(etag);
      expect(events).to.deep.equal([[REGISTRATION, victim]]);

      events.length = 0;
      const before = snapshot();
      await expectStatus('PATCH', entry(REGISTRATION, victim), 204, {
        body: { deleted: true },
        type: 'application/merge-patch+json',
      });
      await expectStatus('PATCH', entry(REGISTRATION, victim), 409, {
        body: { class: APPLICATION },
        type: 'application/merge-patch+json',
      });
      await expectStatus('PATCH', entry(REGISTRATION, victim), 422, {
        body: { deleted: 'yes' },
        type: 'application/merge-patch+json',
      });
      await expectStatus('DELETE', entry(REGISTRATION, victim), 405);
      expect(snapshot()).to.deep.equal(before);
      expect(events).to.deep.equal([]);
      expect(await expectStatus('GET', `/v2/app/${REGISTRATION}/object`, 200)).to.include(victim);
    });

    it('deletes objects with their entries, but not classes or applications still in use', async () => {
      const doomed = (await expectStatus('POST', '/v2/object', 201, { body: { class: EDGE_CLUSTER } })).uuid;
      await expectStatus('PUT', entry(OTHER_APP, doomed), 201, { body: { x: 1 } });
      events.length = 0;

      const before = snapshot();
      // ACS answers 409 with the bare list of what is in the way: members first, then subclasses, then entries.
      const used = await expectStatus('DELETE', `/v2/object/${EDGE_CLUSTER}`, 409);
      expect(used).to.be.an('array').that.includes(CLUSTER_A);
      const app = await expectStatus('DELETE', `/v2/object/${OTHER_APP}`, 409);
      expect(app).to.deep.equal([doomed]);
      await expectStatus('DELETE', `/v2/object/${RankClass.r1}`, 405);
      await expectStatus('DELETE', `/v2/object/${newUuid()}`, 404);
      expect(snapshot()).to.deep.equal(before);

      await expectStatus('DELETE', `/v2/object/${doomed}`, 204);
      await expectStatus('GET', `/v2/object/${doomed}`, 404);
      await expectStatus('GET', entry(OTHER_APP, doomed), 404);
      expect(events).to.deep.equal([[OTHER_APP, doomed]]);
    });
  });

  describe('config entries', () => {
    it('creates, reads, replaces and deletes entries with ETags', async () => {
      await expectStatus('GET', entry(PLAIN_APP, CLUSTER_A), 404);
      const put = await call('PUT', entry(PLAIN_APP, CLUSTER_A), { body: { a: 1, b: { c: 'x' } } });
      expect(put.status).to.equal(201);
      expect(await put.text()).to.equal('');

      const got = await json('GET', entry(PLAIN_APP, CLUSTER_A));
      expect(got.status).to.equal(200);
      expect(got.res.headers.get('content-type')).to.match(/^application\/json/);
      expect(got.body).to.deep.equal({ a: 1, b: { c: 'x' } });
      const etag = got.res.headers.get('etag')!;
      expect(etag).to.match(/^"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"$/);

      const head = await call('HEAD', entry(PLAIN_APP, CLUSTER_A));
      expect(head.status).to.equal(200);
      expect(head.headers.get('etag')).to.equal(etag);
      expect(await head.text()).to.equal('');

      const notModified = await call('GET', entry(PLAIN_APP, CLUSTER_A), { headers: { 'if-none-match': etag } });
      expect(notModified.status).to.equal(304);
      expect(notModified.headers.get('etag')).to.equal(etag);

      // The same JSON with another key order changes nothing.
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_A), 204, { body: { b: { c: 'x' }, a: 1 } });
      expect((await call('HEAD', entry(PLAIN_APP, CLUSTER_A))).headers.get('etag')).to.equal(etag);

      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_A), 204, { body: { a: 2 } });
      const etag2 = (await call('HEAD', entry(PLAIN_APP, CLUSTER_A))).headers.get('etag')!;
      expect(etag2).to.not.equal(etag);
      await expectStatus('GET', entry(PLAIN_APP, CLUSTER_A), 200, { headers: { 'if-none-match': etag } });

      const before = snapshot();
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_A), 412, { body: { a: 3 }, headers: { 'if-match': etag } });
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_A), 412, {
        body: { a: 3 },
        headers: { 'if-none-match': '*' },
      });
      await expectStatus('GET', entry(PLAIN_APP, CLUSTER_A), 412, { headers: { 'if-match': etag } });
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_A), 400, {
        body: { a: 3 },
        headers: { 'if-match': 'not-quoted' },
      });
      await expectStatus('DELETE', entry(PLAIN_APP, CLUSTER_A), 412, { headers: { 'if-match': etag } });
      expect(snapshot()).to.deep.equal(before);
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_A), 204, { body: { a: 3 }, headers: { 'if-match': etag2 } });

      // Any JSON value can be stored.
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_B), 201, { body: 'just a string' });
      expect(await expectStatus('GET', entry(PLAIN_APP, CLUSTER_B), 200)).to.equal('just a string');
      await expectStatus('PUT', entry(PLAIN_APP, clusterC), 201, { body: null });
      expect(await expectStatus('GET', entry(PLAIN_APP, clusterC), 200)).to.equal(null);

      expect(await expectStatus('GET', `/v2/app/${PLAIN_APP}/object`, 200)).to.have.members([
        CLUSTER_A,
        CLUSTER_B,
        clusterC,
      ]);
      expect(await expectStatus('GET', `/v2/app/${PLAIN_APP}/class/${EDGE_CLUSTER}`, 200)).to.have.members([
        CLUSTER_A,
        CLUSTER_B,
        clusterC,
      ]);
      expect(await expectStatus('GET', `/v2/app/${PLAIN_APP}/class/${APPLICATION}`, 200)).to.deep.equal([]);

      await expectStatus('DELETE', entry(PLAIN_APP, CLUSTER_B), 204);
      await expectStatus('DELETE', entry(PLAIN_APP, CLUSTER_B), 404);
      await expectStatus('DELETE', entry(PLAIN_APP, clusterC), 204);
      await expectStatus('GET', entry(PLAIN_APP, CLUSTER_B), 404);
      expect(await expectStatus('GET', `/v2/app/${PLAIN_APP}/object`, 200)).to.deep.equal([CLUSTER_A]);
    });

    it('applies merge patches and refuses other media types', async () => {
      await expectStatus('PUT', entry(OTHER_APP, CLUSTER_A), 201, {
        body: { keep: 1, drop: true, nested: { a: 1, b: 2 } },
      });
      const before = snapshot();
      await expectStatus('PATCH', entry(OTHER_APP, CLUSTER_A), 415, { body: { keep: 2 } });
      expect(snapshot()).to.deep.equal(before);

      const mp = 'application/merge-patch+json';
      await expectStatus('PATCH', entry(OTHER_APP, CLUSTER_A), 204, {
        body: { drop: null, nested: { a: null, c: [1] }, added: 'x' },
        type: mp,
      });
      expect(await expectStatus('GET', entry(OTHER_APP, CLUSTER_A), 200)).to.deep.equal({
        keep: 1,
        nested: { b: 2, c: [1] },
        added: 'x',
      });

      // A missing entry counts as null: the patch creates it (still 204).
      await expectStatus('PATCH', entry(OTHER_APP, CLUSTER_B), 204, {
        body: { fresh: true, gone: null },
        type: `${mp}; charset=utf-8`,
      });
      expect(await expectStatus('GET', entry(OTHER_APP, CLUSTER_B), 200)).to.deep.equal({ fresh: true });

      // An entry that is not an object is not patched.
      await expectStatus('PUT', entry(OTHER_APP, clusterC), 201, { body: [1, 2] });
      const before2 = snapshot();
      await expectStatus('PATCH', entry(OTHER_APP, clusterC), 409, { body: { a: 1 }, type: mp });
      await expectStatus('PATCH', entry(OTHER_APP, CLUSTER_B), 400, { raw: '{"fresh": ', type: mp });
      expect(snapshot()).to.deep.equal(before2);

      // PATCH through the v1 path works the same way.
      await expectStatus('PATCH', `/v1/app/${OTHER_APP}/object/${CLUSTER_B}`, 204, { body: { v1: 1 }, type: mp });
      expect(await expectStatus('GET', `/v1/app/${OTHER_APP}/object/${CLUSTER_B}`, 200)).to.deep.equal({
        fresh: true,
        v1: 1,
      });
    });

    it('fires one change event per real change and none for no-op or refused writes', async () => {
      const mp = 'application/merge-patch+json';
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_B), 201, { body: { n: 1 } });
      expect(events).to.deep.equal([[PLAIN_APP, CLUSTER_B]]);
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_B), 204, { body: { n: 1 } });
      await expectStatus('PATCH', entry(PLAIN_APP, CLUSTER_B), 204, { body: { n: 1, absent: null }, type: mp });
      await expectStatus('PATCH', entry(PLAIN_APP, CLUSTER_B), 415, { body: { n: 2 } });
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_B), 412, {
        body: { n: 2 },
        headers: { 'if-none-match': '*' },
      });
      expect(events).to.have.length(1);
      await expectStatus('PATCH', entry(PLAIN_APP, CLUSTER_B), 204, { body: { n: 2 }, type: mp });
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_B), 204, { body: { n: 3 } });
      await expectStatus('DELETE', entry(PLAIN_APP, CLUSTER_B), 204);
      await expectStatus('DELETE', entry(PLAIN_APP, CLUSTER_B), 404);
      expect(events).to.deep.equal([
        [PLAIN_APP, CLUSTER_B],
        [PLAIN_APP, CLUSTER_B],
        [PLAIN_APP, CLUSTER_B],
        [PLAIN_APP, CLUSTER_B],
      ]);
    });

    it('serves the v1 config and config-schema paths', async () => {
      await expectStatus('PUT', `/v1/app/${OTHER_APP}/config`, 201, { body: { self: true } });
      expect(await expectStatus('GET', entry(OTHER_APP, OTHER_APP), 200)).to.deep.equal({ self: true });
      expect(await expectStatus('GET', `/v1/app/${OTHER_APP}/object`, 200)).to.include(OTHER_APP);
      await expectStatus('GET', `/v1/app/${OTHER_APP}/config-schema`, 404);
    });
  });

  describe('application schemas', () => {
    const schemaText = () => EDGE_CONFIG_SCHEMA;

    it('validates entries against the Edge cluster configuration schema (422 with the messages)', async () => {
      await expectStatus('PUT', entry(SCHEMA_APP, EDGE_CONFIG), 201, { raw: schemaText() });
      expect(await expectStatus('GET', `/v1/app/${EDGE_CONFIG}/config-schema`, 200)).to.deep.equal(
        JSON.parse(schemaText()),
      );
      expect(events).to.deep.equal([[SCHEMA_APP, EDGE_CONFIG]]);
      events.length = 0;

      const before = snapshot();
      const missing = await expectStatus('PUT', entry(EDGE_CONFIG, CLUSTER_A), 422, { body: { name: 'Cluster A' } });
      expect(missing.message).to.include("must have required property 'namespace'");
      const extra = await expectStatus('PUT', entry(EDGE_CONFIG, CLUSTER_A), 422, {
        body: { name: 'A', namespace: 'ns', colour: 'red' },
      });
      expect(extra.message).to.include('must NOT have additional properties').and.include('colour');
      const format = await expectStatus('PUT', entry(EDGE_CONFIG, CLUSTER_A), 422, {
        body: { name: 'A', namespace: 'ns', chart: 'not-a-uuid' },
      });
      expect(format.message).to.include('must match format "uuid"');
      expect(format.errors).to.be.an('array').that.is.not.empty;
      expect(snapshot()).to.deep.equal(before);
      expect(events).to.deep.equal([]);

      const good = { name: 'Cluster A', namespace: 'edge-a', chart: newUuid(), bare: false, values: { x: 1 } };
      await expectStatus('PUT', entry(EDGE_CONFIG, CLUSTER_A), 201, { body: good });
      await expectStatus('PATCH', entry(EDGE_CONFIG, CLUSTER_A), 422, {
        body: { namespace: null },
        type: 'application/merge-patch+json',
      });
      await expectStatus('PATCH', entry(EDGE_CONFIG, CLUSTER_A), 204, {
        body: { values: { y: 2 } },
        type: 'application/merge-patch+json',
      });
      expect((await expectStatus('GET', entry(EDGE_CONFIG, CLUSTER_A), 200)).values).to.deep.equal({ x: 1, y: 2 });
      await expectStatus('PUT', entry(EDGE_CONFIG, CLUSTER_B), 201, {
        body: { name: 'Cluster B', namespace: 'edge-b' },
      });
    });

    it('refuses schemas that do not compile (422) or that existing entries fail (409)', async () => {
      const before = snapshot();
      const bad = await expectStatus('PUT', entry(SCHEMA_APP, EDGE_CONFIG), 422, { body: { type: 'no-such-type' } });
      expect(bad.message).to.match(/invalid JSON schema/);
      const strict = { ...JSON.parse(schemaText()), required: ['name', 'namespace', 'chart'] };
      const conflict = await expectStatus('PUT', entry(SCHEMA_APP, EDGE_CONFIG), 409, { body: strict });
      expect(conflict.objects).to.deep.equal([CLUSTER_B]);
      expect(snapshot()).to.deep.equal(before);
    });

    it('recompiles when the schema entry changes and stops validating when it is deleted', async () => {
      const looser = { ...JSON.parse(schemaText()), required: ['name'] };
      await expectStatus('PUT', entry(EDGE_CONFIG, clusterC), 422, { body: { name: 'C' } });
      await expectStatus('PUT', entry(SCHEMA_APP, EDGE_CONFIG), 204, { body: looser });
      await expectStatus('PUT', entry(EDGE_CONFIG, clusterC), 201, { body: { name: 'C' } });
      await expectStatus('PUT', entry(EDGE_CONFIG, clusterC), 422, { body: { name: 'C', unknown: 1 } });

      await expectStatus('DELETE', entry(SCHEMA_APP, EDGE_CONFIG), 204);
      await expectStatus('PUT', entry(EDGE_CONFIG, clusterC), 204, { body: { anything: 'goes' } });
      await expectStatus('PUT', entry(SCHEMA_APP, EDGE_CONFIG), 409, { raw: schemaText() });
      await expectStatus('PUT', entry(EDGE_CONFIG, clusterC), 204, { body: { name: 'C', namespace: 'edge-c' } });
      await expectStatus('PUT', entry(SCHEMA_APP, EDGE_CONFIG), 201, { raw: schemaText() });
      await expectStatus('PUT', entry(EDGE_CONFIG, clusterC), 422, { body: { name: 'C' } });
    });
  });

  describe('search', () => {
    it('finds entries by property values and returns selected properties', async () => {
      const q = (s: string) => `/v1/app/${EDGE_CONFIG}/search?${s}`;
      expect(await expectStatus('GET', q('namespace=%22edge-b%22'), 200)).to.deep.equal([CLUSTER_B]);
      expect(await expectStatus('GET', q('chart=undefined'), 200)).to.have.members([CLUSTER_B, clusterC]);
      expect(await expectStatus('GET', q('values.y=2'), 200)).to.deep.equal([CLUSTER_A]);
      expect(await expectStatus('GET', q('name=%22nobody%22'), 200)).to.deep.equal([]);
      expect(await expectStatus('GET', q(''), 200)).to.have.members([CLUSTER_A, CLUSTER_B, clusterC]);
      expect(await expectStatus('GET', q('chart=undefined&@ns=namespace&@n=name&@v=values.x'), 200)).to.deep.equal({
        [CLUSTER_B]: { ns: 'edge-b', n: 'Cluster B' },
        [clusterC]: { ns: 'edge-c', n: 'C' },
      });
      expect(
        await expectStatus('GET', `/v1/app/${EDGE_CONFIG}/class/${EDGE_CLUSTER}/search?namespace=%22edge-a%22`, 200),
      ).to.deep.equal([CLUSTER_A]);
      expect(await expectStatus('GET', `/v1/app/${EDGE_CONFIG}/class/${APPLICATION}/search`, 200)).to.deep.equal([]);
    });

    it('answers 400 for a query that does not parse', async () => {
      for (const bad of ['namespace=edge-b', '@uuid=name', 'a-b=1', 'x=%5B%5D']) {
        const e = await expectStatus('GET', `/v1/app/${EDGE_CONFIG}/search?${bad}`, 400);
        expect(e.message).to.match(/bad search query/);
      }
      await expectStatus('GET', `/v1/app/${newUuid()}/search?a=1`, 404);
    });
  });

  describe('authorisation', () => {
    it('refuses a principal without grants and admits it once granted (also by wildcard)', async () => {
      const as = { auth: USER_AUTH };
      const before = snapshot();
      await expectStatus('GET', entry(PLAIN_APP, CLUSTER_A), 403, as);
      await expectStatus('GET', `/v2/app/${PLAIN_APP}/object`, 403, as);
      await expectStatus('GET', `/v1/app/${PLAIN_APP}/search`, 403, as);
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_A), 403, { ...as, body: { a: 99 } });
      await expectStatus('DELETE', entry(PLAIN_APP, CLUSTER_A), 403, as);
      await expectStatus('GET', '/v2/object', 403, as);
      await expectStatus('POST', '/v2/object', 403, { ...as, body: { class: EDGE_CLUSTER } });
      await expectStatus('POST', '/load', 403, { ...as, body: { service: SERVICE, version: 2 } });
      expect(snapshot()).to.deep.equal(before);

      grant(PERM.ReadConfig, PLAIN_APP);
      expect(await expectStatus('GET', entry(PLAIN_APP, CLUSTER_A), 200, as)).to.deep.equal({ a: 3 });
      await expectStatus('GET', entry(OTHER_APP, CLUSTER_A), 403, as);
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_A), 403, { ...as, body: { a: 99 } });

      // PATCH needs both read and write.
      grant(PERM.WriteConfig, WILDCARD);
      await expectStatus('PUT', entry(OTHER_APP, CLUSTER_A), 204, { ...as, body: { by: 'operator' } });
      await expectStatus('PATCH', entry(OTHER_APP, CLUSTER_A), 403, {
        ...as,
        body: { more: 1 },
        type: 'application/merge-patch+json',
      });
      await expectStatus('PATCH', entry(PLAIN_APP, CLUSTER_A), 204, {
        ...as,
        body: { more: 1 },
        type: 'application/merge-patch+json',
      });
      grant(PERM.ReadConfig, WILDCARD);
      expect(await expectStatus('GET', entry(OTHER_APP, CLUSTER_A), 200, as)).to.deep.equal({ by: 'operator' });
    });

    it('checks object creation and membership permissions on class and member', async () => {
      const as = { auth: USER_AUTH };
      grant(PERM.CreateObject, EDGE_CLUSTER);
      const mine = await expectStatus('POST', '/v2/object', 201, { ...as, body: { class: EDGE_CLUSTER } });
      expect(mine.owner).to.equal(USER);
      const specific = newUuid();
      await expectStatus('POST', '/v2/object', 403, { ...as, body: { class: EDGE_CLUSTER, uuid: specific } });
      await expectStatus('POST', '/v2/object', 403, { ...as, body: { class: APPLICATION } });
      grant(PERM.CreateSpecificObject, WILDCARD);
      await expectStatus('POST', '/v2/object', 201, { ...as, body: { class: EDGE_CLUSTER, uuid: specific } });

      const group = (await expectStatus('POST', '/v2/object', 201, { body: { class: RankClass.r1 } })).uuid;
      const before = snapshot();
      await expectStatus('PUT', `/v2/class/${group}/direct/member/${mine.uuid}`, 403, as);
      grant(PERM.WriteMembers, group);
      await expectStatus('PUT', `/v2/class/${group}/direct/member/${mine.uuid}`, 403, as);
      expect(snapshot()).to.deep.equal(before);
      grant(PERM.WriteMemberships, mine.uuid);
      await expectStatus('PUT', `/v2/class/${group}/direct/member/${mine.uuid}`, 204, as);
      await expectStatus('PUT', `/v2/class/${group}/direct/member/${specific}`, 403, as);
      await expectStatus('GET', `/v2/class/${group}/member`, 403, as);
      grant(PERM.ReadMembers, WILDCARD);
      expect(await expectStatus('GET', `/v2/class/${group}/member`, 200, as)).to.deep.equal([mine.uuid]);
      await expectStatus('DELETE', `/v2/object/${mine.uuid}`, 403, as);
      grant(PERM.DeleteObject, mine.uuid);
      await expectStatus('DELETE', `/v2/object/${group}`, 403, as);
      await expectStatus('DELETE', `/v2/object/${mine.uuid}`, 204, as);
      expect(await expectStatus('GET', `/v2/class/${group}/member`, 200, as)).to.deep.equal([]);
    });
  });

  describe('bad requests change nothing', () => {
    it('answers 410 for malformed UUIDs, with a JSON body', async () => {
      const before = snapshot();
      for (const [method, path] of [
        ['GET', `/v2/app/not-a-uuid/object/${CLUSTER_A}`],
        ['PUT', `/v2/app/${PLAIN_APP}/object/${CLUSTER_A.toUpperCase()}`],
        ['DELETE', `/v2/object/1234`],
        ['GET', `/v2/class/xyz/member`],
        ['PUT', `/v1/app/zzz/config`],
      ] as const) {
        const r = await json(method, path, method === 'PUT' ? { body: { a: 1 } } : {});
        expect(r.status, `${method} ${path}`).to.equal(410);
        expect(r.body.error).to.be.a('string');
        expect(r.body.message).to.match(/not a valid UUID/);
      }
      expect(snapshot()).to.deep.equal(before);
      expect(events).to.deep.equal([]);
    });

    it('answers 404 for unknown applications and objects', async () => {
      const before = snapshot();
      const unknownApp = newUuid();
      const e = await expectStatus('PUT', entry(unknownApp, CLUSTER_A), 404, { body: { a: 1 } });
      expect(e.message).to.match(/application/);
      await expectStatus('PUT', entry(PLAIN_APP, newUuid()), 404, { body: { a: 1 } });
      await expectStatus('PATCH', entry(unknownApp, CLUSTER_A), 404, {
        body: { a: 1 },
        type: 'application/merge-patch+json',
      });
      await expectStatus('GET', entry(unknownApp, CLUSTER_A), 404);
      await expectStatus('GET', `/v2/app/${unknownApp}/object`, 404);
      await expectStatus('GET', '/v2/nothing-here', 404);
      expect(snapshot()).to.deep.equal(before);
      expect(events).to.deep.equal([]);
    });

    it('answers 400 for invalid JSON, 415 for other media types, 405 for other methods', async () => {
      const before = snapshot();
      const e = await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_A), 400, { raw: '{"a": 1,}' });
      expect(e.message).to.match(/not valid JSON/);
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_A), 400, { raw: '' });
      await expectStatus('PUT', entry(PLAIN_APP, CLUSTER_A), 415, { raw: 'a=1', type: 'text/plain' });
      await expectStatus('POST', '/v2/object', 415, { raw: '{}', type: 'text/plain' });
      const m = await json('POST', entry(PLAIN_APP, CLUSTER_A), { body: {} });
      expect(m.status).to.equal(405);
      expect(m.res.headers.get('allow')).to.include('PUT');
      expect(snapshot()).to.deep.equal(before);
      expect(events).to.deep.equal([]);
    });

    it('answers 401 without or with wrong credentials', async () => {
      const before = snapshot();
      for (const a of [null, `Basic ${Buffer.from('admin:wrong').toString('base64')}`, 'Bearer not-a-token']) {
        const r = await json('PUT', entry(PLAIN_APP, CLUSTER_A), { body: { a: 100 }, auth: a });
        expect(r.status).to.equal(401);
        expect(r.body.message).to.be.a('string');
      }
      await expectStatus('GET', entry(PLAIN_APP, CLUSTER_A), 401, { auth: null });
      expect(snapshot()).to.deep.equal(before);
      expect(events).to.deep.equal([]);
    });
  });

  describe('POST /load', () => {
    const GROUP = newUuid();
    const DEV_1 = newUuid();
    const DEV_2 = newUuid();
    const DEV_APP = newUuid();

    it('loads a version 2 dump in one go, merging names into General information', async () => {
      await expectStatus('PUT', entry(INFO, CLUSTER_A), 201, { body: { name: 'old name', location: 'Bay 3' } });
      const dump = {
        service: SERVICE,
        version: 2,
        objects: {
          // Listed before its class is defined: the loader orders them.
          [GROUP]: { [DEV_1]: { name: 'Device one' }, [DEV_2]: { name: 'Device two', memberOf: [EDGE_CLUSTER] } },
          [RankClass.r1]: { [GROUP]: { name: 'Test devices', iri: 'test/Devices' } },
          [APPLICATION]: { [DEV_APP]: { name: 'Device settings' } },
          [EDGE_CLUSTER]: { [CLUSTER_A]: { name: 'Cluster A' } },
        },
        configs: {
          [DEV_APP]: { [DEV_1]: { speed: 1 }, [DEV_2]: { speed: 2 } },
          [INFO]: { [DEV_1]: { location: 'Lab' } },
        },
      };
      await expectStatus('POST', '/load', 204, { body: dump });
      expect(await expectStatus('GET', `/v2/object/${GROUP}`, 200)).to.include({
        class: RankClass.r1,
        rank: 1,
        owner: ADMIN,
      });
      expect(await expectStatus('GET', `/v2/object/${DEV_1}`, 200)).to.include({ class: GROUP, rank: 0 });
      expect(await expectStatus('GET', `/v2/class/${EDGE_CLUSTER}/direct/member/${DEV_2}`, 204));
      expect(await expectStatus('GET', entry(DEV_APP, DEV_2), 200)).to.deep.equal({ speed: 2 });
      expect(await expectStatus('GET', entry(INFO, DEV_1), 200)).to.deep.equal({ location: 'Lab', name: 'Device one' });
      expect(await expectStatus('GET', entry(INFO, GROUP), 200)).to.deep.equal({ name: 'Test devices' });
      expect(await expectStatus('GET', entry(INFO, CLUSTER_A), 200)).to.deep.equal({
        name: 'Cluster A',
        location: 'Bay 3',
      });
      expect(events).to.deep.include.members([
        [DEV_APP, DEV_1],
        [DEV_APP, DEV_2],
        [INFO, DEV_1],
        [INFO, CLUSTER_A],
      ]);

      // Loading the same dump again changes nothing.
      events.length = 0;
      const before = snapshot();
      await expectStatus('POST', '/load', 204, { body: dump });
      expect(snapshot()).to.deep.equal(before);
      expect(events).to.deep.equal([]);
    });

    it('refuses invalid dumps (422) and rolls back a dump that fails part way', async () => {
      const before = snapshot();
      await expectStatus('POST', '/load', 422, { body: { service: SERVICE, version: 1, classes: [], objects: {} } });
      await expectStatus('POST', '/load', 422, { body: [] });
      await expectStatus('POST', '/load', 422, {
        body: { service: SERVICE, version: 2, objects: { [GROUP]: { 'not-a-uuid': {} } } },
      });
      await expectStatus('POST', '/load', 422, {
        body: { service: SERVICE, version: 2, configs: { [REGISTRATION]: {} } },
      });
      await expectStatus('POST', '/load', 422, {
        body: { service: SERVICE, version: 2, objects: { [GROUP]: { [newUuid()]: { colour: 'red' } } } },
      });

      const fresh = newUuid();
      const failing = {
        service: SERVICE,
        version: 2,
        objects: { [EDGE_CLUSTER]: { [fresh]: { name: 'Would be new' } } },
        configs: { [EDGE_CONFIG]: { [fresh]: { name: 'no namespace' } } },
      };
      const e = await expectStatus('POST', '/load', 422, { body: failing });
      expect(e.message).to.include('namespace');
      const conflict = { service: SERVICE, version: 2, objects: { [newUuid()]: { [fresh]: {} } } };
      await expectStatus('POST', '/load', 409, { body: conflict });
      expect(snapshot()).to.deep.equal(before);
      expect(events).to.deep.equal([]);
      await expectStatus('GET', `/v2/object/${fresh}`, 404);
    });

    it('loads a core applications dump in the Factory+ v2 format (test/fixtures/configdb)', async () => {
      const dumps = JSON.parse(
        readFileSync(new URL('../fixtures/configdb/core-apps.dump.json', import.meta.url), 'utf8'),
      ) as unknown[];
      for (const d of dumps) await expectStatus('POST', '/load', 204, { body: d });
      expect(await expectStatus('GET', `/v2/object/${REGISTRATION}`, 200)).to.include({ class: APPLICATION, rank: 1 });
      expect(await expectStatus('GET', entry(INFO, REGISTRATION), 200)).to.deep.equal({ name: 'Object registration' });
      await expectStatus('GET', `/v2/class/75b030ca-2463-11f1-8bc8-372c7503501b/direct/member/${APPLICATION}`, 204);
    });
  });

  describe('persistence', () => {
    it('keeps every entry and registration when the SQLite file is reopened', async () => {
      const before = snapshot();
      const apps = [PLAIN_APP, OTHER_APP, EDGE_CONFIG, SCHEMA_APP, INFO];
      const viaStore = apps.map((a) => store.entries(a));
      expect(viaStore.flat().length).to.be.greaterThan(10);
      await server.close();
      db.close();

      db = openDatabase(file);
      objects = new ObjectRegistry(db);
      auth = new AuthModel(db, objects, { realm: 'TEST.LOCAL', roots: new Set([ADMIN]) });
      store = new ConfigStore(db, objects);
      server = await listen(
        createConfigDbApp({ db, objects, store, auth, tokens: new TokenStore(), log: silentLogger }).callback(),
        '127.0.0.1',
        0,
      );

      expect(snapshot()).to.deep.equal(before);
      expect(apps.map((a) => store.entries(a))).to.deep.equal(viaStore);
      expect(await expectStatus('GET', entry(PLAIN_APP, CLUSTER_A), 200, { auth: USER_AUTH })).to.deep.equal({
        a: 3,
        more: 1,
      });
      // The reloaded schema still applies.
      await expectStatus('PUT', entry(EDGE_CONFIG, CLUSTER_B), 422, { body: { name: 'B' } });
    });
  });
});
