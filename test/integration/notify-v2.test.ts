import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { ServiceClient } from '@amrc-factoryplus/service-client';
import { loadConfig } from '../../src/config/index.js';
import { ConfigDbPerm } from '../../src/embedded/configdb/routes.js';
import { AuthPerm } from '../../src/embedded/auth/routes.js';
import { NotifyV2Server } from '../../src/embedded/notify/v2-server.js';
import { silentLogger } from '../../src/lib/log.js';
import { newUuid } from '../../src/lib/uuid.js';
import { adminAuth, startTestCore, type TestCore } from '../helpers/core.js';
import { NotifyClient, openRaw, serviceToken, type Update } from '../helpers/notify-v2.js';

const u = loadConfig({ env: {}, overrides: { profile: 'seed' } }).uuids;
const INFO = u.app.info;

describe('notify/v2 on the embedded Config Store and Auth', function () {
  this.timeout(20000);
  let t: TestCore;
  let admin: string;
  const reader = { uuid: newUuid(), username: 'notify-reader', password: 'notify-reader-secret' };

  const http = async (method: string, base: string, path: string, body?: unknown) => {
    const res = await fetch(new URL(path, base), {
      method,
      headers: { Authorization: admin, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, etag: res.headers.get('etag'), text: await res.text() };
  };
  const cdb = (method: string, path: string, body?: unknown) => http(method, t.core.endpoints.configdb, path, body);
  const newObject = async () => {
    const r = await cdb('POST', '/v2/object', { class: u.class.edgeCluster });
    expect(r.status).to.equal(201);
    return (JSON.parse(r.text) as { uuid: string }).uuid;
  };
  const client = async (base: string, who: { username: string; password: string }) =>
    NotifyClient.connect(base, await serviceToken(base, who.username, who.password));
  const adminCreds = () => t.core.credentials.admin;

  before(async () => {
    t = await startTestCore();
    admin = adminAuth(t.core);
    t.core.auth.ensurePrincipal(reader.uuid);
    t.core.auth.setPassword(reader.username, reader.uuid, reader.password);
  });
  after(async () => t?.stop());

  describe('authentication exchange', () => {
    for (const svc of ['configdb', 'auth'] as const) {
      it(`${svc}: a token from its /token is answered 200, an unknown one 401 and the socket closed`, async () => {
        const base = t.core.endpoints[svc];
        const good = await openRaw(
          base,
          `Bearer ${await serviceToken(base, adminCreds().username, adminCreds().password)}`,
        );
        expect(good.answer).to.equal('200');
        good.ws.close();
        const bad = await openRaw(base, 'Bearer AAAAbogusTOKEN');
        expect(bad.answer).to.equal('401');
        await bad.closed;
      });
    }

    it('anything but "Bearer <token>" is answered 400 and the socket closed', async () => {
      const base = t.core.endpoints.configdb;
      const token = await serviceToken(base, adminCreds().username, adminCreds().password);
      for (const first of [
        `Bearer ${token}\n`,
        `bearer ${token}`,
        `Bearer  ${token}`,
        `Basic ${token}`,
        Buffer.from(`Bearer ${token}`),
      ]) {
        const r = await openRaw(base, first);
        expect(r.answer, String(first)).to.equal('400');
        await r.closed;
      }
    });

    it('a token of another service is not accepted', async () => {
      const authToken = await serviceToken(t.core.endpoints.auth, adminCreds().username, adminCreds().password);
      const r = await openRaw(t.core.endpoints.configdb, `Bearer ${authToken}`);
      expect(r.answer).to.equal('401');
    });
  });

  describe('Config Store', () => {
    it('WATCH of an entry: 201 with the current answer, 200 on every change, nothing for an unchanged write', async () => {
      const obj = await newObject();
      const c = await client(t.core.endpoints.configdb, adminCreds());
      try {
        const id = c.watch(`v2/app/${INFO}/object/${obj}`);
        expect(await c.nth(id, 1)).to.deep.equal({ uuid: id, status: 201, response: { status: 404 } });
        const put = await cdb('PUT', `/v2/app/${INFO}/object/${obj}`, { name: 'first' });
        expect(put.status).to.equal(201);
        const second = await c.nth(id, 2);
        const get = await cdb('GET', `/v2/app/${INFO}/object/${obj}`);
        // The ETag of the HTTP answer, without its quotes (as the Factory+ ConfigDB puts it in updates).
        expect(get.etag).to.match(/^"[0-9a-f-]{36}"$/);
        expect(second).to.deep.equal({
          uuid: id,
          status: 200,
          response: { status: 200, headers: { etag: get.etag!.slice(1, -1) }, body: { name: 'first' } },
        });
        await cdb('PUT', `/v2/app/${INFO}/object/${obj}`, { name: 'first' });
        expect(await c.settle(id)).to.have.length(2);
        await cdb('DELETE', `/v2/app/${INFO}/object/${obj}`);
        expect((await c.nth(id, 3)).response).to.deep.equal({ status: 404 });
        // The v1 path and HEAD (no body) are offered too.
        const v1 = c.watch(`v1/app/${INFO}/object/${obj}`, 'HEAD');
        expect((await c.nth(v1, 1)).status).to.equal(201);
        await cdb('PUT', `/v2/app/${INFO}/object/${obj}`, { name: 'again' });
        const head = await c.nth(v1, 2);
        expect(head.response!.status).to.equal(200);
        expect(head.response).to.not.have.property('body');
      } finally {
        c.end();
      }
    });

    it('SEARCH of an application: a full answer, then child updates; a filter reports 412 for children leaving it', async () => {
      const [a, b] = [await newObject(), await newObject()];
      await cdb('PUT', `/v2/app/${INFO}/object/${a}`, { name: 'a', colour: 'red' });
      const c = await client(t.core.endpoints.configdb, adminCreds());
      try {
        const all = c.search(`v2/app/${INFO}/object/`);
        const red = c.search(`v2/app/${INFO}/object/`, { colour: 'red' });
        const first = await c.nth(all, 1);
        expect(first.status).to.equal(201);
        expect(first.response).to.deep.equal({ status: 204 });
        expect(first.children![a]!.body).to.deep.equal({ name: 'a', colour: 'red' });
        expect(Object.keys(first.children!)).to.include.members([a, ...Object.keys((await c.nth(red, 1)).children!)]);
        expect(Object.keys((await c.nth(red, 1)).children!)).to.include(a);

        await cdb('PUT', `/v2/app/${INFO}/object/${b}`, { name: 'b', colour: 'red' });
        expect(await c.nth(all, 2)).to.include({ status: 200, child: b });
        expect((await c.nth(all, 2)).response!.status).to.equal(201);
        expect((await c.nth(red, 2)).child).to.equal(b);

        await cdb('PUT', `/v2/app/${INFO}/object/${a}`, { name: 'a', colour: 'blue' });
        expect((await c.nth(all, 3)).response).to.deep.include({ status: 200, body: { name: 'a', colour: 'blue' } });
        expect(await c.nth(red, 3)).to.deep.equal({ uuid: red, status: 200, child: a, response: { status: 412 } });

        await cdb('DELETE', `/v2/app/${INFO}/object/${b}`);
        expect(await c.nth(all, 4)).to.deep.equal({ uuid: all, status: 200, child: b, response: { status: 404 } });
        expect(await c.nth(red, 4)).to.deep.equal({ uuid: red, status: 200, child: b, response: { status: 404 } });
      } finally {
        c.end();
      }
    });

    it('without Read on the application the answer is 403 inside the subscription, and a grant opens it', async () => {
      const obj = await newObject();
      await cdb('PUT', `/v2/app/${INFO}/object/${obj}`, { name: 'secret' });
      const c = await client(t.core.endpoints.configdb, reader);
      try {
        const w = c.watch(`v2/app/${INFO}/object/${obj}`);
        const s = c.search(`v2/app/${INFO}/object/`);
        expect(await c.nth(w, 1)).to.deep.equal({ uuid: w, status: 201, response: { status: 403 } });
        expect(await c.nth(s, 1)).to.deep.equal({ uuid: s, status: 201, response: { status: 403 } });
        // A change the reader may not see sends nothing new.
        await cdb('PUT', `/v2/app/${INFO}/object/${obj}`, { name: 'still secret' });
        expect(await c.settle(w)).to.have.length(1);

        const grant = t.core.auth.addGrant({
          principal: reader.uuid,
          permission: ConfigDbPerm.ReadConfig,
          target: INFO,
          plural: false,
        });
        expect((await c.nth(w, 2)).response).to.deep.include({ status: 200, body: { name: 'still secret' } });
        const full = await c.nth(s, 2);
        expect(full.status).to.equal(200);
        expect(full.children![obj]!.body).to.deep.equal({ name: 'still secret' });

        t.core.auth.deleteGrant(grant.uuid);
        expect((await c.nth(w, 3)).response).to.deep.equal({ status: 403 });
        expect(await c.nth(s, 3)).to.deep.equal({ uuid: s, status: 200, response: { status: 403 } });
      } finally {
        c.end();
      }
    });

    it('class relations, list WATCH, CLOSE and requests that cannot be subscribed to', async () => {
      const c = await client(t.core.endpoints.configdb, adminCreds());
      try {
        const members = c.watch(`v2/class/${u.class.edgeCluster}/member/`);
        const list = c.watch(`v2/app/${INFO}/object/`);
        const before = (await c.nth(members, 1)).response!.body as string[];
        const listed = (await c.nth(list, 1)).response!.body as string[];
        const obj = await newObject();
        expect((await c.nth(members, 2)).response!.body).to.deep.equal([...before, obj].sort());
        await cdb('PUT', `/v2/app/${INFO}/object/${obj}`, { name: 'x' });
        expect((await c.nth(list, 2)).response!.body)
          .to.include(obj)
          .and.have.length(listed.length + 1);

        c.close(list);
        expect(await c.nth(list, 3)).to.deep.equal({ uuid: list, status: 410 });
        await cdb('PUT', `/v2/app/${INFO}/object/${obj}`, { name: 'y' });
        expect(await c.settle(list)).to.have.length(3);

        const notHere = c.watch(`/v2/app/${INFO}/object/${obj}`);
        const unknown = c.watch('v2/nothing/here');
        const post = c.watch(`v2/app/${INFO}/object/${obj}`, 'PUT');
        const noRequest = c.send({ method: 'WATCH' });
        const noSlash = c.send({ method: 'SEARCH', parent: `v2/app/${INFO}/object` });
        const strange = c.send({ method: 'PATCH', request: { url: 'v2/object' } });
        expect((await c.nth(notHere, 1)).status).to.equal(404);
        expect((await c.nth(unknown, 1)).status).to.equal(404);
        expect((await c.nth(post, 1)).status).to.equal(404);
        expect((await c.nth(noRequest, 1)).status).to.equal(400);
        expect((await c.nth(noSlash, 1)).status).to.equal(400);
        expect((await c.nth(strange, 1)).status).to.equal(400);
        // A UUID in use cannot open a second subscription.
        const again = c.send({ uuid: members, method: 'WATCH', request: { url: `v2/app/${INFO}/object/` } });
        expect((await c.nth(again, 3)).status).to.equal(400);
      } finally {
        c.end();
      }
    });
  });

  describe('Auth', () => {
    it('WATCH of an ACL by name and by UUID follows grants; without Read ACL it is 403', async () => {
      const upn = `${reader.username}@${t.core.auth.realm}`;
      expect(t.core.auth.setIdentity(reader.uuid, upn)).to.equal('created');
      const c = await client(t.core.endpoints.auth, adminCreds());
      const r = await client(t.core.endpoints.auth, reader);
      try {
        const byName = c.watch(`v2/acl/kerberos/${encodeURIComponent(upn)}`);
        const byUuid = c.watch(`v2/acl/${reader.uuid}`);
        const unknown = c.watch(`v2/acl/${newUuid()}`);
        const denied = r.watch(`v2/acl/${reader.uuid}`);
        const initial = await c.nth(byName, 1);
        expect(initial.status).to.equal(201);
        expect(initial.response!.status).to.equal(200);
        expect((await c.nth(unknown, 1)).response).to.deep.equal({ status: 404 });
        expect(await r.nth(denied, 1)).to.deep.equal({ uuid: denied, status: 201, response: { status: 403 } });

        const target = newUuid();
        t.core.auth.addGrant({
          principal: reader.uuid,
          permission: AuthPerm.readAcl,
          target: AuthPerm.readAcl,
          plural: false,
        });
        t.core.auth.addGrant({ principal: reader.uuid, permission: ConfigDbPerm.ReadConfig, target, plural: false });
        const seen = (up: Update) => up.response!.body as Array<{ permission: string; target: string }>;
        const byNameNext = await c.nth(byName, 2);
        expect(seen(byNameNext)).to.deep.include({ permission: ConfigDbPerm.ReadConfig, target });
        expect(seen(await c.nth(byUuid, 2))).to.deep.equal(seen(byNameNext));
        // The reader may now read ACLs, but only the entries of permissions it holds Read ACL on.
        const opened = await r.nth(denied, 2);
        expect(opened.response!.status).to.equal(200);
        expect(seen(opened)).to.deep.equal([{ permission: AuthPerm.readAcl, target: AuthPerm.readAcl }]);
      } finally {
        c.end();
        r.end();
      }
    });

    it('WATCH of the principals and of the Kerberos identities', async () => {
      const c = await client(t.core.endpoints.auth, adminCreds());
      try {
        const principals = c.watch('v2/principal/');
        const names = c.watch('v2/identity/kerberos/');
        const before = (await c.nth(names, 1)).response!.body as string[];
        expect((await c.nth(principals, 1)).status).to.equal(201);
        const p = newUuid();
        t.core.auth.setIdentity(p, `someone-new@${t.core.auth.realm}`);
        expect((await c.nth(names, 2)).response!.body).to.deep.equal(
          [...before, `someone-new@${t.core.auth.realm}`].sort(),
        );
        expect((await c.nth(principals, 2)).response!.body).to.include(p);
      } finally {
        c.end();
      }
    });
  });

  describe('ACS service client', () => {
    it('@amrc-factoryplus/service-client opens the authenticated notify/v2 socket of both services', async () => {
      const fplus = new ServiceClient({
        directory_url: t.core.endpoints.directory,
        username: adminCreds().username,
        password: adminCreds().password,
      });
      for (const iface of [fplus.ConfigDB, fplus.Auth]) {
        const ws = await iface.websocket('notify/v2');
        try {
          const uuid = newUuid();
          const answer = new Promise<Update>((resolve) =>
            ws.addEventListener('message', (m: { data: string }) => resolve(JSON.parse(m.data) as Update), {
              once: true,
            }),
          );
          ws.send(
            JSON.stringify({
              uuid,
              method: 'WATCH',
              request: { url: iface === fplus.Auth ? 'v2/principal/' : `v2/app/${INFO}/object/` },
            }),
          );
          const first = await answer;
          expect(first).to.include({ uuid, status: 201 });
          expect(first.response!.status).to.equal(200);
        } finally {
          ws.close();
        }
      }
    });
  });
});

describe('notify/v2 limits', function () {
  this.timeout(10000);
  let server: Server;
  let notify: NotifyV2Server<never>;
  let base: string;

  before(async () => {
    notify = new NotifyV2Server<never>({
      watch: [{ path: 'v1/thing/', open: () => ({ answer: () => ({ status: 200, body: [] }), affects: () => false }) }],
      search: [],
      authenticate: (token) => (token === 'good' ? { uuid: newUuid(), upn: null, root: false } : undefined),
      changes: () => () => undefined,
      log: silentLogger,
      limits: { sockets: 3, subscriptions: 2, messageBytes: 512, authTimeoutMs: 300 },
    });
    server = createServer((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    notify.attach(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    notify.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('closes a socket that does not authenticate in time', async () => {
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${base.replace('http', 'ws')}/notify/v2`);
    const started = Date.now();
    const code = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
    expect(code).to.equal(1008);
    expect(Date.now() - started).to.be.below(2000);
  });

  it('refuses subscriptions beyond the limit, oversized messages and requests without a uuid', async () => {
    const c = await NotifyClient.connect(base, 'good');
    const [a, b, over] = [c.watch('v1/thing/'), c.watch('v1/thing/'), c.watch('v1/thing/')];
    expect((await c.nth(a, 1)).status).to.equal(201);
    expect((await c.nth(b, 1)).status).to.equal(201);
    expect((await c.nth(over, 1)).status).to.equal(503);
    c.close(a);
    expect((await c.nth(a, 2)).status).to.equal(410);
    expect((await c.nth(c.watch('v1/thing/'), 1)).status).to.equal(201);

    const closed = new Promise<number>((resolve) => c.ws.once('close', (code) => resolve(code)));
    c.send({ method: 'WATCH', request: { url: 'x'.repeat(1000) } });
    expect(await closed).to.equal(1009);

    const d = await NotifyClient.connect(base, 'good');
    const closedD = new Promise<number>((resolve) => d.ws.once('close', (code) => resolve(code)));
    d.ws.send(JSON.stringify({ method: 'WATCH', request: { url: 'v1/thing/' } }));
    expect(await closedD).to.equal(1008);
  });

  it('refuses sockets beyond the limit and upgrades on other paths', async () => {
    const open = await Promise.all([0, 1, 2].map(() => NotifyClient.connect(base, 'good')));
    try {
      await openRaw(base, 'Bearer good').then(
        () => expect.fail('a fourth socket was accepted'),
        (e: Error) => expect(e.message).to.match(/503/),
      );
    } finally {
      for (const c of open) c.end();
    }
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${base.replace('http', 'ws')}/notify/v1`);
    const err = await new Promise<Error>((resolve) => ws.once('error', resolve));
    expect(err.message).to.match(/404/);
  });
});
