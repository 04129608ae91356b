import Router from '@koa/router';
import { readJsonBody } from '../../lib/body.js';
import { HttpError } from '../../lib/http-errors.js';
import { isUuid, WILDCARD } from '../../lib/uuid.js';
import { principalOf, type Ctx, type State } from '../http-kit.js';
import { DumpConflict, UPN_RE, type AuthModel, type Principal, type TargetTest } from './model.js';
import { sendJson, uuidParam } from './router-kit.js';
import { parseAuthDump, parseGrant, parseGrantQuery } from './validate.js';

export const AuthPerm = {
  readAcl: 'ba566181-0e8a-405b-b16e-3fb89130fbee',
  manageAcl: '3a41f5ce-fc08-4669-9762-ec9e71061168',
  manageKerberos: '327c4cc8-9c46-4e1e-bb6b-257ace37b0f6',
  readKerberos: 'e8c9c0f7-0d54-4db2-b8d6-cd80c45f6a5c',
} as const;

/** Identity kinds this Auth stores; the Sparkplug kind of Factory+ is not kept here. */
const KINDS = new Set(['kerberos']);

/** The values the original accepts for `by-uuid` (an absent value counts as false). */
const BOOLEANS: Record<string, boolean> = {
  true: true,
  false: false,
  1: true,
  0: false,
  on: true,
  off: false,
  yes: true,
  no: false,
};

function upnParam(value: string | undefined): string {
  if (value === undefined || !UPN_RE.test(value))
    throw new HttpError(410, `not a valid Kerberos principal name: ${value ?? ''}`);
  return value;
}

function forbidden(what: string): HttpError {
  return new HttpError(403, `not permitted: ${what}`);
}

/**
 * The v2 Auth API of reference §5.1/§5.2, the legacy `/authz/acl` read and
 * `POST /load`. Authentication, `/ping` and `/token` come from the service app.
 */
