import { expect } from 'chai';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT } from 'jose';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { Authenticator } from '../../src/http/authn.js';
import { IssuerUnavailable, JwtError, JwtVerifier } from '../../src/http/jwt.js';
import { HttpError } from '../../src/lib/http-errors.js';
import { TokenStore } from '../../src/lib/tokens.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';

/*
 * OIDC bearer tokens against a real issuer on loopback: a discovery document
 * and a JWKS served over HTTP, keys made with node:crypto, tokens signed with
 * jose or, for the forged ones, by hand with node:crypto.
 */

interface Issuer {
  url: string;
  server: Server;
  /** What the discovery document says; tests change it between requests. */
  discovery: { status: number; issuer?: string; jwks_uri?: string };
  /** Keys served at /jwks and at /other-jwks. */
  jwks: { keys: unknown[] };
  otherJwks: { keys: unknown[] };
  hits: Record<string, number>;
}

async function startIssuer(): Promise<Issuer> {
  const iss: Issuer = {
    url: '',
    server: undefined as unknown as Server,
    discovery: { status: 200 },
    jwks: { keys: [] },
    otherJwks: { keys: [] },
    hits: {},
  };
  iss.server = createServer((req, res) => {
    const path = req.url ?? '';
    iss.hits[path] = (iss.hits[path] ?? 0) + 1;
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    if (path === '/realms/fp/.well-known/openid-configuration') {
      const { status, ...doc } = iss.discovery;
      return status === 200 ? json(200, doc) : json(status, { error: 'nope' });
    }
    if (path === '/jwks') return json(200, iss.jwks);
    if (path === '/other-jwks') return json(200, iss.otherJwks);
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => iss.server.listen(0, '127.0.0.1', r));
  iss.url = `http://127.0.0.1:${(iss.server.address() as AddressInfo).port}`;
  return iss;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** A token whose signature is made by node:crypto exactly as given, whatever the header claims. */
function forged(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  key: KeyObject,
  dsaEncoding?: 'der' | 'ieee-p1363',
): string {
  const input = `${b64({ typ: 'JWT', ...header })}.${b64(claims)}`;
  return `${input}.${sign('sha256', Buffer.from(input), dsaEncoding ? { key, dsaEncoding } : key).toString('base64url')}`;
}

describe('OIDC bearer tokens (jose, discovery, token lifetime)', function () {
  this.timeout(60_000);
  const ISS = 'https://sso.factoryplus.test/realms/fp';
  const AUD = 'cluster-manager';
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let issuer: Issuer;
  let s: ApiStack;
  let cluster: string;
  let principal: string;

  const claims = (over: Record<string, unknown> = {}) => {
    const t = Math.floor(Date.now() / 1000);
    return { iss: ISS, aud: AUD, sub: 'someone', iat: t, exp: t + 300, fp_principal_uuid: principal, ...over };
  };
  const signed = (c: Record<string, unknown>, key: KeyObject, alg: string, kid: string) =>
    new SignJWT(c).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key);
  const get = (path: string, token: string) =>
    fetch(`${s.url}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  const postToken = (token: string) =>
    fetch(`${s.url}/token`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });

  before(async () => {
    issuer = await startIssuer();
    // No `alg` on the keys, as some issuers publish them: only the key's type can tie it to an algorithm.
    issuer.jwks.keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', use: 'sig' },
      { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', use: 'sig' },
    ];
    issuer.otherJwks.keys = [{ ...(await exportJWK(stranger.publicKey)), kid: 'rsa-1', use: 'sig' }];
    issuer.discovery = { status: 200, issuer: ISS, jwks_uri: `${issuer.url}/jwks` };
    s = await startApiStack({
      config: { http: { aclCacheSeconds: 0, oidc: { discoveryUrl: `${issuer.url}/realms/fp`, audience: AUD } } },
    });
    cluster = await s.createCluster('Oidc_A');
    principal = s.operatorOf(cluster);
  });
  after(async () => {
    await s?.stop();
    await new Promise((r) => issuer?.server.close(r));
  });

  it('takes the JWKS and the issuer from OIDC_DISCOVERY_URL', async () => {
    const rs = await get(`/v1/cluster/${cluster}/status`, await signed(claims(), rsa.privateKey, 'RS256', 'rsa-1'));
    expect(rs.status, await rs.clone().text()).to.equal(200);
    const es = await get(`/v1/cluster/${cluster}/status`, await signed(claims(), ec.privateKey, 'ES256', 'ec-1'));
    expect(es.status, await es.clone().text()).to.equal(200);
    expect(issuer.hits['/realms/fp/.well-known/openid-configuration']).to.equal(1);
    const other = await get(
      `/v1/cluster/${cluster}/status`,
      await signed(claims({ iss: 'https://evil.example/realms/fp' }), rsa.privateKey, 'RS256', 'rsa-1'),
    );
    expect(other.status, 'an issuer other than the discovered one').to.equal(401);
  });

  it('ties the algorithm to the key type: ES256 on the RSA key and RS256 on the EC key are refused', async () => {
    const cases: Array<[string, string]> = [
      // An RSA PKCS#1 v1.5 signature under an ES256 header, naming the RSA key.
      ['ES256 header, RSA key', forged({ alg: 'ES256', kid: 'rsa-1' }, claims(), rsa.privateKey)],
      // ECDSA signatures (DER and raw) under an RS256 header, naming the EC key.
      ['RS256 header, EC key (DER signature)', forged({ alg: 'RS256', kid: 'ec-1' }, claims(), ec.privateKey, 'der')],
      [
        'RS256 header, EC key (raw signature)',
        forged({ alg: 'RS256', kid: 'ec-1' }, claims(), ec.privateKey, 'ieee-p1363'),
      ],
      ['PS256 header, EC key', forged({ alg: 'PS256', kid: 'ec-1' }, claims(), ec.privateKey, 'der')],
      ['ES384 header, P-256 key', forged({ alg: 'ES384', kid: 'ec-1' }, claims(), ec.privateKey, 'ieee-p1363')],
    ];
    for (const [what, token] of cases) {
      const res = await get(`/v1/cluster/${cluster}/status`, token);
      expect(res.status, what).to.equal(401);
      expect(((await res.json()) as { error: string }).error, what).to.be.a('string');
    }
  });

  it('gives POST /token no longer a life than the JWT it was exchanged for', async () => {
    const exp = Math.floor(Date.now() / 1000) + 5;
    const res = await postToken(await signed(claims({ exp }), rsa.privateKey, 'RS256', 'rsa-1'));
    expect(res.status, await res.clone().text()).to.equal(200);
    const { expiry } = (await res.json()) as { expiry: number };
    expect(expiry).to.be.at.most(exp * 1000);

    // A long-lived JWT gets the configured lifetime, not more.
    const long = await postToken(
      await signed(claims({ exp: Math.floor(Date.now() / 1000) + 24 * 3600 }), rsa.privateKey, 'RS256', 'rsa-1'),
    );
    const { token, expiry: longExpiry } = (await long.json()) as { token: string; expiry: number };
    expect(longExpiry).to.be.closeTo(Date.now() + s.config.http.tokenTtlSeconds * 1000, 5000);
    // A token exchanged for a token does not extend it either.
    const again = await postToken(token);
    expect(again.status).to.equal(200);
    expect(((await again.json()) as { expiry: number }).expiry).to.be.at.most(longExpiry);
  });

  describe('the verifier on its own', () => {
    const verifier = (o: ConstructorParameters<typeof JwtVerifier>[0]) => new JwtVerifier({ audience: AUD, ...o });

    it('lets OIDC_JWKS_URL and OIDC_ISSUER win over the discovery document', async () => {
      // The discovery document names another JWKS (whose key shares the kid) and another issuer.
      issuer.discovery = {
        status: 200,
        issuer: 'https://discovered.example/realms/fp',
        jwks_uri: `${issuer.url}/other-jwks`,
      };
      try {
        const v = verifier({
          discoveryUrl: `${issuer.url}/realms/fp/.well-known/openid-configuration`,
          jwksUrl: `${issuer.url}/jwks`,
          issuer: ISS,
        });
        expect((await v.verify(await signed(claims(), rsa.privateKey, 'RS256', 'rsa-1'))).principal).to.equal(
          principal,
        );
        const byStranger = await signed(claims(), stranger.privateKey, 'RS256', 'rsa-1');
        await v.verify(byStranger).then(
          () => expect.fail('a key of the discovered JWKS was used'),
          (e) => expect(e).to.be.instanceOf(JwtError),
        );
        const discoveredIss = await signed(
          claims({ iss: 'https://discovered.example/realms/fp' }),
          rsa.privateKey,
          'RS256',
          'rsa-1',
        );
        await v.verify(discoveredIss).then(
          () => expect.fail('the discovered issuer was accepted'),
          (e) => expect(e).to.be.instanceOf(JwtError),
        );

        // Only the issuer given: the keys still come from the discovery document.
        const onlyIss = verifier({ discoveryUrl: `${issuer.url}/realms/fp`, issuer: ISS });
        expect(
          (await onlyIss.verify(await signed(claims(), stranger.privateKey, 'RS256', 'rsa-1'))).principal,
        ).to.equal(principal);
      } finally {
        issuer.discovery = { status: 200, issuer: ISS, jwks_uri: `${issuer.url}/jwks` };
      }
    });

    it('reports a discovery document it cannot use as unavailable, naming OIDC_DISCOVERY_URL', async () => {
      const token = await signed(claims(), rsa.privateKey, 'RS256', 'rsa-1');
      const bad: Array<Issuer['discovery']> = [
        { status: 404 },
        { status: 200, jwks_uri: `${issuer.url}/jwks` },
        { status: 200, issuer: ISS, jwks_uri: 'file:///etc/passwd' },
      ];
      try {
        for (const d of bad) {
          issuer.discovery = d;
          const err = await verifier({ discoveryUrl: `${issuer.url}/realms/fp` })
            .verify(token)
            .then(
              () => undefined,
              (e: Error) => e,
            );
          expect(err, JSON.stringify(d)).to.be.instanceOf(IssuerUnavailable);
          expect(err!.message).to.include('OIDC_DISCOVERY_URL');
        }
      } finally {
        issuer.discovery = { status: 200, issuer: ISS, jwks_uri: `${issuer.url}/jwks` };
      }
      // Through the authenticator: a 503 the client may retry, not a 401.
      issuer.discovery = { status: 503 };
      try {
        const authn = new Authenticator({
          authBase: async () => issuer.url,
          tokens: new TokenStore(),
          jwt: verifier({ discoveryUrl: `${issuer.url}/realms/fp` }),
        });
        const err = await authn.identify(`Bearer ${token}`).then(
          () => undefined,
          (e: Error) => e,
        );
        expect(err).to.be.instanceOf(HttpError);
        expect((err as HttpError).status).to.equal(503);
        expect(err!.message).to.include('OIDC_DISCOVERY_URL');
      } finally {
        issuer.discovery = { status: 200, issuer: ISS, jwks_uri: `${issuer.url}/jwks` };
      }
      // Once the issuer answers, a new verifier works.
      expect((await verifier({ discoveryUrl: `${issuer.url}/realms/fp` }).verify(token)).expiresAt).to.equal(
        claims().exp * 1000,
      );
    });

    it('refuses an OIDC_DISCOVERY_URL that is not an http(s) URL, naming the variable', () => {
      for (const v of ['not a url', 'file:///etc/openid', 'ftp://sso.example/realms/fp']) {
        expect(() => loadConfig({ env: { OIDC_DISCOVERY_URL: v } }), v).to.throw(ConfigError, /OIDC_DISCOVERY_URL/);
      }
      expect(
        loadConfig({ env: { OIDC_DISCOVERY_URL: 'https://sso.example/realms/fp' } }).http.oidc.discoveryUrl,
      ).to.equal('https://sso.example/realms/fp');
    });
  });
});
