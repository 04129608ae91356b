import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { send } from '../lib/http-client.js';

export interface JwtOptions {
  /** `OIDC_DISCOVERY_URL`: the issuer, or its `/.well-known/openid-configuration` document. */
  discoveryUrl?: string | null;
  /** `OIDC_JWKS_URL`: wins over the discovery document's `jwks_uri`. */
  jwksUrl?: string | null;
  /** `OIDC_ISSUER`: wins over the discovery document's `issuer`. */
  issuer?: string | null;
  audience?: string | null;
  /** Seconds of clock skew tolerated on exp/nbf. */
  leewaySeconds?: number;
  timeoutMs?: number;
  now?: () => number;
}

export interface VerifiedJwt {
  principal: string;
  /** The token's `exp`, in ms since the epoch: nothing exchanged for it may outlive it. */
  expiresAt: number;
}

/** The token is not acceptable: a 401. */
export class JwtError extends Error {}

/** The issuer's discovery document or keys cannot be had: a 503, the client may retry. */
export class IssuerUnavailable extends Error {}

/**
 * Asymmetric algorithms only: an HMAC or `none` header is refused before any
 * key is looked at. jose picks a key only of the type its algorithm needs
 * (RS and PS RSA, ES the named curve, EdDSA OKP), so a header can never make
 * an RSA key verify as EC or the other way round.
 */
const ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];

const WELL_KNOWN = '/.well-known/openid-configuration';
/** A failed discovery is not retried sooner than this, so a down issuer costs one request per interval. */
const RETRY_DISCOVERY_MS = 10_000;
const MAX_DOCUMENT = 1024 * 1024;

interface Issuer {
  jwks: JWTVerifyGetKey;
  issuer: string | null;
}

export function looksLikeJwt(s: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(s);
}

/** Where the discovery document of `url` is: the URL itself when it names one, else under the issuer. */
function discoveryDocumentUrl(url: string): URL {
  const u = new URL(url);
  if (!u.pathname.endsWith(WELL_KNOWN)) u.pathname = `${u.pathname.replace(/\/+$/, '')}${WELL_KNOWN}`;
  return u;
}

function isHttpUrl(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  try {
    return ['http:', 'https:'].includes(new URL(v).protocol);
  } catch {
    return false;
  }
}

/** The `issuer` and `jwks_uri` of an OpenID Provider's discovery document. */
async function discover(url: string, timeoutMs: number): Promise<{ issuer: string; jwksUri: string }> {
  const doc = discoveryDocumentUrl(url);
  const where = `OIDC_DISCOVERY_URL: ${doc.href}`;
  let res;
  try {
    res = await send(doc, { method: 'GET', headers: { Accept: 'application/json' }, timeoutMs });
  } catch (e) {
    throw new IssuerUnavailable(`${where} cannot be fetched: ${(e as Error).message}`);
  }
  if (res.status !== 200) throw new IssuerUnavailable(`${where} answered ${res.status}`);
  if (res.text.length > MAX_DOCUMENT) throw new IssuerUnavailable(`${where} is larger than ${MAX_DOCUMENT} bytes`);
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    throw new IssuerUnavailable(`${where} is not JSON`);
  }
  const { issuer, jwks_uri: jwksUri } = (body ?? {}) as Record<string, unknown>;
  if (typeof issuer !== 'string' || issuer === '') throw new IssuerUnavailable(`${where} has no "issuer"`);
  if (!isHttpUrl(jwksUri)) throw new IssuerUnavailable(`${where} has no http(s) "jwks_uri"`);
  return { issuer, jwksUri };
}

/**
 * Verifies OIDC access tokens (e.g. Keycloak's) with jose against the
 * issuer's JWKS; the Factory+ principal is the `fp_principal_uuid` claim.
 * The JWKS and issuer come from the settings, or from the discovery
 * document, fetched when the first JWT arrives so that the service starts
 * while the issuer is down. jose caches the keys and refetches them when a
 * token names an unknown `kid`.
 */
export class JwtVerifier {
  private resolved: Promise<Issuer> | undefined;
  private failedAt = 0;
  private failure: Error | undefined;

  constructor(private readonly o: JwtOptions) {
    if (!o.jwksUrl && !o.discoveryUrl) throw new Error('OIDC needs OIDC_DISCOVERY_URL or OIDC_JWKS_URL');
  }

  private jwks(url: string): JWTVerifyGetKey {
    return createRemoteJWKSet(new URL(url), { timeoutDuration: this.o.timeoutMs ?? 5000, cooldownDuration: 10_000 });
  }

  private issuer(): Promise<Issuer> {
    const { jwksUrl, issuer, discoveryUrl } = this.o;
    if (!this.resolved && jwksUrl && (issuer || !discoveryUrl)) {
      this.resolved = Promise.resolve({ jwks: this.jwks(jwksUrl), issuer: issuer ?? null });
    }
    if (this.resolved) return this.resolved;
    if (this.failure && Date.now() - this.failedAt < RETRY_DISCOVERY_MS) return Promise.reject(this.failure);
    const p = discover(discoveryUrl!, this.o.timeoutMs ?? 5000).then(
      (d) => ({ jwks: this.jwks(jwksUrl ?? d.jwksUri), issuer: issuer ?? d.issuer }),
      (e: Error) => {
        this.resolved = undefined;
        this.failure = e;
        this.failedAt = Date.now();
        throw e;
      },
    );
    this.resolved = p;
    return p;
  }

  /** Fetches the discovery document now; rejects, naming OIDC_DISCOVERY_URL, when it cannot be used. */
  async prepare(): Promise<void> {
    await this.issuer();
  }

  /** The principal and expiry of a valid token; JwtError when it is not, IssuerUnavailable when that cannot be told. */
  async verify(token: string): Promise<VerifiedJwt> {
    const { jwks, issuer } = await this.issuer();
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        algorithms: ALGORITHMS,
        ...(issuer ? { issuer } : {}),
        ...(this.o.audience ? { audience: this.o.audience } : {}),
        requiredClaims: ['exp'],
        clockTolerance: this.o.leewaySeconds ?? 30,
        currentDate: new Date((this.o.now ?? Date.now)()),
      }));
    } catch (e) {
      // A generic JOSEError is jose's word for a JWKS answer that is not a 200 JSON document.
      const unavailable =
        !(e instanceof errors.JOSEError) ||
        e instanceof errors.JWKSTimeout ||
        e instanceof errors.JWKSInvalid ||
        e.code === errors.JOSEError.code;
      if (unavailable) {
        throw new IssuerUnavailable(`the token issuer's keys cannot be fetched: ${(e as Error).message}`);
      }
      throw new JwtError(e.message);
    }
    const principal = payload.fp_principal_uuid;
    if (
      typeof principal !== 'string' ||
      !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(principal)
    ) {
      throw new JwtError('token has no fp_principal_uuid');
    }
    return { principal: principal.toLowerCase(), expiresAt: payload.exp! * 1000 };
  }
}
