import { execFile } from 'node:child_process';
import { createHmac, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { clusterRoutes } from '../../src/http/routes/clusters.js';
import { secretRoutes } from '../../src/http/routes/secrets.js';
import { serviceRoutes } from '../../src/http/routes/service.js';
import { eventRoutes } from '../../src/http/events.js';
import { uiRoutes } from '../../src/http/ui.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { basic } from '../helpers/core.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { waitFor } from '../helpers/processes.js';

const run = promisify(execFile);
const FPAUTH = 'Basic realm="Factory+"';

/**
 * Checks an error answer: the status, a JSON `{error, message}` body and, for
 * a 401, a challenge (`challenge: false` leaves that to a dedicated test).
 */
async function expectError(
  res: Response,
  status: number,
  what = `${res.url}`,
  o: { challenge?: boolean } = {},
): Promise<Record<string, unknown>> {
  if (res.status !== status) expect.fail(`${what}: expected ${status}, got ${res.status} ${await res.text()}`);
  expect(res.headers.get('content-type') ?? '', `${what}: content type`).to.match(/^application\/json/);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body.error, `${what}: error`).to.be.a('string').and.not.equal('');
  expect(body.message, `${what}: message`).to.be.a('string').and.not.equal('');
  if (status === 401 && o.challenge !== false)
    expect(res.headers.get('www-authenticate'), `${what}: challenge`).to.be.a('string').and.not.equal('');
  return body;
}

/** A JWKS endpoint on loopback for one RSA key, and RS256 tokens made with node:crypto. */
interface Issuer {
  url: string;
  server: Server;
  key: KeyObject;
  kid: string;
}

