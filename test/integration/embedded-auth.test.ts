import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthApp } from '../../src/embedded/auth/index.js';
import { AuthModel, MINE, PRINCIPAL_CLASS, SELF } from '../../src/embedded/auth/model.js';
import { ObjectRegistry, RankClass, UNOWNED } from '../../src/embedded/configdb/objects.js';
import { openDatabase, type Db } from '../../src/embedded/db.js';
import { listen, TokenStore, type Listening } from '../../src/embedded/http-kit.js';
import { silentLogger } from '../../src/lib/log.js';
import { newUuid, WILDCARD } from '../../src/lib/uuid.js';

const REALM = 'TEST.REALM';
const AUTH_SERVICE = 'cab2642a-f7d9-42e5-8845-8f35affe1fd4';
const ReadACL = 'ba566181-0e8a-405b-b16e-3fb89130fbee';
const ManageACL = '3a41f5ce-fc08-4669-9762-ec9e71061168';
const ManageKrb = '327c4cc8-9c46-4e1e-bb6b-257ace37b0f6';

interface Core {
  db: Db;
  objects: ObjectRegistry;
  auth: AuthModel;
  server: Listening;
}

interface Opts {
  user?: string;
  password?: string;
  token?: string;
  body?: unknown;
  raw?: string;
  type?: string;
}

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

/** Every fixture UUID, fresh per run. */
const U = {
  root: newUuid(),
  alice: newUuid(),
  bob: newUuid(),
  carol: newUuid(),
  dave: newUuid(),
  erin: newUuid(),
  frank: newUuid(),
  role: newUuid(),
  superRole: newUuid(),
  permission: newUuid(),
  group: newUuid(),
  p1: newUuid(),
  p2: newUuid(),
  p3: newUuid(),
  p4: newUuid(),
  p5: newUuid(),
  p6: newUuid(),
  p7: newUuid(),
  clusters: newUuid(),
  c1: newUuid(),
  c2: newUuid(),
  t1: newUuid(),
  t2: newUuid(),
  t3: newUuid(),
  owned: newUuid(),
};
const USERS = ['root', 'alice', 'bob', 'carol', 'dave', 'erin', 'frank'] as const;

function openCore(file: string): Omit<Core, 'server'> {
  const db = openDatabase(file);
  const objects = new ObjectRegistry(db);
  const auth = new AuthModel(db, objects, { realm: REALM, roots: new Set([U.root]) });
  return { db, objects, auth };
}

async function start(file: string): Promise<Core> {
  const core = openCore(file);
  const app = createAuthApp({ auth: core.auth, objects: core.objects, tokens: new TokenStore(), log: silentLogger });
  const server = await listen(app.callback(), '127.0.0.1', 0);
  return { ...core, server };
}

/** The class graph of reference §5.1 in miniature, plus users with passwords. */
function seed(core: Omit<Core, 'server'>): void {
  const { objects, auth } = core;
  const owner = UNOWNED;
  const r1 = (uuid: string) => objects.create({ class: RankClass.r1, uuid, owner });
  r1(PRINCIPAL_CLASS);
  r1(U.role);
  r1(U.superRole);
  objects.addSubclass(U.superRole, U.role);
  r1(U.permission);
  r1(U.group);
  objects.addSubclass(U.permission, U.group);
  r1(U.clusters);
  for (const name of USERS) {
    objects.create({ class: PRINCIPAL_CLASS, uuid: U[name], owner });
    auth.ensurePrincipal(U[name]);
    auth.setPassword(name, U[name], `${name}-pw`);
  }
  auth.setIdentity(U.root, `root@${REALM}`);
  auth.setIdentity(U.alice, `alice@${REALM}`);
  objects.addMember(U.role, U.alice);
  objects.create({ class: U.group, uuid: U.p1, owner });
  objects.create({ class: U.group, uuid: U.p2, owner });
  for (const p of [U.p3, U.p4, U.p5, U.p6, U.p7]) objects.create({ class: U.permission, uuid: p, owner });
  objects.create({ class: U.clusters, uuid: U.c1, owner });
  objects.create({ class: U.clusters, uuid: U.c2, owner });
  objects.create({ class: U.clusters, uuid: U.owned, owner: U.alice });

  const grant = (principal: string, permission: string, target: string, plural = false) =>
    auth.addGrant({ principal, permission, target, plural });
  grant(U.alice, U.p1, U.t1); // direct
  grant(U.alice, U.p3, WILDCARD); // wildcard target
  grant(U.superRole, U.p4, U.t2); // via a class alice is a member of (through a subclass)
  grant(U.alice, U.group, U.t3); // permission group
  grant(U.alice, U.p5, U.clusters, true); // plural target
  grant(U.alice, U.p6, SELF);
  grant(U.alice, U.p7, MINE);
  grant(U.bob, U.p2, U.t1);
  grant(U.carol, ReadACL, U.p1); // may read p1 entries only
  grant(U.dave, ReadACL, WILDCARD); // may read everything
  grant(U.erin, ReadACL, U.group, true); // may read the group's members
  grant(U.frank, ManageACL, U.p1); // may manage p1 grants only
  grant(U.frank, ManageKrb, U.bob);
}

