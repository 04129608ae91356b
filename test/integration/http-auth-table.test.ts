import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { basic } from '../helpers/core.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';

/*
 * Every route of the HTTP API against every kind of caller, with the exact
 * status each must answer; then malformed cluster UUIDs and unknown clusters.
 * Every error answer must be JSON `{error, message}`, and every 401 must
 * carry the Factory+ Basic challenge.
 */

const ROWS = [
  'no credentials',
  'wrong password',
  'expired token',
  'no ACL',
  'ACL on another cluster',
  'wildcard ACL',
  'correct ACL',
] as const;
type Row = (typeof ROWS)[number];

interface Route {
  name: string;
  method: string;
  /** The path for a cluster UUID; `token` is a bootstrap token valid for that UUID, if the route takes one. */
  path: (cluster: string, token: string) => string;
  body?: string;
  /** Answers without a credential are possible (the route is public). */
  public?: boolean;
  /** Takes a cluster UUID. */
  cluster?: boolean;
}

const FPAUTH = 'Basic realm="Factory+"';

const routes: Route[] = [
  { name: 'GET /ping', method: 'GET', path: () => '/ping' },
  { name: 'POST /token', method: 'POST', path: () => '/token' },
  { name: 'GET /metrics', method: 'GET', path: () => '/metrics' },
  { name: 'GET /openapi.json', method: 'GET', path: () => '/openapi.json' },
  { name: 'GET /health', method: 'GET', path: () => '/health', public: true },
  { name: 'GET /v1/cluster', method: 'GET', path: () => '/v1/cluster' },
  { name: 'GET /v1/cluster/{uuid}', method: 'GET', path: (c) => `/v1/cluster/${c}`, cluster: true },
  { name: 'GET /v1/cluster/{uuid}/status', method: 'GET', path: (c) => `/v1/cluster/${c}/status`, cluster: true },
  {
    name: 'POST /v1/cluster/{uuid}/bootstrap-url',
    method: 'POST',
    path: (c) => `/v1/cluster/${c}/bootstrap-url`,
    cluster: true,
  },
  {
    name: 'GET /v1/cluster/{uuid}/bootstrap?token=<valid>',
    method: 'GET',
    path: (c, tok) => `/v1/cluster/${c}/bootstrap?token=${tok}`,
    public: true,
    cluster: true,
  },
  {
    name: 'GET /v1/cluster/{uuid}/bootstrap (no token)',
    method: 'GET',
    path: (c) => `/v1/cluster/${c}/bootstrap`,
    public: true,
    cluster: true,
  },
  {
    name: 'PUT /v1/cluster/{uuid}/secret/{ns}/{name}/{key}',
    method: 'PUT',
    path: (c) => `/v1/cluster/${c}/secret/edge-ns/db-creds/password`,
    body: 's3cret',
    cluster: true,
  },
  {
    name: 'DELETE /v1/cluster/{uuid}/secret/{ns}/{name}/{key}',
    method: 'DELETE',
    path: (c) => `/v1/cluster/${c}/secret/edge-ns/db-creds/password`,
    cluster: true,
  },
  { name: 'GET /v1/cluster/{uuid}/secret', method: 'GET', path: (c) => `/v1/cluster/${c}/secret`, cluster: true },
  {
    name: 'GET /v1/cluster/{uuid}/secret/{ns}/{name}',
    method: 'GET',
    path: (c) => `/v1/cluster/${c}/secret/edge-ns/db-creds`,
    cluster: true,
  },
  {
    name: 'POST /v1/cluster/{uuid}/secret-reseal',
    method: 'POST',
    path: (c) => `/v1/cluster/${c}/secret-reseal`,
    cluster: true,
  },
];

/** A route that needs a credential: 401 for the first three rows, then the given statuses. */
const authenticated = (noAcl: number, other: number, wild: number, right: number): Record<Row, number> => ({
  'no credentials': 401,
  'wrong password': 401,
  'expired token': 401,
  'no ACL': noAcl,
  'ACL on another cluster': other,
  'wildcard ACL': wild,
  'correct ACL': right,
});
const everyone = (status: number): Record<Row, number> =>
  Object.fromEntries(ROWS.map((r) => [r, status])) as Record<Row, number>;