async function startJwks(): Promise<Issuer> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = 'test-key-1';
  const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] });
  const server = createServer((req, res) => {
    if (req.url === '/jwks') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(jwks);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/jwks`, server, key: privateKey, kid };
}

function jwt(claims: Record<string, unknown>, key: KeyObject, header: Record<string, unknown>): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${enc({ typ: 'JWT', ...header })}.${enc(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

/** Algorithm confusion: an HMAC "signature" keyed with something public. */
function hs256(claims: Record<string, unknown>, secret: string, alg = 'HS256'): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${enc({ typ: 'JWT', alg, kid: 'test-key-1' })}.${enc(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('HTTP API', function () {
  this.timeout(60_000);
  let s: ApiStack;
  let clock = 0;
  const now = () => Date.now() + clock;
  let issuer: Issuer;
  const ISS = 'https://sso.factoryplus.test/realms/factory_plus';
  const AUD = 'cluster-manager';
  let A: string;
  /** A cluster whose configuration is invalid: it stays at phase `failed`, never ready. */
  let F: string;
  let right: string;
  let rightUuid: string;

  const get = (path: string, auth?: string) =>
    fetch(`${s.url}${path}`, { headers: auth ? { Authorization: auth } : {} });
  const post = (path: string, auth?: string) =>
    fetch(`${s.url}${path}`, { method: 'POST', headers: auth ? { Authorization: auth } : {} });
  const bootstrapUrl = async (cluster: string): Promise<string> => {
    const res = await post(`/v1/cluster/${cluster}/bootstrap-url`, s.admin);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    const url = (await res.json()) as string;
    expect(url).to.be.a('string');
    return url;
  };
  const fetchesInStatus = async (cluster: string): Promise<number> => {
    const st = (await (await get(`/v1/cluster/${cluster}/status`, s.admin)).json()) as {
      bootstrap?: { fetches?: number };
    };
    return st.bootstrap?.fetches ?? 0;
  };
  const fetchesInMetrics = async (): Promise<number> => {
    const text = await (await get('/metrics', s.admin)).text();
    const m = /^cluster_manager_bootstrap_fetches_total (\d+(?:\.\d+)?)$/m.exec(text);
    expect(m, 'cluster_manager_bootstrap_fetches_total in /metrics').to.not.equal(null);
    return Number(m![1]);
  };

  before(async () => {
    issuer = await startJwks();
    s = await startApiStack({
      now,
      config: { http: { aclCacheSeconds: 0, oidc: { jwksUrl: issuer.url, issuer: ISS, audience: AUD } } },
    });
    A = await s.createCluster('Api_A');
    F = s.t.core.objects.create({ class: s.config.uuids.class.edgeCluster, owner: Local.account.admin }).registration
      .uuid;
    const put = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.clusterConfig}/object/${F}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'not a valid name!', namespace: 'fplus-edge' }),
    });
    expect(put.status).to.equal(201);
    await waitFor(() => s.m.status.get(F)?.phase === 'failed', 10_000, undefined, 'invalid cluster failed');

    const auth = s.t.core.auth;
    rightUuid = randomUUID();
    auth.ensurePrincipal(rightUuid);
    auth.setPassword('api-right', rightUuid, 'api-right-pw');
    auth.addGrant({ principal: rightUuid, permission: s.config.uuids.perm.manageClusters, target: A, plural: false });
    right = basic('api-right', 'api-right-pw');
  });
  afterEach(() => {
    clock = 0;
  });
  after(async () => {
    await s?.stop();
    await new Promise((r) => issuer?.server.close(r));
  });

  describe('bootstrap URLs', () => {
    it('gives a URL on the API with a token, and the script when fetched within its lifetime', async () => {
      const url = await bootstrapUrl(A);
      const u = new URL(url);
      expect(`${u.origin}${u.pathname}`).to.equal(`${s.url}/v1/cluster/${A}/bootstrap`);
      expect(u.searchParams.get('token')).to.match(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      clock = s.config.http.bootstrapTtlSeconds * 1000 - 5000;
      const res = await fetch(url);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/plain/);
      expect(res.headers.get('cache-control')).to.equal('no-store');
      const script = await res.text();
      expect(script.startsWith('#!')).to.equal(true);
      expect(script).to.include('Api_A');
    });

    it('is refused with 401 once it has expired', async () => {
      const url = await bootstrapUrl(A);
      clock = s.config.http.bootstrapTtlSeconds * 1000 + 1000;
      const body = await expectError(await fetch(url), 401, 'expired bootstrap URL', { challenge: false });
      expect(body.message).to.match(/expired/);
      clock = 0;
      expect((await fetch(url)).status, 'the same URL again before expiry').to.equal(200);
    });

    it("is refused with 401 on another cluster's UUID", async () => {
      const token = new URL(await bootstrapUrl(A)).searchParams.get('token')!;
      for (const other of [F, randomUUID()]) {
        await expectError(await get(`/v1/cluster/${other}/bootstrap?token=${token}`), 401, `A's token on ${other}`, {
          challenge: false,
        });
      }
    });

    it('is refused with 401 when any one byte of the token changes', async () => {
      const url = new URL(await bootstrapUrl(A));
      const token = url.searchParams.get('token')!;
      const [payload, mac] = token.split('.').map((p) => Buffer.from(p, 'base64url'));
      const variants: string[] = [];
      // Every byte of the payload (version, cluster, expiry, nonce) and of the MAC, re-encoded canonically.
      for (const [part, i] of [
        ...[...payload!.keys()].map((i) => [0, i]),
        ...[...mac!.keys()].map((i) => [1, i]),
      ] as Array<[number, number]>) {
        const p = Buffer.from(payload!);
        const m = Buffer.from(mac!);
        (part === 0 ? p : m)[i]! ^= 0x01;
        variants.push(`${p.toString('base64url')}.${m.toString('base64url')}`);
      }
      // Every character of the text, swapped for another base64url character.
      for (let i = 0; i < token.length; i++) {
        if (token[i] === '.') continue;
        variants.push(`${token.slice(0, i)}${token[i] === 'A' ? 'B' : 'A'}${token.slice(i + 1)}`);
      }
      expect(variants.length).to.be.above(140);
      const statuses = await Promise.all(
        variants.map(async (v) => {
          const res = await get(`/v1/cluster/${A}/bootstrap?token=${encodeURIComponent(v)}`);
          await res.arrayBuffer();
          return res.status;
        }),
      );
      expect(
        statuses.filter((st) => st !== 401),
        'statuses other than 401',
      ).to.deep.equal([]);
      expect((await fetch(url)).status, 'the original token').to.equal(200);
    });

    it('is refused with 401 without a token, with an empty or an oversized one', async () => {
      for (const q of ['', '?token=', `?token=${'A'.repeat(5000)}`, '?token=a.b']) {
        await expectError(await get(`/v1/cluster/${A}/bootstrap${q}`), 401, `bootstrap${q.slice(0, 20)}`, {
          challenge: false,
        });
      }
    });

    it('says how to authenticate when it refuses a bootstrap token (a 401 must carry WWW-Authenticate)', async () => {
      const res = await get(`/v1/cluster/${A}/bootstrap?token=nope`);
      expect(res.status).to.equal(401);
      expect(res.headers.get('www-authenticate'), 'WWW-Authenticate on the bootstrap 401')
        .to.be.a('string')
        .and.not.equal('');
    });

    it('answers 409 with the phase for a cluster that is not ready', async () => {
      const body = await expectError(
        await post(`/v1/cluster/${F}/bootstrap-url`, s.admin),
        409,
        'bootstrap-url of a failed cluster',
      );
      expect(body.phase).to.equal('failed');
      // A genuine token for that cluster does not get a script either.
      const token = s.deps.bootstrapTokens.issue(F).token;
      const script = await expectError(
        await get(`/v1/cluster/${F}/bootstrap?token=${token}`),
        409,
        'bootstrap of a failed cluster',
      );
      expect(script.phase).to.equal('failed');
    });

    it('answers 503 with the cause while the Bootstrap script template cannot be used', async () => {
      const app = s.config.uuids.app.bootstrapTemplate;
      const entry = `${s.t.core.endpoints.configdb}/v2/app/${app}/object/${app}`;
      const put = (body: unknown) =>
        fetch(entry, {
          method: 'PUT',
          headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
        });
      const original = (await (await fetch(entry, { headers: { Authorization: s.admin } })).json()) as {
        files: object;
      };
      const url = await bootstrapUrl(A);
      try {
        const broken = { ...original, files: { ...original.files, 'a b': '' } };
        expect((await put(broken)).ok, 'template with a file name that is not plain stored').to.equal(true);
        s.m.templates.invalidate(app);
        const body = await expectError(await fetch(url), 503, 'bootstrap with an unusable template');
        expect(body.message).to.equal(
          'the Bootstrap script template cannot be used: bootstrap file name "a b" is not a plain file name',
        );
      } finally {
        expect((await put(original)).ok, 'template restored').to.equal(true);
        s.m.templates.invalidate(app);
      }
      expect((await fetch(url)).status, 'bootstrap once the template is restored').to.equal(200);
    });

    it('serves a script that passes shellcheck -s sh and dash -n', async () => {
      const script = await (await fetch(await bootstrapUrl(A))).text();
      const dir = mkdtempSync(join(tmpdir(), 'cm-bootstrap-'));
      try {
        const file = join(dir, 'bootstrap.sh');
        writeFileSync(file, script);
        await run('dash', ['-n', file]).catch((e: { stderr?: string }) => expect.fail(`dash -n: ${e.stderr}`));
        await run('shellcheck', ['-s', 'sh', file]).catch((e: { stdout?: string; stderr?: string }) =>
          expect.fail(`shellcheck -s sh:\n${e.stdout}${e.stderr}`),
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('counts fetches in the cluster status and in /metrics', async () => {
      const url = await bootstrapUrl(A);
      const before = await fetchesInStatus(A);
      const metricBefore = await fetchesInMetrics();
      expect((await fetch(url)).status).to.equal(200);
      await waitFor(
        async () => (await fetchesInStatus(A)) === before + 1,
        5000,
        undefined,
        'one fetch counted in the status',
      );
      expect(await fetchesInMetrics()).to.equal(metricBefore + 1);
      const st = (await (await get(`/v1/cluster/${A}/status`, s.admin)).json()) as { bootstrap: { lastFetch: string } };
      expect(Date.parse(st.bootstrap.lastFetch)).to.be.closeTo(Date.now(), 60_000);

      // Refused fetches are not counted.
      await (await fetch(`${url}x`)).arrayBuffer();
      await (await get(`/v1/cluster/${A}/bootstrap`)).arrayBuffer();
      expect(await fetchesInMetrics()).to.equal(metricBefore + 1);
      expect(await fetchesInStatus(A)).to.equal(before + 1);
    });

    /** Fetches `url` in `batches` rounds of `n` at once; the statuses of each round. */
    const together = async (url: string, batches: number, n: number): Promise<number[][]> => {
      const out: number[][] = [];
      for (let b = 0; b < batches; b++) {
        out.push(
          await Promise.all(
            Array.from({ length: n }, async () => {
              const res = await fetch(url);
              await res.arrayBuffer();
              return res.status;
            }),
          ),
        );
      }
      return out;
    };

    it('counts every fetch also when several come at once', async () => {
      const url = await bootstrapUrl(A);
      const before = await fetchesInStatus(A);
      const metricBefore = await fetchesInMetrics();
      const served = (await together(url, 3, 5)).flat().filter((st) => st === 200).length;
      expect(served, 'some fetches served').to.be.above(0);
      expect(await fetchesInMetrics(), 'cluster_manager_bootstrap_fetches_total').to.equal(metricBefore + served);
      await new Promise((r) => setTimeout(r, 200));
      expect(await fetchesInStatus(A), `bootstrap.fetches after ${served} served fetches, 5 at a time`).to.equal(
        before + served,
      );
    });

    it('serves the script to several fetches at once', async () => {
      const url = await bootstrapUrl(A);
      const rounds = await together(url, 3, 5);
      expect(rounds, 'statuses of 3 rounds of 5 simultaneous fetches').to.deep.equal([
        [200, 200, 200, 200, 200],
        [200, 200, 200, 200, 200],
        [200, 200, 200, 200, 200],
      ]);
    });
  });

  describe('POST /token', () => {
    it('gives a token that works as Bearer until it expires', async () => {
      const res = await post('/token', right);
      expect(res.status).to.equal(200);
      const { token, expiry } = (await res.json()) as { token: string; expiry: number };
      expect(token).to.be.a('string').with.length.above(40);
      expect(expiry).to.be.closeTo(now() + s.config.http.tokenTtlSeconds * 1000, 5000);
      const bearer = `Bearer ${token}`;
      expect((await get(`/v1/cluster/${A}/status`, bearer)).status).to.equal(200);
      expect((await get('/ping', bearer)).status).to.equal(200);
      // Same principal and ACL as the Basic credential it came from.
      await expectError(await get(`/v1/cluster/${F}/status`, bearer), 403);

      clock = expiry - Date.now() - 120_000;
      expect((await get('/ping', bearer)).status, 'two minutes before expiry').to.equal(200);
      clock = expiry - Date.now() + 1000;
      const after = await get(`/v1/cluster/${A}/status`, bearer);
      await expectError(after, 401, 'expired bearer token');
      expect(after.headers.get('www-authenticate')).to.equal(FPAUTH);
    });

    it('refuses unknown tokens and malformed or unsupported Authorization headers with 401', async () => {
      for (const h of [
        'Bearer nope',
        'Bearer',
        'Bearer ',
        'Basic',
        'Basic !!!',
        'Negotiate YIIBhg==',
        'Digest username="admin"',
        'garbage',
      ]) {
        const res = await get('/ping', h);
        await expectError(res, 401, `Authorization: ${h}`);
        expect(res.headers.get('www-authenticate'), h).to.equal(FPAUTH);
      }
    });
  });

  describe('OIDC access tokens', () => {
    let principal: string;
    const claims = (over: Record<string, unknown> = {}) => {
      const t = Math.floor(now() / 1000);
      return { iss: ISS, aud: AUD, sub: 'someone', iat: t, exp: t + 300, fp_principal_uuid: principal, ...over };
    };
    const bearer = (
      c: Record<string, unknown>,
      key = issuer.key,
      header: Record<string, unknown> = { alg: 'RS256', kid: issuer.kid },
    ) => `Bearer ${jwt(c, key, header)}`;

    before(() => {
      principal = s.operatorOf(A);
    });

    it("accepts a valid RS256 token for the principal in fp_principal_uuid, with that principal's ACL", async () => {
      const ok = await get(`/v1/cluster/${A}/status`, bearer(claims()));
      expect(ok.status, await ok.clone().text()).to.equal(200);
      expect(((await ok.json()) as { ready: boolean }).ready).to.equal(true);
      await expectError(
        await get(`/v1/cluster/${F}/status`, bearer(claims())),
        403,
        'JWT principal on another cluster',
      );
      const list = (await (await get('/v1/cluster', bearer(claims({ aud: ['account', AUD] })))).json()) as Array<{
        uuid: string;
      }>;
      expect(list.map((c) => c.uuid)).to.deep.equal([A]);
    });

    it('refuses a bad signature, an expired token, the wrong audience or issuer with 401', async () => {
      const { privateKey: otherKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const good = jwt(claims(), issuer.key, { alg: 'RS256', kid: issuer.kid });
      const [h, p] = good.split('.');
      const tampered = `${h}.${Buffer.from(JSON.stringify(claims({ fp_principal_uuid: Local.account.admin }))).toString('base64url')}.${good.split('.')[2]}`;
      const cases: Array<[string, string]> = [
        ['signed with another key', bearer(claims(), otherKey)],
        ['claims changed after signing', `Bearer ${tampered}`],
        [
          'signature of another token',
          `Bearer ${h}.${p}.${jwt(claims({ sub: 'x' }), issuer.key, { alg: 'RS256', kid: issuer.kid }).split('.')[2]}`,
        ],
        ['expired', bearer(claims({ exp: Math.floor(now() / 1000) - 3600, iat: Math.floor(now() / 1000) - 7200 }))],
        ['no exp', bearer(claims({ exp: undefined }))],
        ['wrong audience', bearer(claims({ aud: 'someone-else' }))],
        ['wrong issuer', bearer(claims({ iss: 'https://evil.example/realms/x' }))],
        ['no fp_principal_uuid', bearer(claims({ fp_principal_uuid: undefined }))],
        ['unknown kid', bearer(claims(), issuer.key, { alg: 'RS256', kid: 'nope' })],
        [
          'alg none',
          `Bearer ${Buffer.from(JSON.stringify({ alg: 'none', kid: issuer.kid })).toString('base64url')}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}.AAAA`,
        ],
        [
          'HS256 with the public key as secret',
          `Bearer ${hs256(claims(), createPublicKey(issuer.key).export({ type: 'spki', format: 'pem' }).toString())}`,
        ],
        ['RS256 header on an HS256 MAC', `Bearer ${hs256(claims(), 'secret', 'RS256')}`],
      ];
      for (const [what, auth] of cases) {
        const res = await get(`/v1/cluster/${A}/status`, auth);
        await expectError(res, 401, `JWT ${what}`);
        expect(res.headers.get('www-authenticate'), what).to.equal(FPAUTH);
      }
    });

    it('refuses a token once the injected clock passes its expiry', async () => {
      const auth = bearer(claims());
      expect((await get(`/v1/cluster/${A}/status`, auth)).status).to.equal(200);
      clock = 10 * 60_000;
      await expectError(await get(`/v1/cluster/${A}/status`, auth), 401, 'JWT after its exp');
    });
  });

  describe('the service routes', () => {
    it('GET /health is public and JSON', async () => {
      const res = await get('/health');
      expect(res.status).to.equal(200);
      const body = (await res.json()) as { live: boolean; ready: boolean };
      expect(body.live).to.equal(true);
      expect(body.ready).to.equal(true);
    });

    it('GET /ping identifies the Cluster Manager', async () => {
      const body = (await (await get('/ping', s.admin)).json()) as { service: string; version: string };
      expect(body.service).to.equal(s.config.uuids.service.clusterManager);
      expect(body.version).to.be.a('string');
    });

    it('GET /metrics is Prometheus text', async () => {
      const res = await get('/metrics', s.admin);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/plain/);
      const text = await res.text();
      expect(text).to.match(/^# TYPE cluster_manager_bootstrap_fetches_total counter$/m);
      expect(text).to.match(/^cluster_manager_http_requests_total\{/m);
    });

    it('answers an unknown path with a JSON 404 and a wrong method with a JSON 405 and Allow', async () => {
      await expectError(await get('/v2/nothing', s.admin), 404);
      await expectError(await get('/v1/cluster/x/y/z', s.admin), 404);
      const res = await fetch(`${s.url}/v1/cluster/${A}/status`, {
        method: 'DELETE',
        headers: { Authorization: s.admin },
      });
      await expectError(res, 405);
      expect(res.headers.get('allow')).to.include('GET');
    });

    it('/openapi.json documents every route the app serves, and no other', async () => {
      const res = await get('/openapi.json', s.admin);
      expect(res.status).to.equal(200);
      const doc = (await res.json()) as {
        openapi: string;
        paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      };
      expect(doc.openapi).to.match(/^3\./);
      const served = new Set<string>();
      for (const r of [
        serviceRoutes(s.deps),
        clusterRoutes(s.deps),
        secretRoutes(s.deps),
        eventRoutes(s.deps.events!),
        uiRoutes(),
      ]) {
        for (const layer of r.stack) {
          const path = String(layer.path).replace(/:([A-Za-z0-9_]+)/g, '{$1}');
          for (const m of layer.methods) if (m !== 'HEAD') served.add(`${m.toLowerCase()} ${path}`);
        }
      }
      const documented = new Set<string>();
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          if (['get', 'put', 'post', 'delete', 'patch', 'head', 'options'].includes(method)) {
            documented.add(`${method} ${path}`);
            expect(Object.keys(op.responses), `${method} ${path} responses`).to.not.be.empty;
          }
        }
      }
      expect(served.size).to.be.at.least(14);
      expect(
        [...served].filter((r) => !documented.has(r)),
        'served but not documented',
      ).to.deep.equal([]);
      expect(
        [...documented].filter((r) => !served.has(r)),
        'documented but not served',
      ).to.deep.equal([]);
      for (const route of [
        'get /ping',
        'post /token',
        'get /metrics',
        'get /openapi.json',
        'get /health',
        'get /v1/cluster',
        'get /v1/events',
        'get /',
        'get /v1/cluster/{uuid}',
        'get /v1/cluster/{uuid}/status',
        'post /v1/cluster/{uuid}/bootstrap-url',
        'get /v1/cluster/{uuid}/bootstrap',
        'put /v1/cluster/{uuid}/secret/{namespace}/{name}/{key}',
        'delete /v1/cluster/{uuid}/secret/{namespace}/{name}/{key}',
        'get /v1/cluster/{uuid}/secret',
        'get /v1/cluster/{uuid}/secret/{namespace}/{name}',
        'post /v1/cluster/{uuid}/secret-reseal',
      ]) {
        expect(documented.has(route), route).to.equal(true);
      }
    });
  });
});

