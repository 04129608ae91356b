import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';

export interface JwtOptions {
  jwksUrl: string;
  issuer?: string | null;
  audience?: string | null;
  /** Seconds of clock skew tolerated on exp/nbf. */
  leewaySeconds?: number;
  now?: () => number;
  fetchJwks?: (url: string) => Promise<{ keys: Array<JsonWebKey & { kid?: string; alg?: string }> }>;
}

const ALGS: Record<string, { hash: string; dsa?: 'ieee-p1363'; pss?: boolean }> = {
  RS256: { hash: 'sha256' }, RS384: { hash: 'sha384' }, RS512: { hash: 'sha512' },
  PS256: { hash: 'sha256', pss: true }, ES256: { hash: 'sha256', dsa: 'ieee-p1363' }, ES384: { hash: 'sha384', dsa: 'ieee-p1363' },
};

export class JwtError extends Error {}

function b64json(part: string): Record<string, unknown> {
  try {
    const v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch { /* reported below */ }
  throw new JwtError('malformed token');
}

export function looksLikeJwt(s: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(s);
}

/**
 * Verifies OIDC access tokens (e.g. Keycloak's) against the issuer's JWKS
 * with node:crypto; the Factory+ principal is the `fp_principal_uuid` claim.
 * Keys are cached and refetched when a token names an unknown `kid`.
 */
export class JwtVerifier {
  private keys = new Map<string, KeyObject>();
  private fetched = 0;

  constructor(private readonly o: JwtOptions) {}

  private async refresh(): Promise<void> {
    if (Date.now() - this.fetched < 10_000) return;
    this.fetched = Date.now();
    const get = this.o.fetchJwks ?? (async (url: string) => {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new JwtError(`JWKS ${url} answered ${res.status}`);
      return await res.json() as { keys: Array<JsonWebKey & { kid?: string }> };
    });
    const jwks = await get(this.o.jwksUrl);
    const keys = new Map<string, KeyObject>();
    for (const k of jwks.keys ?? []) keys.set(k.kid ?? '', createPublicKey({ key: k, format: 'jwk' }));
    this.keys = keys;
  }

  /** The principal UUID of a valid token; throws JwtError otherwise. */
  async verify(token: string): Promise<string> {
    const [h, p, s] = token.split('.');
    const header = b64json(h!);
    const alg = ALGS[String(header.alg)];
    if (!alg) throw new JwtError(`unsupported algorithm ${String(header.alg)}`);
    const kid = typeof header.kid === 'string' ? header.kid : '';
    if (!this.keys.has(kid)) await this.refresh();
    const key = this.keys.get(kid);
    if (!key) throw new JwtError('token signed with an unknown key');
    const ok = verify(alg.hash, Buffer.from(`${h}.${p}`), {
      key, ...(alg.dsa ? { dsaEncoding: alg.dsa } : {}), ...(alg.pss ? { padding: 6 /* RSA_PKCS1_PSS_PADDING */ } : {}),
    }, Buffer.from(s!, 'base64url'));
    if (!ok) throw new JwtError('bad signature');
    const claims = b64json(p!);
    const now = (this.o.now ?? Date.now)() / 1000;
    const leeway = this.o.leewaySeconds ?? 30;
    if (typeof claims.exp !== 'number' || claims.exp + leeway < now) throw new JwtError('token expired');
    if (typeof claims.nbf === 'number' && claims.nbf - leeway > now) throw new JwtError('token not yet valid');
    if (this.o.issuer && claims.iss !== this.o.issuer) throw new JwtError('wrong issuer');
    if (this.o.audience) {
      const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      if (!aud.includes(this.o.audience)) throw new JwtError('wrong audience');
    }
    const principal = claims.fp_principal_uuid;
    if (typeof principal !== 'string' || !/^[0-9a-f-]{36}$/i.test(principal)) throw new JwtError('token has no fp_principal_uuid');
    return principal.toLowerCase();
  }
}
