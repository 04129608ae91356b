import { isIP } from 'node:net';
import Koa, { type Context, type Next } from 'koa';
import type { Logger } from 'pino';
import { TooManyFailures } from '../lib/failure-limit.js';
import { HttpError, jsonErrors } from '../lib/http-errors.js';
import type { TokenStore } from '../lib/tokens.js';

export { TokenStore } from '../lib/tokens.js';
import type { AuthModel, Principal } from './auth/model.js';

export interface State {
  principal?: Principal;
}
export type Ctx = Context & { state: State };

export interface ServiceAppOptions {
  serviceUuid: string;
  version: string;
  application: string;
  auth: AuthModel;
  tokens: TokenStore;
  log: Logger;
  /** Paths that may be requested without credentials. */
  isPublic?: (ctx: Context) => boolean;
}

const UNAUTHORIZED_HEADERS = { 'WWW-Authenticate': 'Basic realm="Factory+"' };

/**
 * The address failed password checks are counted against. A local caller
 * relaying its own clients' credentials (the Cluster Manager) says whose
 * they are in X-Forwarded-For; it is believed only from loopback, where a
 * caller could use another of 127.0.0.0/8 anyway, and counted under the
 * relay's address too, so that one relayed client's failures do not lock
 * out every other client of the relay.
 */
function clientAddress(ctx: Context): string {
  const peer = ctx.req.socket.remoteAddress ?? '';
  const forwarded = ctx.get('x-forwarded-for').trim();
  const loopback = peer === '::1' || peer.startsWith('127.') || peer.startsWith('::ffff:127.');
  return loopback && isIP(forwarded) ? `${peer} for ${forwarded}` : peer;
}

async function authenticate(ctx: Context, auth: AuthModel, tokens: TokenStore): Promise<Principal | undefined> {
  const header = ctx.get('authorization');
  if (!header) return undefined;
  const [scheme, cred] = header.split(/\s+/, 2);
  if (/^basic$/i.test(scheme ?? '') && cred) {
    const text = Buffer.from(cred, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon < 0) return undefined;
    try {
      return await auth.verifyPassword(text.slice(0, colon), text.slice(colon + 1), clientAddress(ctx));
    } catch (e) {
      if (e instanceof TooManyFailures)
        throw new HttpError(429, e.message, { 'Retry-After': String(e.retryAfterSeconds) });
      throw e;
    }
  }
  if (/^bearer$/i.test(scheme ?? '') && cred) {
    const uuid = tokens.lookup(cred);
    return uuid ? auth.principal(uuid) : undefined;
  }
  return undefined;
}

/**
 * A Koa app with what every Factory+ service has: JSON errors, Basic and
 * Bearer authentication on every route, `GET /ping` and `POST /token`.
 */
export function createServiceApp(opts: ServiceAppOptions): Koa<State> {
  const app = new Koa<State>();
  app.proxy = false;
  // A client that hangs up mid-answer (a killed manager) is no fault of the service.
  app.on('error', (err: Error) => opts.log.debug({ err: err.message }, 'request stream error'));
  app.use(jsonErrors(opts.log));
  app.use(async (ctx: Ctx, next: Next) => {
    const principal = await authenticate(ctx, opts.auth, opts.tokens);
    if (principal) ctx.state.principal = principal;
    else if (ctx.get('authorization') || !opts.isPublic?.(ctx)) {
      throw new HttpError(
        401,
        ctx.get('authorization') ? 'invalid credentials' : 'authentication required',
        UNAUTHORIZED_HEADERS,
      );
    }
    await next();
  });
  app.use(async (ctx: Ctx, next: Next) => {
    if (ctx.path === '/ping' && ctx.method === 'GET') {
      ctx.body = {
        service: opts.serviceUuid,
        version: opts.version,
        software: { vendor: 'Factory+ Cluster Manager project', application: opts.application },
      };
      return;
    }
    if (ctx.path === '/token') {
      if (ctx.method !== 'POST') throw new HttpError(405, 'use POST /token', { Allow: 'POST' });
      ctx.body = opts.tokens.issue(ctx.state.principal!.uuid);
      return;
    }
    await next();
  });
  return app;
}

export function principalOf(ctx: Ctx): Principal {
  const p = ctx.state.principal;
  if (!p) throw new HttpError(401, 'authentication required', UNAUTHORIZED_HEADERS);
  return p;
}

export function requirePermission(ctx: Ctx, auth: AuthModel, permission: string, target: string, what: string): void {
  if (!auth.check(principalOf(ctx), permission, target)) {
    throw new HttpError(403, `not permitted: ${what}`);
  }
}

export { listen, type Listening } from '../lib/listen.js';