describe('HTTP API with the Auth service unreachable', function () {
  this.timeout(60_000);
  let s: ApiStack;

  before(async () => {
    s = await startApiStack({
      config: { http: { aclCacheSeconds: 0 }, factoryplus: { authUrl: 'http://127.0.0.1:1/' } },
    });
  });
  after(async () => {
    await s?.stop();
  });

  it('answers 503, not a pass, when a password cannot be checked', async () => {
    for (const path of ['/ping', '/v1/cluster', `/v1/cluster/${randomUUID()}/status`]) {
      const res = await fetch(`${s.url}${path}`, { headers: { Authorization: s.admin } });
      await expectError(res, 503, `Basic ${path}`);
    }
    await expectError(
      await fetch(`${s.url}/token`, { method: 'POST', headers: { Authorization: s.admin } }),
      503,
      'POST /token',
    );
  });

  it('answers 503, not a pass, when an ACL cannot be read', async () => {
    const { token } = s.deps.tokens.issue(Local.account.admin);
    const auth = `Bearer ${token}`;
    expect((await fetch(`${s.url}/ping`, { headers: { Authorization: auth } })).status, 'no ACL needed').to.equal(200);
    for (const [method, path] of [
      ['GET', '/v1/cluster'],
      ['GET', `/v1/cluster/${randomUUID()}/status`],
      ['POST', `/v1/cluster/${randomUUID()}/bootstrap-url`],
      ['GET', `/v1/cluster/${randomUUID()}/secret`],
      ['DELETE', `/v1/cluster/${randomUUID()}/secret/ns/name/key`],
    ] as const) {
      const res = await fetch(`${s.url}${path}`, { method, headers: { Authorization: auth } });
      await expectError(res, 503, `${method} ${path}`);
    }
  });

  it('still answers without a credential: 401, not 503', async () => {
    const res = await fetch(`${s.url}/v1/cluster`);
    await expectError(res, 401);
    expect(res.headers.get('www-authenticate')).to.equal(FPAUTH);
  });
});
