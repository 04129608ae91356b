import { createHash } from 'node:crypto';
import type { Context, Next } from 'koa';
import {
  limitedCheck,
  passwordLimits,
  TooManyFailures,
  type PasswordLimitConfig,
  type PasswordLimits,
} from '../lib/failure-limit.js';
import { HttpError } from '../lib/http-errors.js';
import { send } from '../lib/http-client.js';
import { IssuerUnavailable, JwtError, looksLikeJwt, type JwtVerifier } from './jwt.js';
import type { TokenStore } from '../lib/tokens.js';

export const CHALLENGE = { 'WWW-Authenticate': 'Basic realm="Factory+"' };

export interface AuthnOptions {
  /** Base URL of the Auth service, which checks passwords for us. */
  authBase: () => Promise<string>;
  tokens: TokenStore;
  jwt?: JwtVerifier;
  /** How long a checked password is trusted before asking Auth again. */
  basicCacheMs?: number;
  timeoutMs?: number;
  /** Failed Basic checks allowed per user name and per client address (default: DEFAULT_PASSWORD_LIMITS). */
  passwordLimits?: PasswordLimitConfig;
}

export interface AuthState {
  principal?: string;
  /** When the request's credential expires (ms), if it does: what is exchanged for it must not outlive it. */
  credentialExpiry?: number;
}

export interface Identity {
  principal: string;
  expiry?: number;
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, message, CHALLENGE);
}

/**
 * Who is calling. A Basic credential is checked by the Auth service, the
 * holder of the installation's identities (the embedded Auth has local
 * passwords; a Factory+ installation checks them against Kerberos), and the
 * principal UUID comes from its whoami; a Bearer token is one of ours from
 * `POST /token` or, with OIDC configured, a JWT. Auth being unreachable is a
 * 503, never a pass.
 */
export class Authenticator {
  private readonly basicCache = new Map<string, { principal: string; until: number }>();
  /**
   * Checks under way, by credential: a client's burst of requests costs the
   * Auth service one check (in Factory+, a Kerberos exchange), not one each.
   */
  private readonly checking = new Map<string, Promise<string | undefined>>();
  /**
   * Credentials Auth refused, until when: a client retrying one is refused
   * without asking again and without counting, so a careless client does
   * not lock out its user; each new guess counts against the limits.
   */
  private readonly refused = new Map<string, number>();
  private readonly limits: PasswordLimits;

  constructor(private readonly o: AuthnOptions) {
    this.limits = passwordLimits(o.passwordLimits);
  }

  private async checkPassword(header: string, address: string): Promise<string> {
    const key = createHash('sha256').update(header).digest('base64');
    const hit = this.basicCache.get(key);
    if (hit && hit.until > Date.now()) return hit.principal;
    const refusedUntil = this.refused.get(key);
    if (refusedUntil !== undefined && refusedUntil > Date.now()) {
      await this.limits.hold();
      throw unauthorized('wrong username or password');
    }
    let check = this.checking.get(key);
    if (!check) {
      const text = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const user = text.slice(0, Math.max(0, text.indexOf(':')));
      check = limitedCheck(this.limits, user, address, () => this.askAuth(key, header, address)).finally(() =>
        this.checking.delete(key),
      );
      this.checking.set(key, check);
    }
    let principal: string | undefined;
    try {
      principal = await check;
    } catch (e) {
      if (e instanceof TooManyFailures)
        throw new HttpError(429, e.message, { 'Retry-After': String(e.retryAfterSeconds) });
      throw e;
    }
    if (principal === undefined) throw unauthorized('wrong username or password');
    return principal;
  }

