import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { expect } from 'chai';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import type { ClusterDetail } from '../../src/http/cluster-summary.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { basic } from '../helpers/core.js';
import { waitFor } from '../helpers/processes.js';
import { json, openEvents, type SseEvent, type SseStream } from '../helpers/sse.js';

/*
 * GET /v1/events over real HTTP against the embedded core and manager: the
 * snapshot, live changes as a cluster is commissioned, coalescing, ACL
 * filtering (and a grant given or taken while the stream is open), removal,
 * heartbeats, 401, the cap on open streams and each caller's share of them.
 */

const MAX = 4;
const PER_CALLER = 3;

describe('GET /v1/events', function () {
  this.timeout(90_000);
  let s: ApiStack;
  let A: string;
  /** A second caller, with Manage clusters on the wildcard as the administrator has. */
  let other: string;
  const open: SseStream[] = [];
  const events = async (auth?: string) => {
    const st = await openEvents(`${s.url}/v1/events`, auth);
    open.push(st);
    return st;
  };
  const of = (uuid: string) => (e: SseEvent) => e.event === 'cluster' && json<ClusterDetail>(e).uuid === uuid;
  const configure = async (name: string, namespace = 'fplus-edge') => {
    const u = s.config.uuids;
    const uuid = s.t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
    const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${u.app.clusterConfig}/object/${uuid}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, namespace }),
    });
    expect(r.status).to.equal(201);
    return uuid;
  };
  const closeAll = async () => {
    for (const st of open.splice(0)) st.close();
    await waitFor(() => s.deps.events!.size === 0, 5000, undefined, 'streams closed on the server');
  };

  before(async () => {
    s = await startApiStack({
      config: { http: { maxEventStreams: MAX, maxEventStreamsPerCaller: PER_CALLER, aclCacheSeconds: 0 } },
      eventStream: { heartbeatMs: 200, aclRecheckMs: 300, stallMs: 1000 },
    });
    A = await s.createCluster('Events_A');
    const who = randomUUID();
    s.t.core.auth.ensurePrincipal(who);
    s.t.core.auth.setPassword('events-other', who, 'events-other-pw');
    s.t.core.auth.addGrant({
      principal: who,
      permission: s.config.uuids.perm.manageClusters,
      target: s.config.uuids.special.wildcard,
      plural: false,
    });
    other = basic('events-other', 'events-other-pw');
  });
  afterEach(closeAll);
  after(async () => {
    await s?.stop();
  });

  it('refuses a caller without credentials with 401 and the Basic challenge', async () => {
    const r = await events();
    expect(r.status).to.equal(401);
    expect(r.headers.get('www-authenticate')).to.equal('Basic realm="Factory+"');
    expect(JSON.parse(r.body!)).to.include({ error: 'Unauthorized' });
    const bad = await events(basic('nobody', 'wrong'));
    expect(bad.status).to.equal(401);
  });

  it('starts with a snapshot of every cluster, then synced, and sends heartbeats', async () => {
    const st = await events(s.admin);
    expect(st.status).to.equal(200);
    expect(st.contentType).to.match(/^text\/event-stream/);
    const synced = await st.next((e) => e.event === 'synced');
    const before = st.events.slice(0, st.events.indexOf(synced));
    const a = json<ClusterDetail>(before.find(of(A))!);
    expect(a).to.include({ uuid: A, name: 'Events_A', phase: 'ready', ready: true, reason: null, message: null });
    expect(a.repo.head).to.match(/^[0-9a-f]{40}$/);
    expect(a.secrets).to.deep.equal({ count: 0 });
    expect(a.bootstrap.fetches).to.equal(0);
    expect(a.conditions.find((c) => c.type === 'Ready')).to.include({ status: 'True' });
    // The same summary GET /v1/cluster gives, field for field.
    const list = (await (await fetch(`${s.url}/v1/cluster`, { headers: { Authorization: s.admin } })).json()) as Array<
      Record<string, unknown>
    >;
    const listed = list.find((c) => c.uuid === A)!;
    for (const [k, v] of Object.entries(listed)) expect((a as unknown as Record<string, unknown>)[k]).to.deep.equal(v);
    expect(json(synced)).to.deep.equal({ clusters: list.length });
    await waitFor(() => st.comments >= 2, 5000, undefined, 'heartbeats');
  });

  it('sends a cluster as it is created and commissioned, until it is ready', async () => {
    const st = await events(s.admin);
    await st.next((e) => e.event === 'synced');
    // First an entry it cannot commission (a bad namespace), so that a not-ready
    // state is there to be seen however fast commissioning is; then the fix.
    const B = await configure('Events_B', 'Not_A_Namespace');
    await st.next((e) => of(B)(e) && json<ClusterDetail>(e).phase === 'failed', 30_000);
    const u = s.config.uuids;
    const fixed = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${u.app.clusterConfig}/object/${B}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Events_B', namespace: 'fplus-edge' }),
    });
    expect(fixed.status).to.equal(204);
    const ready = await st.next((e) => of(B)(e) && json<ClusterDetail>(e).ready, 30_000);
    const seen = st.events.filter(of(B)).map((e) => json<ClusterDetail>(e));
    expect(seen[0].ready, 'first seen before it was ready').to.equal(false);
    expect(seen.map((c) => c.phase)).to.include('ready');
    expect(json<ClusterDetail>(ready)).to.include({ name: 'Events_B', phase: 'ready', reason: null });
  });

  it('coalesces a burst of changes to one cluster into few events with the last state', async () => {
    const st = await events(s.admin);
    await st.next((e) => e.event === 'synced');
    const from = st.events.length;
    for (let i = 1; i <= 200; i++) void s.m.status.update(A, { bootstrap: { fetches: i } });
    await st.next((e) => of(A)(e) && json<ClusterDetail>(e).bootstrap.fetches === 200, 10_000, from);
    const sent = st.events.slice(from).filter(of(A));
    expect(sent.length).to.be.at.most(3);
    await s.m.status.update(A, { bootstrap: null });
  });

  it("sends a caller only the clusters its ACL covers, and follows the ACL's changes", async () => {
    const B = await s.createCluster('Events_C');
    const auth = s.t.core.auth;
    const who = randomUUID();
    auth.ensurePrincipal(who);
    auth.setPassword('events-one', who, 'events-one-pw');
    const perm = s.config.uuids.perm.manageClusters;
    auth.addGrant({ principal: who, permission: perm, target: A, plural: false });
    const st = await events(basic('events-one', 'events-one-pw'));
    expect(st.status).to.equal(200);
    const synced = await st.next((e) => e.event === 'synced');
    expect(json(synced)).to.deep.equal({ clusters: 1 });
    expect(st.events.filter((e) => e.event === 'cluster').map((e) => json<ClusterDetail>(e).uuid)).to.deep.equal([A]);

    // A change to a cluster it may not see is not sent; one to its own is.
    let from = st.events.length;
    await s.m.status.update(B, { bootstrap: { fetches: 7 } });
    await s.m.status.update(A, { bootstrap: { fetches: 8 } });
    await st.next(of(A), 5000, from);
    expect(st.events.slice(from).filter(of(B))).to.be.empty;

    // Granted while the stream is open: the cluster is sent; revoked: removed.
    from = st.events.length;
    const g = auth.addGrant({ principal: who, permission: perm, target: B, plural: false });
    expect(json<ClusterDetail>(await st.next(of(B), 5000, from)).bootstrap.fetches).to.equal(7);
    from = st.events.length;
    auth.deleteGrant(g.uuid);
    const removed = await st.next((e) => e.event === 'removed', 5000, from);
    expect(json(removed)).to.deep.equal({ uuid: B });
    await s.m.status.update(A, { bootstrap: null });
    await s.m.status.update(B, { bootstrap: null });
  });

  it('sends removed when a cluster is torn down', async () => {
    const D = await s.createCluster('Events_D');
    const st = await events(s.admin);
    await st.next((e) => e.event === 'synced');
    const from = st.events.length;
    const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.clusterConfig}/object/${D}`, {
      method: 'DELETE',
      headers: { Authorization: s.admin },
    });
    expect(r.status).to.be.oneOf([200, 204]);
    const removed = await st.next((e) => e.event === 'removed', 30_000, from);
    expect(json(removed)).to.deep.equal({ uuid: D });
    // The teardown's own phase may be coalesced into the removal; nothing of D follows it.
    await new Promise((r) => setTimeout(r, 300));
    expect(st.events.slice(st.events.indexOf(removed)).filter(of(D))).to.be.empty;
  });

  it('drops a client that stops reading, and keeps serving the others', async () => {
    const reader = await events(s.admin);
    await reader.next((e) => e.event === 'synced');
    // A client that sends its request and then never reads: its socket fills up.
    const sock = connect(Number(new URL(s.url).port), '127.0.0.1');
    await once(sock, 'connect');
    sock.write(`GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: ${s.admin}\r\n\r\n`);
    await waitFor(() => s.deps.events!.size === 2, 5000, undefined, 'the stalled stream open');
    sock.pause();
    const closed = once(sock, 'close');
    const original = s.m.status.get(A)!.conditions;
    const big = 'x'.repeat(256 * 1024);
    let dropped = false;
    void closed.then(() => (dropped = true));
    let i = 0;
    for (; i < 400 && s.deps.events!.size === 2; i++) {
      await s.m.status.update(A, {
        conditions: [{ type: 'Load', status: 'True', reason: 'Load', message: `${i} ${big}` }],
      });
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(() => s.deps.events!.size === 1, 10_000, undefined, 'the stalled stream dropped');
    console.log(`      dropped after ${i} changes of 256 KiB`);
    // Its socket is closed: what was buffered reads out, then the end.
    sock.resume();
    await waitFor(() => dropped, 5000, undefined, 'its socket closed');
    // The reading client saw every change through to the last.
    const last = reader.events.filter(of(A)).at(-1)!;
    await s.m.status.update(A, { conditions: original });
    await reader.next((e) => of(A)(e) && e.at > last.at && !e.data.includes(big), 10_000);
  });

  it('refuses a stream over MAX_EVENT_STREAMS with 503, and takes one again once a stream closes', async () => {
    // Two callers, neither at its own share, fill every slot.
    const streams = [];
    for (let i = 0; i < PER_CALLER; i++) streams.push(await events(s.admin));
    for (let i = PER_CALLER; i < MAX; i++) streams.push(await events(other));
    for (const st of streams) expect(st.status).to.equal(200);
    const over = await events(other);
    expect(over.status).to.equal(503);
    expect(JSON.parse(over.body!).message).to.contain('MAX_EVENT_STREAMS');
    streams[0].close();
    await waitFor(() => s.deps.events!.size < MAX, 5000, undefined, 'a slot freed');
    const again = await events(other);
    expect(again.status).to.equal(200);
  });

  it("refuses a caller's stream over MAX_EVENT_STREAMS_PER_CALLER with 429; other callers are unaffected", async () => {
    const mine = [];
    for (let i = 0; i < PER_CALLER; i++) mine.push(await events(s.admin));
    for (const st of mine) expect(st.status).to.equal(200);
    const over = await events(s.admin);
    expect(over.status).to.equal(429);
    expect(over.headers.get('retry-after')).to.equal('30');
    const body = JSON.parse(over.body!) as { error: string; message: string };
    expect(body.error).to.be.a('string');
    expect(body.message).to.contain('MAX_EVENT_STREAMS_PER_CALLER').and.contain(String(PER_CALLER));
    // The same principal with another credential (a token of its own) is the same caller.
    const tok = (await (
      await fetch(`${s.url}/token`, { method: 'POST', headers: { Authorization: s.admin } })
    ).json()) as {
      token: string;
    };
    expect((await events(`Bearer ${tok.token}`)).status).to.equal(429);
    // Another caller gets its stream and its snapshot.
    const theirs = await events(other);
    expect(theirs.status).to.equal(200);
    await theirs.next((e) => e.event === 'synced');
    // A refused request took no slot: one closed stream makes room for exactly one.
    expect(s.deps.events!.size).to.equal(PER_CALLER + 1);
    mine[0].close();
    await waitFor(() => s.deps.events!.size === PER_CALLER, 5000, undefined, 'a slot of the caller freed');
    expect((await events(s.admin)).status).to.equal(200);
    expect((await events(s.admin)).status).to.equal(429);
  });
});

describe('status page files', function () {
  this.timeout(60_000);
  let s: ApiStack;
  before(async () => {
    s = await startApiStack();
  });
  after(async () => {
    await s?.stop();
  });

  it('serves the page and its modules without a credential, under a CSP without inline script', async () => {
    for (const [path, type] of [
      ['/', 'text/html'],
      ['/ui/', 'text/html'],
      ['/ui/app.js', 'text/javascript'],
      ['/ui/events.js', 'text/javascript'],
      ['/ui/style.css', 'text/css'],
    ]) {
      const r = await fetch(`${s.url}${path}`);
      expect(r.status, path).to.equal(200);
      expect(r.headers.get('content-type'), path).to.contain(type);
      const csp = r.headers.get('content-security-policy')!;
      expect(csp, path).to.contain("default-src 'none'");
      expect(csp, path).to.contain("script-src 'self'");
      expect(csp, path).to.not.contain('unsafe-inline');
      expect(r.headers.get('x-frame-options'), path).to.equal('DENY');
    }
    const html = await (await fetch(`${s.url}/`)).text();
    // No inline script or style, and nothing from another origin.
    expect(html).to.not.match(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).to.not.match(/<style|style=/);
    expect(html).to.not.match(/(src|href)="(https?:)?\/\//);
  });

  it('answers 404 for another file under /ui/ and asks for credentials elsewhere', async () => {
    const missing = await fetch(`${s.url}/ui/nothing.js`);
    expect(missing.status).to.equal(404);
    expect(await missing.json()).to.include({ error: 'Not Found' });
    expect((await fetch(`${s.url}/ui/sub/app.js`)).status).to.equal(401);
    expect((await fetch(`${s.url}/index.html`)).status).to.equal(401);
  });
});