describe('embedded Auth over HTTP', () => {
  let dir: string;
  let file: string;
  let core: Core;

  async function call(method: string, path: string, o: Opts = {}): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    else if (o.user)
      headers.authorization = `Basic ${Buffer.from(`${o.user}:${o.password ?? `${o.user.split('@')[0]}-pw`}`).toString('base64')}`;
    let body: string | undefined;
    if (o.raw !== undefined) body = o.raw;
    else if (o.body !== undefined) body = JSON.stringify(o.body);
    if (body !== undefined) headers['content-type'] = o.type ?? 'application/json';
    const res = await fetch(`${core.server.url}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if (res.headers.get('content-type')?.includes('json') && text) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed };
  }
  const as = (user: string) => ({
    get: (path: string) => call('GET', path, { user }),
    post: (path: string, body?: unknown) => call('POST', path, { user, body }),
    put: (path: string, body?: unknown) => call('PUT', path, { user, body }),
    del: (path: string) => call('DELETE', path, { user }),
  });
  const set = (acl: unknown) =>
    new Set((acl as Array<{ permission: string; target: string }>).map((e) => `${e.permission} ${e.target}`));
  const grantCount = () => core.auth.findGrants({}).length;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'embedded-auth-'));
    file = join(dir, 'core.db');
    core = await start(file);
    seed(core);
  });

  after(async () => {
    await core.server.close();
    core.auth.dispose();
    core.db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('authentication', () => {
    it('answers /ping with the Auth service UUID and version 2.0.0 to Basic auth', async () => {
      const r = await as('alice').get('/ping');
      expect(r.status).to.equal(200);
      expect(r.body).to.include({ service: AUTH_SERVICE, version: '2.0.0' });
    });

    it('accepts a user name qualified with the realm', async () => {
      const r = await call('GET', '/v2/whoami/uuid', { user: `alice@${REALM}`, password: 'alice-pw' });
      expect(r.status).to.equal(200);
      expect(r.body).to.equal(U.alice);
    });

    it('issues a token that works as Bearer', async () => {
      const t = await as('alice').post('/token');
      expect(t.status).to.equal(200);
      const { token, expiry } = t.body as { token: string; expiry: number };
      expect(token).to.have.length(88);
      expect(expiry).to.be.greaterThan(Date.now());
      const r = await call('GET', '/v2/whoami', { token });
      expect(r.status).to.equal(200);
      expect(r.body).to.deep.equal({ kerberos: `alice@${REALM}`, uuid: U.alice });
    });

    it('refuses a wrong password, an unknown token and no credentials with 401 and WWW-Authenticate', async () => {
      for (const r of [
        await call('GET', '/v2/whoami', { user: 'alice', password: 'wrong' }),
        await call('GET', '/v2/whoami', { token: 'bm90LWEtdG9rZW4=' }),
        await call('GET', '/v2/whoami'),
        await call('POST', '/token'),
      ]) {
        expect(r.status).to.equal(401);
        expect(r.headers.get('www-authenticate')).to.equal('Basic realm="Factory+"');
        expect(r.body).to.have.property('error', 'Unauthorized');
      }
    });
  });

  describe('ACL reads', () => {
    it('expands direct, wildcard, class, group, plural, Self and Mine grants', async () => {
      const r = await as('root').get(`/v2/acl/${U.alice}`);
      expect(r.status).to.equal(200);
      expect(set(r.body)).to.deep.equal(
        new Set([
          `${U.p1} ${U.t1}`,
          `${U.p3} ${WILDCARD}`,
          `${U.p4} ${U.t2}`,
          `${U.p1} ${U.t3}`,
          `${U.p2} ${U.t3}`,
          `${U.p5} ${U.c1}`,
          `${U.p5} ${U.c2}`,
          `${U.p5} ${U.owned}`,
          `${U.p6} ${U.alice}`,
          `${U.p7} ${U.owned}`,
        ]),
      );
    });

    it('does not list what was not granted', async () => {
      const acl = set((await as('root').get(`/v2/acl/${U.alice}`)).body);
      expect(acl.has(`${U.p1} ${U.t2}`)).to.equal(false);
      expect(acl.has(`${U.p2} ${U.t1}`)).to.equal(false);
      // the group itself is not a permission; only its members are listed
      expect([...acl].some((e) => e.startsWith(U.group))).to.equal(false);
      const bob = await as('root').get(`/v2/acl/${U.bob}`);
      expect(bob.body).to.deep.equal([{ permission: U.p2, target: U.t1 }]);
    });

    it('checks like check_acl: exact target, wildcard, class membership, plural', () => {
      const alice = core.auth.principal(U.alice)!;
      expect(core.auth.check(alice, U.p1, U.t1)).to.equal(true);
      expect(core.auth.check(alice, U.p1, U.t2)).to.equal(false);
      expect(core.auth.check(alice, U.p3, newUuid())).to.equal(true);
      expect(core.auth.check(alice, U.p3, newUuid(), false)).to.equal(false);
      expect(core.auth.check(alice, U.p4, U.t2)).to.equal(true);
      expect(core.auth.check(alice, U.p5, U.c2)).to.equal(true);
      expect(core.auth.check(core.auth.principal(U.bob)!, U.p4, U.t2)).to.equal(false);
      expect(core.auth.check(core.auth.principal(U.root)!, newUuid(), newUuid())).to.equal(true);
    });

    it('follows class-graph changes at once', async () => {
      const before = set((await as('root').get(`/v2/acl/${U.bob}`)).body);
      expect(before.has(`${U.p4} ${U.t2}`)).to.equal(false);
      core.objects.addMember(U.role, U.bob);
      const during = set((await as('root').get(`/v2/acl/${U.bob}`)).body);
      expect(during.has(`${U.p4} ${U.t2}`)).to.equal(true);
      core.objects.removeMember(U.role, U.bob);
      const after = set((await as('root').get(`/v2/acl/${U.bob}`)).body);
      expect(after.has(`${U.p4} ${U.t2}`)).to.equal(false);
    });

    it('looks up by URL-encoded Kerberos name; unknown names give []', async () => {
      const r = await as('root').get(`/v2/acl/kerberos/${encodeURIComponent(`alice@${REALM}`)}`);
      expect(r.status).to.equal(200);
      expect(set(r.body).has(`${U.p1} ${U.t1}`)).to.equal(true);
      const unknown = await as('root').get(`/v2/acl/kerberos/${encodeURIComponent(`nobody@${REALM}`)}`);
      expect(unknown.status).to.equal(200);
      expect(unknown.body).to.deep.equal([]);
    });

    it('answers 410 for a malformed UPN or UUID and 404 for an unknown principal', async () => {
      expect((await as('root').get('/v2/acl/kerberos/no%20realm')).status).to.equal(410);
      const bad = await as('root').get('/v2/acl/not-a-uuid');
      expect(bad.status).to.equal(410);
      expect(bad.body).to.have.property('error', 'Gone');
      expect((await as('root').get(`/v2/acl/${newUuid()}`)).status).to.equal(404);
      // a class is not a principal
      expect((await as('root').get(`/v2/acl/${U.role}`)).status).to.equal(404);
    });

    it('filters entries to the permissions the caller may read', async () => {
      const carol = await as('carol').get(`/v2/acl/${U.alice}`);
      expect(carol.status).to.equal(200);
      expect(set(carol.body)).to.deep.equal(new Set([`${U.p1} ${U.t1}`, `${U.p1} ${U.t3}`]));
      const erin = await as('erin').get(`/v2/acl/${U.alice}`);
      expect(set(erin.body)).to.deep.equal(new Set([`${U.p1} ${U.t1}`, `${U.p1} ${U.t3}`, `${U.p2} ${U.t3}`]));
      const dave = await as('dave').get(`/v2/acl/${U.alice}`);
      expect((dave.body as unknown[]).length).to.equal(10);
    });

    it('refuses callers with no Read ACL at all', async () => {
      const r = await as('bob').get(`/v2/acl/${U.alice}`);
      expect(r.status).to.equal(403);
      expect(r.body).to.have.property('error', 'Forbidden');
      expect((await as('bob').get(`/v2/acl/kerberos/${encodeURIComponent(`alice@${REALM}`)}`)).status).to.equal(403);
    });

    it('serves the legacy /authz/acl read', async () => {
      const byUuid = await as('carol').get(`/authz/acl?principal=${U.alice}&permission=${U.p1}&by-uuid=true`);
      expect(byUuid.status).to.equal(200);
      expect(set(byUuid.body)).to.deep.equal(new Set([`${U.p1} ${U.t1}`, `${U.p1} ${U.t3}`]));
      const byName = await as('carol').get(
        `/authz/acl?principal=${encodeURIComponent(`alice@${REALM}`)}&permission=${U.p1}&by-uuid=false`,
      );
      expect(set(byName.body)).to.deep.equal(new Set([`${U.p1} ${U.t1}`, `${U.p1} ${U.t3}`]));
      expect((await as('carol').get(`/authz/acl?principal=${U.alice}&by-uuid=maybe`)).status).to.equal(400);
      expect((await as('carol').get(`/authz/acl?principal=${U.alice}&permission=nope&by-uuid=true`)).status).to.equal(
        410,
      );
    });
  });

  describe('grants', () => {
    const spec = () => ({ principal: U.bob, permission: U.p1, target: U.c1, plural: false });

    it('adds a grant once: 201, then 200 with the same UUID', async () => {
      const first = await as('frank').post('/v2/grant', spec());
      expect(first.status).to.equal(201);
      const { uuid } = first.body as { uuid: string };
      const again = await as('frank').post('/v2/grant', spec());
      expect(again.status).to.equal(200);
      expect(again.body).to.deep.equal({ uuid });
      const got = await as('frank').get(`/v2/grant/${uuid}`);
      expect(got.body).to.deep.equal({ uuid, ...spec() });
      expect(core.auth.check(core.auth.principal(U.bob)!, U.p1, U.c1)).to.equal(true);
    });

    it('refuses invalid bodies with 422 and grants on permissions without Manage ACL with 403', async () => {
      const n = grantCount();
      const { plural: _omit, ...noPlural } = spec();
      expect((await as('frank').post('/v2/grant', noPlural)).status).to.equal(422);
      expect((await as('frank').post('/v2/grant', { ...spec(), target: 'x' })).status).to.equal(422);
      expect((await as('frank').post('/v2/grant', [spec()])).status).to.equal(422);
      expect((await as('frank').post('/v2/grant', { ...spec(), permission: U.p2 })).status).to.equal(403);
      expect((await as('bob').post('/v2/grant', spec())).status).to.equal(403);
      expect(grantCount()).to.equal(n);
    });

    it('refuses invalid JSON with 400 and another content type with 415, changing nothing', async () => {
      const n = grantCount();
      const bad = await call('POST', '/v2/grant', { user: 'root', raw: '{"principal": ' });
      expect(bad.status).to.equal(400);
      expect(bad.body).to.have.property('error', 'Bad Request');
      const wrongType = await call('POST', '/v2/grant', {
        user: 'root',
        raw: JSON.stringify(spec()),
        type: 'text/plain',
      });
      expect(wrongType.status).to.equal(415);
      expect(wrongType.body).to.have.property('error', 'Unsupported Media Type');
      const badUuid = await call('PUT', '/v2/grant/not-a-uuid', { user: 'root', body: spec() });
      expect(badUuid.status).to.equal(410);
      expect(grantCount()).to.equal(n);
    });

    it('lists and finds grants as ACS Auth does: each grant UUID tested against the Manage ACL targets; root sees all', async () => {
      // frank manages permission p1, not any grant UUID: ACS answers him an empty list, and so does this.
      expect(core.auth.findGrants({ permission: U.p1 }).length).to.be.greaterThan(0);
      expect((await as('frank').get('/v2/grant')).body).to.deep.equal([]);
      const rootList = (await as('root').get('/v2/grant')).body as string[];
      expect(rootList).to.have.length(grantCount());
      const found = await as('frank').post('/v2/grant/find', { principal: U.bob });
      expect(found.status).to.equal(200);
      expect(found.body).to.deep.equal([]);
      expect((await as('root').post('/v2/grant/find', { principal: U.bob })).body).to.deep.equal(
        core.auth.findGrants({ principal: U.bob }).map((g) => g.uuid),
      );
      // ...while the grant itself, found by its UUID, is his to read and delete (permission p1).
      const p1 = core.auth.findGrants({ permission: U.p1 })[0]!;
      expect((await as('frank').get(`/v2/grant/${p1.uuid}`)).status).to.equal(200);
      expect((await as('root').post('/v2/grant/find', { plural: 'yes' })).status).to.equal(422);
      expect((await as('bob').get('/v2/grant')).status).to.equal(403);
      expect((await as('bob').post('/v2/grant/find', {})).status).to.equal(403);
    });

    it('replaces and deletes a grant with Manage ACL on its permission', async () => {
      const { uuid } = (
        await as('root').post('/v2/grant', { principal: U.carol, permission: U.p1, target: U.t2, plural: false })
      ).body as { uuid: string };
      // frank manages p1 but not p2: moving the grant to p2 is refused
      const toP2 = await as('frank').put(`/v2/grant/${uuid}`, {
        principal: U.carol,
        permission: U.p2,
        target: U.t2,
        plural: false,
      });
      expect(toP2.status).to.equal(403);
      const put = await as('frank').put(`/v2/grant/${uuid}`, {
        principal: U.carol,
        permission: U.p1,
        target: U.t3,
        plural: false,
      });
      expect(put.status).to.equal(204);
      expect(core.auth.getGrant(uuid)).to.include({ target: U.t3 });
      expect((await as('bob').del(`/v2/grant/${uuid}`)).status).to.equal(403);
      expect((await as('frank').del(`/v2/grant/${uuid}`)).status).to.equal(204);
      expect((await as('frank').del(`/v2/grant/${uuid}`)).status).to.equal(404);
      expect((await as('frank').get(`/v2/grant/${uuid}`)).status).to.equal(404);
      expect((await as('root').put(`/v2/grant/${newUuid()}`, spec())).status).to.equal(404);
    });

    it('answers 405 with Allow for a wrong method', async () => {
      const r = await call('PATCH', '/v2/grant', { user: 'root', body: {} });
      expect(r.status).to.equal(405);
      expect(r.headers.get('allow')).to.include('POST');
      expect(r.body).to.have.property('error', 'Method Not Allowed');
    });
  });

  describe('identities', () => {
    it('sets a Kerberos identity: 204, 204 again when identical', async () => {
      const upn = `op1flux/Building_1@${REALM}`;
      expect((await as('frank').put(`/v2/principal/${U.bob}/kerberos`, upn)).status).to.equal(204);
      expect((await as('frank').put(`/v2/principal/${U.bob}/kerberos`, upn)).status).to.equal(204);
      const got = await as('frank').get(`/v2/principal/${U.bob}/kerberos`);
      expect(got.status).to.equal(200);
      expect(got.headers.get('content-type')).to.match(/application\/json/);
      expect(got.body).to.equal(upn);
      expect((await as('frank').get(`/v2/principal/${U.bob}`)).body).to.deep.equal({ kerberos: upn, uuid: U.bob });
      const resolved = await as('frank').get(`/v2/identity/kerberos/${encodeURIComponent(upn)}`);
      expect(resolved.status).to.equal(200);
      expect(resolved.body).to.equal(U.bob);
    });

    it('refuses conflicts with 409, unknown kinds with 404, others without Manage Kerberos with 403', async () => {
      const upn = core.auth.principal(U.bob)!.upn;
      expect((await as('frank').put(`/v2/principal/${U.bob}/kerberos`, `other@${REALM}`)).status).to.equal(409);
      expect((await as('root').put(`/v2/principal/${U.carol}/kerberos`, `alice@${REALM}`)).status).to.equal(409);
      expect((await as('root').put(`/v2/principal/${U.bob}/telepathy`, 'x')).status).to.equal(404);
      expect((await as('frank').put(`/v2/principal/${U.carol}/kerberos`, `carol@${REALM}`)).status).to.equal(403);
      expect((await as('root').put(`/v2/principal/${U.carol}/kerberos`, { name: 'carol' })).status).to.equal(422);
      expect((await as('root').put('/v2/principal/NOT-A-UUID/kerberos', `carol@${REALM}`)).status).to.equal(410);
      expect(core.auth.principal(U.bob)!.upn).to.equal(upn);
      expect(core.auth.principal(U.carol)!.upn).to.equal(null);
    });

    it('deletes an identity: 204, then 404', async () => {
      expect((await as('root').put(`/v2/principal/${U.erin}/kerberos`, `erin@${REALM}`)).status).to.equal(204);
      expect((await as('root').del(`/v2/principal/${U.erin}/kerberos`)).status).to.equal(204);
      expect((await as('root').del(`/v2/principal/${U.erin}/kerberos`)).status).to.equal(404);
      expect((await as('root').get(`/v2/principal/${U.erin}/kerberos`)).status).to.equal(404);
    });

    it('lists identity kinds and the names of a kind the caller may read, as ACS does', async () => {
      expect((await as('carol').get('/v2/identity')).body).to.deep.equal(['kerberos']);
      const names = await as('root').get('/v2/identity/kerberos');
      expect(names.status).to.equal(200);
      expect(names.body).to.be.an('array').that.includes(`alice@${REALM}`).and.includes(`root@${REALM}`);
      expect(names.body).to.deep.equal(
        core.auth
          .principalsWithIdentity()
          .map((u) => core.auth.principal(u)!.upn)
          .sort(),
      );
      // frank may manage bob's identity only: he sees bob's name, if bob has one, and nobody else's.
      const franks = (await as('frank').get('/v2/identity/kerberos')).body as string[];
      expect(franks.every((n) => n === core.auth.principal(U.bob)!.upn)).to.equal(true);
      expect((await as('carol').get('/v2/identity/kerberos')).status).to.equal(403);
      expect((await as('root').get('/v2/identity/telepathy')).status).to.equal(404);
    });

    it('answers the principal groups holding a principal (classes under Principal), as ACS does', async () => {
      const team = newUuid();
      core.objects.create({ class: RankClass.r1, uuid: team, owner: UNOWNED });
      core.objects.addSubclass(PRINCIPAL_CLASS, team);
      core.objects.addSubclass(team, U.role);
      try {
        const got = await as('root').get(`/v2/principal/${U.alice}/groups`);
        expect(got.status).to.equal(200);
        // alice is in role, role under team under Principal; superRole holds role but is no principal group.
        expect([...(got.body as string[])].sort()).to.deep.equal([U.role, team].sort());
        expect((await as('root').get(`/v2/principal/${U.bob}/groups`)).body).to.deep.equal([]);
        expect((await as('root').get(`/v2/principal/${U.c1}/groups`)).status).to.equal(410);
        expect((await as('frank').get(`/v2/principal/${U.bob}/groups`)).status).to.equal(403);
        // "groups" is not taken for an identity kind.
        expect((await as('root').get(`/v2/principal/${U.alice}/kerberos`)).body).to.equal(`alice@${REALM}`);
      } finally {
        core.objects.removeSubclass(team, U.role);
        core.objects.removeSubclass(PRINCIPAL_CLASS, team);
      }
    });

    it('tells any caller who it is', async () => {
      expect((await as('carol').get('/v2/whoami')).body).to.deep.equal({ uuid: U.carol });
      expect((await as('carol').get('/v2/whoami/uuid')).body).to.equal(U.carol);
      expect((await as('carol').get(`/v2/principal/${U.alice}`)).status).to.equal(403);
    });
  });

  describe('dump loading', () => {
    const svc = newUuid();
    const perm = newUuid();
    const dump = () => ({
      service: AUTH_SERVICE,
      version: 2,
      identities: { [svc]: { kerberos: 'sv1test' } },
      grants: { [svc]: { [ManageKrb]: null, [perm]: { [U.clusters]: true, [U.t1]: false } } },
    });

    it('is for root only', async () => {
      const n = grantCount();
      expect((await as('dave').post('/load', dump())).status).to.equal(403);
      expect(grantCount()).to.equal(n);
    });

    it('loads identities (bare names get the realm) and grants (null = wildcard)', async () => {
      const r = await as('root').post('/load', dump());
      expect(r.status).to.equal(204);
      expect(core.auth.principal(svc)!.upn).to.equal(`sv1test@${REALM}`);
      expect(core.auth.findGrants({ principal: svc, permission: ManageKrb })).to.have.length(1);
      expect(core.auth.findGrants({ principal: svc, permission: ManageKrb })[0]).to.include({
        target: WILDCARD,
        plural: false,
      });
      expect(core.auth.findGrants({ principal: svc, permission: perm, plural: true })[0]).to.include({
        target: U.clusters,
      });
      // loading again changes nothing
      const n = grantCount();
      expect((await as('root').post('/load', dump())).status).to.equal(204);
      expect(grantCount()).to.equal(n);
    });

    it('refuses invalid dumps with 422 and conflicting ones with 409, loading nothing', async () => {
      const n = grantCount();
      expect((await as('root').post('/load', { ...dump(), version: 1 })).status).to.equal(422);
      expect(
        (await as('root').post('/load', { ...dump(), grants: { [svc]: { [perm]: { [U.t2]: 'sometimes' } } } })).status,
      ).to.equal(422);
      const other = newUuid();
      const conflict = await as('root').post('/load', {
        service: AUTH_SERVICE,
        version: 2,
        identities: { [other]: { kerberos: `sv1test@${REALM}` } },
        grants: { [other]: { [perm]: null } },
      });
      expect(conflict.status).to.equal(409);
      expect(grantCount()).to.equal(n);
      expect(core.auth.principal(other)).to.equal(undefined);
    });
  });

  describe('persistence', () => {
    it('keeps grants, identities and passwords across reopening the database', async () => {
      const aclBefore = core.auth.acl(U.alice);
      const grantsBefore = core.auth.findGrants({});
      const bobUpn = core.auth.principal(U.bob)!.upn;
      await core.server.close();
      core.auth.dispose();
      core.db.close();

      core = await start(file);
      expect(core.auth.findGrants({})).to.deep.equal(grantsBefore);
      expect(core.auth.principal(U.bob)!.upn).to.equal(bobUpn);
      const r = await as('root').get(`/v2/acl/${U.alice}`);
      expect(r.status).to.equal(200);
      expect(set(r.body)).to.deep.equal(set(aclBefore));
      expect((await as('alice').get('/v2/whoami/uuid')).body).to.equal(U.alice);
    });
  });
});