  /** The principal of a Basic credential, or undefined when Auth refuses it. */
  private async askAuth(key: string, header: string, address: string): Promise<string | undefined> {
    let base: string;
    try {
      base = await this.o.authBase();
    } catch (e) {
      throw new HttpError(503, `the Auth service cannot be found: ${(e as Error).message}`);
    }
    const timeoutMs = this.o.timeoutMs ?? 5_000;
    const call = async (method: string, path: string, auth: string) => {
      try {
        // The caller's address, so that Auth counts failures per caller, not all against this service.
        const forwarded: Record<string, string> = address ? { 'X-Forwarded-For': address } : {};
        return await send(new URL(path, base), {
          method,
          headers: { Authorization: auth, Accept: 'application/json', ...forwarded },
          timeoutMs,
        });
      } catch (e) {
        throw new HttpError(503, `the Auth service cannot be reached: ${(e as Error).message}`);
      }
    };
    const tok = await call('POST', '/token', header);
    if (tok.status === 401 || tok.status === 403) {
      if (this.refused.size > 10_000) this.refused.clear();
      this.refused.set(key, Date.now() + (this.o.passwordLimits?.windowSeconds ?? 60) * 1000);
      return undefined;
    }
    // Auth's own limit (the embedded Auth counts this service's address too) is passed on, not a failure of ours.
    if (tok.status === 429)
      throw new HttpError(429, 'too many failed password checks; try again later', {
        'Retry-After': tok.headers.get('retry-after') ?? '60',
      });
    if (tok.status !== 200)
      throw new HttpError(503, `the Auth service answered ${tok.status} when checking a password`);
    const { token } = JSON.parse(tok.text) as { token: string };
    const who = await call('GET', 'v2/whoami/uuid', `Bearer ${token}`);
    if (who.status !== 200) throw new HttpError(503, `the Auth service answered ${who.status} to whoami`);
    const principal = JSON.parse(who.text) as string;
    if (this.basicCache.size > 10_000) this.basicCache.clear();
    this.basicCache.set(key, { principal, until: Date.now() + (this.o.basicCacheMs ?? 60_000) });
    return principal;
  }

  /** The principal UUID of the request's credential; 401 when there is none or it is not valid. */
  async principal(authorization: string | undefined, address = ''): Promise<string> {
    return (await this.identify(authorization, address)).principal;
  }

  /** The principal of the request's credential and, for a bearer token, when that expires. */
  async identify(authorization: string | undefined, address = ''): Promise<Identity> {
    if (!authorization) throw unauthorized('authentication required');
    const sp = authorization.indexOf(' ');
    const scheme = authorization.slice(0, sp).toLowerCase();
    const cred = authorization.slice(sp + 1).trim();
    if (sp < 0 || !cred) throw unauthorized('malformed Authorization header');
    if (scheme === 'basic') return { principal: await this.checkPassword(`Basic ${cred}`, address) };
    if (scheme === 'bearer') {
      const t = this.o.tokens.find(cred);
      if (t) return t;
      if (this.o.jwt && looksLikeJwt(cred)) {
        try {
          const v = await this.o.jwt.verify(cred);
          return { principal: v.principal, expiry: v.expiresAt };
        } catch (e) {
          if (e instanceof JwtError) throw unauthorized(`token refused: ${e.message}`);
          if (e instanceof IssuerUnavailable) throw new HttpError(503, e.message);
          throw new HttpError(503, `the token issuer's keys cannot be fetched: ${(e as Error).message}`);
        }
      }
      throw unauthorized('unknown or expired token');
    }
    throw unauthorized(`unsupported authentication scheme ${scheme}`);
  }

  /** Koa middleware: every request except those `isPublic` accepts must authenticate. */
  middleware(isPublic: (ctx: Context) => boolean) {
    return async (ctx: Context, next: Next): Promise<void> => {
      const header = ctx.get('authorization') || undefined;
      if (!isPublic(ctx)) {
        const id = await this.identify(header, ctx.req.socket.remoteAddress ?? '');
        const state = ctx.state as AuthState;
        state.principal = id.principal;
        if (id.expiry !== undefined) state.credentialExpiry = id.expiry;
      }
      await next();
    };
  }
}
