import { isUuid } from '../../lib/uuid.js';
import type { AuthDump, GrantSpec } from './model.js';

export const AUTH_SERVICE = 'cab2642a-f7d9-42e5-8845-8f35affe1fd4';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A grant body: three UUIDs and a required boolean `plural`; `uuid` may be echoed back. */
export function parseGrant(body: unknown): GrantSpec | string {
  if (!isObject(body)) return 'a grant must be a JSON object';
  for (const k of Object.keys(body)) {
    if (!['principal', 'permission', 'target', 'plural', 'uuid'].includes(k)) return `unknown grant property "${k}"`;
  }
  for (const k of ['principal', 'permission', 'target'] as const) {
    if (!isUuid(body[k])) return `grant property "${k}" must be a UUID`;
  }
  if (typeof body.plural !== 'boolean') return 'grant property "plural" is required and must be a boolean';
  if (body.uuid !== undefined && !isUuid(body.uuid)) return 'grant property "uuid" must be a UUID';
  return {
    principal: body.principal as string,
    permission: body.permission as string,
    target: body.target as string,
    plural: body.plural,
  };
}

/** A grant search: any subset of the grant's properties. */
export function parseGrantQuery(body: unknown): Partial<GrantSpec> | string {
  if (!isObject(body)) return 'a grant query must be a JSON object';
  const q: Partial<GrantSpec> = {};
  for (const [k, v] of Object.entries(body)) {
    if (v === null || v === undefined) continue;
    if (k === 'principal' || k === 'permission' || k === 'target') {
      if (!isUuid(v)) return `query property "${k}" must be a UUID`;
      q[k] = v;
    } else if (k === 'plural') {
      if (typeof v !== 'boolean') return 'query property "plural" must be a boolean';
      q.plural = v;
    } else {
      return `unknown query property "${k}"`;
    }
  }
  return q;
}

/** Auth dump v2 as in reference §5.2; returns the reason when invalid. */
export function parseAuthDump(body: unknown): AuthDump | string {
  if (!isObject(body)) return 'a dump must be a JSON object';
  if (body.service !== AUTH_SERVICE) return `dump "service" must be ${AUTH_SERVICE}`;
  if (body.version !== 2) return 'only dump version 2 is supported';
  for (const k of Object.keys(body)) {
    if (!['service', 'version', 'identities', 'grants'].includes(k)) return `unknown dump property "${k}"`;
  }
  if (body.identities !== undefined) {
    if (!isObject(body.identities)) return '"identities" must be an object';
    for (const [uuid, ids] of Object.entries(body.identities)) {
      if (!isUuid(uuid)) return `identity key ${uuid} is not a UUID`;
      if (!isObject(ids)) return `identities of ${uuid} must be an object`;
      for (const [kind, name] of Object.entries(ids)) {
        if (kind !== 'kerberos') return `identity kind "${kind}" of ${uuid} is not supported`;
        if (typeof name !== 'string' || !/^[a-zA-Z0-9_./-]+(@[A-Za-z0-9-.]+)?$/.test(name)) {
          return `Kerberos identity of ${uuid} is not a valid principal name`;
        }
      }
    }
  }
  if (body.grants !== undefined) {
    if (!isObject(body.grants)) return '"grants" must be an object';
    for (const [principal, perms] of Object.entries(body.grants)) {
      if (!isUuid(principal)) return `grant principal ${principal} is not a UUID`;
      if (!isObject(perms)) return `grants of ${principal} must be an object`;
      for (const [permission, targets] of Object.entries(perms)) {
        if (!isUuid(permission)) return `permission ${permission} of ${principal} is not a UUID`;
        if (targets === null) continue;
        if (!isObject(targets)) return `targets of ${principal}/${permission} must be null or an object`;
        for (const [target, plural] of Object.entries(targets)) {
          if (!isUuid(target)) return `target ${target} of ${principal}/${permission} is not a UUID`;
          if (typeof plural !== 'boolean' && plural !== 'both') {
            return `target ${target} of ${principal}/${permission} must map to true, false or "both"`;
          }
        }
      }
    }
  }
  return body as unknown as AuthDump;
}