/**
 * The exact status per route and caller on a ready cluster the "correct" caller
 * holds Manage clusters and Manage secrets on. The secret routes answer 404 to
 * permitted callers here because the cluster has no Edge cluster status entry
 * (no sealing certificate has been reported); listing works and is empty.
 */
const expected: Record<string, Record<Row, number>> = {
  'GET /ping': authenticated(200, 200, 200, 200),
  'POST /token': authenticated(200, 200, 200, 200),
  'GET /metrics': authenticated(200, 200, 200, 200),
  'GET /openapi.json': authenticated(200, 200, 200, 200),
  'GET /health': everyone(200),
  'GET /v1/cluster': authenticated(200, 200, 200, 200),
  'GET /v1/cluster/{uuid}': authenticated(403, 403, 200, 200),
  'GET /v1/cluster/{uuid}/status': authenticated(403, 403, 200, 200),
  'POST /v1/cluster/{uuid}/bootstrap-url': authenticated(403, 403, 200, 200),
  // Public: the token in the URL is the credential and an Authorization header plays no part.
  'GET /v1/cluster/{uuid}/bootstrap?token=<valid>': everyone(200),
  'GET /v1/cluster/{uuid}/bootstrap (no token)': everyone(401),
  'PUT /v1/cluster/{uuid}/secret/{ns}/{name}/{key}': authenticated(403, 403, 404, 404),
  'DELETE /v1/cluster/{uuid}/secret/{ns}/{name}/{key}': authenticated(403, 403, 404, 404),
  'GET /v1/cluster/{uuid}/secret': authenticated(403, 403, 200, 200),
  'GET /v1/cluster/{uuid}/secret/{ns}/{name}': authenticated(403, 403, 404, 404),
  'POST /v1/cluster/{uuid}/secret-reseal': authenticated(403, 403, 404, 404),
};

/** Checks the shape every error answer must have. */
async function checkError(res: Response, status: number, what: string): Promise<Record<string, unknown>> {
  expect(res.headers.get('content-type') ?? '', `${what}: content type`).to.match(/^application\/json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body, `${what}: body`).to.be.an('object');
  expect(body.error, `${what}: error`).to.be.a('string').and.not.equal('');
  expect(body.message, `${what}: message`).to.be.a('string').and.not.equal('');
  if (status === 401) {
    const challenge = res.headers.get('www-authenticate');
    // RFC 9110 §15.5.2: a 401 MUST carry a challenge. The bootstrap route's
    // credential is the URL token, so any scheme will do there; everywhere
    // else it is the Factory+ Basic challenge.
    if (/\/bootstrap(\?|$)/.test(new URL(res.url).pathname + new URL(res.url).search)) {
      expect(challenge, `${what}: WWW-Authenticate on a 401`).to.be.a('string').and.not.equal('');
    } else {
      expect(challenge, `${what}: challenge`).to.equal(FPAUTH);
    }
  }
  return body;
}