export function authRouter(auth: AuthModel): Router<State> {
  const router = new Router<State>();

  /** Reading identities: ReadKerberos, or ManageKerberos (whoever may set a mapping may see it). */
  const identityReader = (caller: Principal): TargetTest | null => {
    const read = auth.permitted(caller, AuthPerm.readKerberos);
    const manage = auth.permitted(caller, AuthPerm.manageKerberos);
    if (!read && !manage) return null;
    return (t) => (read?.(t) ?? false) || (manage?.(t) ?? false);
  };

  /** The principal's ACL, restricted to the permissions the caller may read (ReadACL on them). */
  const readableAcl = (ctx: Ctx, principal: string) => {
    const canRead = auth.permitted(principalOf(ctx), AuthPerm.readAcl);
    if (!canRead) throw forbidden('reading ACLs needs Read ACL');
    return auth.acl(principal).filter((e) => canRead(e.permission));
  };

  const aclByUpn = (ctx: Ctx, upn: string) => {
    const p = auth.principalByUpn(upn);
    // An unknown name is not a 404: no ACL has been checked yet.
    sendJson(ctx, p ? readableAcl(ctx, p.uuid) : []);
  };

  const aclByUuid = (ctx: Ctx, uuid: string) => {
    if (!auth.isPrincipal(uuid)) throw new HttpError(404, `no principal ${uuid}`);
    sendJson(ctx, readableAcl(ctx, uuid));
  };

  router.get('/v2/acl/kerberos/:upn', (ctx) => aclByUpn(ctx, upnParam(ctx.params.upn)));
  router.get('/v2/acl/:principal', (ctx) => aclByUuid(ctx, uuidParam(ctx.params.principal, 'principal UUID')));

  // Legacy read, as the old clients use it: forwards to the v2 reads.
  // `permission` is accepted for compatibility and ignored (the whole readable ACL is returned).
  router.get('/authz/acl', (ctx) => {
    const q = ctx.query;
    const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
    const byUuidRaw = one(q['by-uuid']);
    const byUuid = byUuidRaw === undefined ? false : BOOLEANS[byUuidRaw];
    if (byUuid === undefined) throw new HttpError(400, '"by-uuid" must be a boolean');
    const principal = one(q.principal);
    const permission = one(q.permission);
    if (permission !== undefined && !isUuid(permission))
      throw new HttpError(410, `not a valid permission UUID: ${permission}`);
    if (byUuid) aclByUuid(ctx, uuidParam(principal, 'principal UUID'));
    else aclByUpn(ctx, upnParam(principal));
  });

  /*
   * Grants. Reading, replacing and deleting one grant needs Manage ACL on
   * its permission. Listing and finding filter as ACS Auth does (quirk
   * §5.2): each *grant UUID* is tested against the caller's Manage ACL
   * targets, so only a wildcard holder (or one granted Manage ACL on that
   * grant's own UUID) sees a grant there. A client that manages a single
   * permission, as the Cluster Manager does, must therefore keep the UUIDs
   * that adding a grant answers with; behaving the same here keeps a test
   * from passing on what a real installation refuses.
   */
  const manageAcl = (ctx: Ctx): TargetTest => {
    const test = auth.permitted(principalOf(ctx), AuthPerm.manageAcl);
    if (!test) throw forbidden('managing grants needs Manage ACL');
    return test;
  };

  router.get('/v2/grant', (ctx) => {
    const test = manageAcl(ctx);
    sendJson(
      ctx,
      auth
        .findGrants({})
        .map((g) => g.uuid)
        .filter(test),
    );
  });

  router.post('/v2/grant', async (ctx) => {
    const spec = parseGrant(await readJsonBody(ctx));
    if (typeof spec === 'string') throw new HttpError(422, spec);
    if (!manageAcl(ctx)(spec.permission)) throw forbidden(`Manage ACL on ${spec.permission}`);
    const r = auth.addGrant(spec);
    sendJson(ctx, { uuid: r.uuid }, r.created ? 201 : 200);
  });

  router.post('/v2/grant/find', async (ctx) => {
    const q = parseGrantQuery(await readJsonBody(ctx));
    if (typeof q === 'string') throw new HttpError(422, q);
    const test = manageAcl(ctx);
    sendJson(
      ctx,
      auth
        .findGrants(q)
        .map((g) => g.uuid)
        .filter(test),
    );
  });

  router.get('/v2/grant/:uuid', (ctx) => {
    const uuid = uuidParam(ctx.params.uuid, 'grant UUID');
    const g = auth.getGrant(uuid);
    if (!g) throw new HttpError(404, `no grant ${uuid}`);
    if (!manageAcl(ctx)(g.permission)) throw forbidden(`Manage ACL on ${g.permission}`);
    sendJson(ctx, g);
  });

  router.put('/v2/grant/:uuid', async (ctx) => {
    const uuid = uuidParam(ctx.params.uuid, 'grant UUID');
    const body = await readJsonBody(ctx);
    const spec = parseGrant(body);
    if (typeof spec === 'string') throw new HttpError(422, spec);
    if ((body as { uuid?: string }).uuid !== undefined && (body as { uuid?: string }).uuid !== uuid) {
      throw new HttpError(422, 'grant "uuid" does not match the URL');
    }
    const test = manageAcl(ctx);
    if (!test(spec.permission)) throw forbidden(`Manage ACL on ${spec.permission}`);
    const existing = auth.getGrant(uuid);
    if (!existing) throw new HttpError(404, `no grant ${uuid}`);
    // Changing the permission needs Manage ACL on both the old and the new one.
    if (!test(existing.permission)) throw forbidden(`Manage ACL on ${existing.permission}`);
    const r = auth.replaceGrant(uuid, spec);
    if (r === 'missing') throw new HttpError(404, `no grant ${uuid}`);
    if (r === 'duplicate') throw new HttpError(409, 'an identical grant already exists');
    ctx.status = 204;
  });

  router.delete('/v2/grant/:uuid', (ctx) => {
    const uuid = uuidParam(ctx.params.uuid, 'grant UUID');
    const existing = auth.getGrant(uuid);
    if (!existing) throw new HttpError(404, `no grant ${uuid}`);
    if (!manageAcl(ctx)(existing.permission)) throw forbidden(`Manage ACL on ${existing.permission}`);
    auth.deleteGrant(uuid);
    ctx.status = 204;
  });

  // Identities.
  router.get('/v2/principal', (ctx) => {
    const test = identityReader(principalOf(ctx));
    if (!test) throw forbidden('reading identities needs Read Kerberos mappings');
    sendJson(ctx, auth.principalsWithIdentity().filter(test));
  });

  router.get('/v2/principal/:uuid', (ctx) => {
    const uuid = uuidParam(ctx.params.uuid, 'principal UUID');
    if (!identityReader(principalOf(ctx))?.(uuid)) throw forbidden(`reading identities of ${uuid}`);
    const p = auth.principal(uuid);
    if (!p?.upn) throw new HttpError(404, `no identities for ${uuid}`);
    sendJson(ctx, { kerberos: p.upn, uuid });
  });

  // Registered before `:uuid/:kind`, which would take "groups" for a kind.
  router.get('/v2/principal/:uuid/groups', (ctx) => {
    const uuid = uuidParam(ctx.params.uuid, 'principal UUID');
    // As ACS: group membership is identity-level data, for holders of Read Kerberos mappings on the wildcard.
    if (!auth.permitted(principalOf(ctx), AuthPerm.readKerberos, false)?.(WILDCARD)) {
      throw forbidden('reading principal groups needs Read Kerberos mappings on the wildcard');
    }
    const groups = auth.groupsOf(uuid);
    if (!groups) throw new HttpError(410, `${uuid} is not a principal`);
    sendJson(ctx, groups);
  });

  router.get('/v2/principal/:uuid/:kind', (ctx) => {
    const uuid = uuidParam(ctx.params.uuid, 'principal UUID');
    if (!identityReader(principalOf(ctx))?.(uuid)) throw forbidden(`reading identities of ${uuid}`);
    const p = KINDS.has(ctx.params.kind) ? auth.principal(uuid) : undefined;
    if (!p?.upn) throw new HttpError(404, `no ${ctx.params.kind} identity for ${uuid}`);
    sendJson(ctx, p.upn);
  });

  const identityWrite = (ctx: Ctx): string => {
    const uuid = uuidParam(ctx.params.uuid, 'principal UUID');
    if (!KINDS.has(ctx.params.kind)) throw new HttpError(404, `unknown identity kind ${ctx.params.kind}`);
    if (!auth.check(principalOf(ctx), AuthPerm.manageKerberos, uuid))
      throw forbidden(`Manage Kerberos mappings on ${uuid}`);
    return uuid;
  };

  router.put('/v2/principal/:uuid/:kind', async (ctx) => {
    const uuid = identityWrite(ctx);
    const name = await readJsonBody(ctx);
    if (typeof name !== 'string' || !UPN_RE.test(name))
      throw new HttpError(422, 'the body must be a JSON string holding a Kerberos principal name');
    if (auth.setIdentity(uuid, name) === 'conflict')
      throw new HttpError(409, `${name} or ${uuid} already has a different identity record`);
    ctx.status = 204;
  });

  router.delete('/v2/principal/:uuid/:kind', (ctx) => {
    const uuid = identityWrite(ctx);
    if (!auth.deleteIdentity(uuid)) throw new HttpError(404, `no ${ctx.params.kind} identity for ${uuid}`);
    ctx.status = 204;
  });

  // Identity kinds: this Auth, like ACS's, knows Kerberos names only.
  router.get('/v2/identity', (ctx) => sendJson(ctx, [...KINDS]));

  router.get('/v2/identity/:kind', (ctx) => {
    const { kind } = ctx.params;
    if (!KINDS.has(kind)) throw new HttpError(404, `unknown identity kind ${kind}`);
    const test = identityReader(principalOf(ctx));
    if (!test) throw forbidden('reading identities needs Read Kerberos mappings');
    sendJson(
      ctx,
      auth
        .principalsWithIdentity()
        .filter(test)
        .map((u) => auth.principal(u)!.upn!)
        .sort(),
    );
  });

  router.get('/v2/identity/:kind/:name', (ctx) => {
    const { kind, name } = ctx.params;
    if (!KINDS.has(kind)) throw new HttpError(404, `unknown identity kind ${kind}`);
    const upn = upnParam(name);
    const test = identityReader(principalOf(ctx));
    if (!test) throw forbidden('reading identities needs Read Kerberos mappings');
    const p = auth.principalByUpn(upn);
    if (!p || !test(p.uuid)) throw new HttpError(404, `no principal with identity ${upn}`);
    sendJson(ctx, p.uuid);
  });

  // Anyone may ask who they are.
  router.get('/v2/whoami', (ctx) => {
    const p = principalOf(ctx);
    sendJson(ctx, p.upn ? { kerberos: p.upn, uuid: p.uuid } : { uuid: p.uuid });
  });
  router.get('/v2/whoami/uuid', (ctx) => sendJson(ctx, principalOf(ctx).uuid));

  // Dump loading is for the root principal only.
  router.post('/load', async (ctx) => {
    if (!principalOf(ctx).root) throw forbidden('only the root principal may load dumps');
    const dump = parseAuthDump(await readJsonBody(ctx));
    if (typeof dump === 'string') throw new HttpError(422, dump);
    try {
      auth.loadDump(dump);
    } catch (e) {
      if (e instanceof DumpConflict) throw new HttpError(409, e.message);
      throw e;
    }
    ctx.status = 204;
  });

  return router;
}
