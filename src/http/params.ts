import type { Context } from 'koa';
import { HttpError } from '../lib/http-errors.js';
import type { AuthState } from './authn.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The `:uuid` path parameter, lower-cased; 400 when it is not a UUID. */
export function clusterParam(ctx: Context): string {
  const v = String((ctx as Context & { params: Record<string, string> }).params.uuid ?? '');
  if (!UUID.test(v.toLowerCase())) throw new HttpError(400, `${JSON.stringify(v.slice(0, 80))} is not a cluster UUID`);
  return v.toLowerCase();
}

export function principalOf(ctx: Context): string {
  const p = (ctx.state as AuthState).principal;
  if (!p) throw new HttpError(401, 'authentication required', { 'WWW-Authenticate': 'Basic realm="Factory+"' });
  return p;
}

/** `?dryrun` counts when present at all, as in the original. */
export function isDryRun(ctx: Context): boolean {
  return Object.prototype.hasOwnProperty.call(ctx.query, 'dryrun');
}