describe('HTTP API: every route against every kind of caller', function () {
  this.timeout(60_000);
  let s: ApiStack;
  let clock = 0;
  let A: string;
  let B: string;
  const creds = {} as Record<Row, string | undefined>;
  let tokenA = '';

  /** A Bearer token of the "correct" caller that expired an hour ago, fresh for every use. */
  const expiredToken = async (): Promise<string> => {
    clock = -4 * 3600_000; // the lifetime is three hours
    const old = await fetch(`${s.url}/token`, { method: 'POST', headers: { Authorization: creds['correct ACL']! } });
    clock = 0;
    expect(old.status).to.equal(200);
    const { token, expiry } = (await old.json()) as { token: string; expiry: number };
    expect(expiry).to.be.below(Date.now());
    return `Bearer ${token}`;
  };
  const credential = async (row: Row): Promise<string | undefined> =>
    row === 'expired token' ? expiredToken() : creds[row];

  const call = (route: Route, auth: string | undefined, cluster = A, token = tokenA) => {
    const headers: Record<string, string> = {};
    if (auth) headers.Authorization = auth;
    if (route.body !== undefined) headers['Content-Type'] = 'text/plain';
    return fetch(`${s.url}${route.path(cluster, token)}`, { method: route.method, headers, body: route.body });
  };

  before(async () => {
    s = await startApiStack({ now: () => Date.now() + clock, config: { http: { aclCacheSeconds: 0 } } });
    [A, B] = await Promise.all([s.createCluster('Table_A'), s.createCluster('Table_B')]);
    const { auth } = s.t.core;
    const u = s.config.uuids;
    const user = (name: string, grants: Array<[string, string]>) => {
      const uuid = randomUUID();
      auth.ensurePrincipal(uuid);
      auth.setPassword(name, uuid, `${name}-pw`);
      for (const [permission, target] of grants) auth.addGrant({ principal: uuid, permission, target, plural: false });
      return basic(name, `${name}-pw`);
    };
    const both = (target: string): Array<[string, string]> => [
      [u.perm.manageClusters, target],
      [u.perm.manageSecrets, target],
    ];
    creds['no credentials'] = undefined;
    creds['no ACL'] = user('nobody', []);
    creds['ACL on another cluster'] = user('other', both(B));
    creds['wildcard ACL'] = user('everywhere', both(u.special.wildcard));
    creds['correct ACL'] = user('right', both(A));
    creds['wrong password'] = basic('right', 'not-the-password');

    const url = await fetch(`${s.url}/v1/cluster/${A}/bootstrap-url`, {
      method: 'POST',
      headers: { Authorization: s.admin },
    });
    expect(url.status).to.equal(200);
    tokenA = new URL((await url.json()) as string).searchParams.get('token')!;
  });
  after(async () => {
    await s?.stop();
  });

  for (const route of routes) {
    describe(route.name, () => {
      for (const row of ROWS) {
        const want = expected[route.name]![row];
        it(`${row} -> ${want}`, async () => {
          const res = await call(route, await credential(row));
          const what = `${route.name} as ${row}`;
          if (res.status !== want) expect.fail(`${what}: expected ${want}, got ${res.status} ${await res.text()}`);
          if (want >= 400) await checkError(res, want, what);
          else await res.arrayBuffer();
        });
      }
    });
  }

  describe('a malformed cluster UUID', () => {
    const bad = ['not-a-uuid', '0000', `${'a'.repeat(8)}-zzzz-4bbb-8ccc-${'d'.repeat(12)}`, '%20', `{uuid}`];
    for (const route of routes.filter((r) => r.cluster)) {
      // Authentication comes first: without a credential a private route is 401 whatever the path.
      const anonymous = route.public ? 400 : 401;
      it(`${route.name}: 400 with the wildcard ACL, ${anonymous} without credentials`, async () => {
        for (const b of bad) {
          const res = await call(route, creds['wildcard ACL'], b, tokenA);
          if (res.status !== 400)
            expect.fail(`${route.name} on ${JSON.stringify(b)}: expected 400, got ${res.status} ${await res.text()}`);
          const body = await checkError(res, 400, `${route.name} on ${b}`);
          expect(body.message).to.match(/not a cluster UUID/);
          const anon = await call(route, undefined, b, tokenA);
          expect(anon.status, `${route.name} on ${b} anonymously`).to.equal(anonymous);
          await checkError(anon, anonymous, `${route.name} on ${b} anonymously`);
        }
      });
    }

    it('an upper-case UUID names the same cluster', async () => {
      const res = await fetch(`${s.url}/v1/cluster/${A.toUpperCase()}/status`, {
        headers: { Authorization: creds['correct ACL']! },
      });
      expect(res.status).to.equal(200);
      expect(((await res.json()) as { ready: boolean }).ready).to.equal(true);
    });
  });

  describe('an unknown cluster', () => {
    /**
     * A well-formed UUID with no configuration and no status: 404 for any
     * caller that may act on it, 403 for one who may not, 401 without
     * credentials. The bootstrap route is asked with a genuine token for it.
     */
    const unknown: Record<string, { wild: number; right: number; anonymous: number }> = {
      'GET /v1/cluster/{uuid}': { wild: 404, right: 403, anonymous: 401 },
      'GET /v1/cluster/{uuid}/status': { wild: 404, right: 403, anonymous: 401 },
      'POST /v1/cluster/{uuid}/bootstrap-url': { wild: 404, right: 403, anonymous: 401 },
      'GET /v1/cluster/{uuid}/bootstrap?token=<valid>': { wild: 404, right: 404, anonymous: 404 },
      'GET /v1/cluster/{uuid}/bootstrap (no token)': { wild: 401, right: 401, anonymous: 401 },
      'PUT /v1/cluster/{uuid}/secret/{ns}/{name}/{key}': { wild: 404, right: 403, anonymous: 401 },
      'DELETE /v1/cluster/{uuid}/secret/{ns}/{name}/{key}': { wild: 404, right: 403, anonymous: 401 },
      'GET /v1/cluster/{uuid}/secret': { wild: 404, right: 403, anonymous: 401 },
      'GET /v1/cluster/{uuid}/secret/{ns}/{name}': { wild: 404, right: 403, anonymous: 401 },
      'POST /v1/cluster/{uuid}/secret-reseal': { wild: 404, right: 403, anonymous: 401 },
    };
    for (const route of routes.filter((r) => r.cluster)) {
      const w = unknown[route.name]!;
      it(`${route.name}: wildcard ACL -> ${w.wild}, ACL on another cluster -> ${w.right}, no credentials -> ${w.anonymous}`, async () => {
        const ghost = randomUUID();
        const token = s.deps.bootstrapTokens.issue(ghost).token;
        for (const [who, auth, status] of [
          ['wildcard', creds['wildcard ACL'], w.wild],
          ['correct-for-A', creds['correct ACL'], w.right],
          ['anonymous', undefined, w.anonymous],
        ] as const) {
          const res = await call(route, auth, ghost, token);
          if (res.status !== status)
            expect.fail(
              `${route.name} on an unknown cluster as ${who}: expected ${status}, got ${res.status} ${await res.text()}`,
            );
          await checkError(res, status, `${route.name} on an unknown cluster as ${who}`);
        }
      });
    }
  });

  describe('the cluster listing is filtered by ACL', () => {
    const listed = async (auth: string) => {
      const res = await fetch(`${s.url}/v1/cluster`, { headers: { Authorization: auth } });
      expect(res.status).to.equal(200);
      return (await res.json()) as Array<{ uuid: string; name: string | null; phase: string; ready: boolean }>;
    };
    it('no ACL sees an empty list', async () => {
      expect(await listed(creds['no ACL']!)).to.deep.equal([]);
    });
    it('an ACL on one cluster sees only that cluster', async () => {
      expect((await listed(creds['correct ACL']!)).map((c) => c.uuid)).to.deep.equal([A]);
      expect((await listed(creds['ACL on another cluster']!)).map((c) => c.uuid)).to.deep.equal([B]);
    });
    it('the wildcard ACL sees every cluster', async () => {
      const all = await listed(creds['wildcard ACL']!);
      expect(all.map((c) => c.uuid)).to.have.members(s.m.status.clusters());
      expect(all.map((c) => c.uuid)).to.include.members([A, B]);
      expect(all.find((c) => c.uuid === A)).to.deep.include({
        uuid: A,
        name: 'Table_A',
        phase: 'ready',
        ready: true,
        reason: null,
        message: null,
      });
    });
    it('Manage secrets alone does not list a cluster', async () => {
      const auth = s.t.core.auth;
      const uuid = randomUUID();
      auth.ensurePrincipal(uuid);
      auth.setPassword('secrets-only', uuid, 'secrets-only-pw');
      auth.addGrant({ principal: uuid, permission: s.config.uuids.perm.manageSecrets, target: A, plural: false });
      const cred = basic('secrets-only', 'secrets-only-pw');
      expect(await listed(cred)).to.deep.equal([]);
      // ... nor does it give the cluster's status, while it does reach the secrets.
      expect((await fetch(`${s.url}/v1/cluster/${A}/status`, { headers: { Authorization: cred } })).status).to.equal(
        403,
      );
      expect((await fetch(`${s.url}/v1/cluster/${A}/secret`, { headers: { Authorization: cred } })).status).to.equal(
        200,
      );
    });
    it('Manage clusters alone does not reach the secrets', async () => {
      const auth = s.t.core.auth;
      const uuid = randomUUID();
      auth.ensurePrincipal(uuid);
      auth.setPassword('clusters-only', uuid, 'clusters-only-pw');
      auth.addGrant({ principal: uuid, permission: s.config.uuids.perm.manageClusters, target: A, plural: false });
      const cred = basic('clusters-only', 'clusters-only-pw');
      expect((await fetch(`${s.url}/v1/cluster/${A}/status`, { headers: { Authorization: cred } })).status).to.equal(
        200,
      );
      const res = await fetch(`${s.url}/v1/cluster/${A}/secret`, { headers: { Authorization: cred } });
      expect(res.status).to.equal(403);
      await checkError(res, 403, 'secrets with Manage clusters only');
    });
  });
});
