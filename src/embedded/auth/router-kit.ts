import type Koa from 'koa';
import type { Context, Next } from 'koa';
import type Router from '@koa/router';
import { HttpError } from '../../lib/http-errors.js';
import { isUuid } from '../../lib/uuid.js';
import type { State } from '../http-kit.js';

/**
 * Mounts a router so that a known path with the wrong method answers a JSON
 * 405 (or 501 for methods the router does not know) with an `Allow` header.
 */
export function mountRouter(app: Koa<State>, router: Router<State>): void {
  app.use(async (ctx: Context, next: Next) => {
    await next();
    if ((ctx.status === 405 || ctx.status === 501) && (ctx.body === undefined || ctx.body === null)) {
      const allow = String(ctx.response.get('Allow') ?? '');
      throw new HttpError(ctx.status, `${ctx.method} is not allowed on ${ctx.path}`, allow ? { Allow: allow } : {});
    }
  });
  app.use(router.routes());
  app.use(router.allowedMethods());
}

/** Sends any JSON value, including a bare string (which Koa would send as text). */
export function sendJson(ctx: Context, value: unknown, status = 200): void {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(value);
}

/** A UUID path parameter; anything else is 410 Gone, as on Factory+ services. */
export function uuidParam(value: string | undefined, what = 'UUID'): string {
  if (!isUuid(value)) throw new HttpError(410, `not a valid ${what}: ${value ?? ''}`);
  return value;
}
