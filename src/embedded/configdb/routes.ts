import type { Next } from 'koa';
import type { Logger } from 'pino';
import type { AuthModel } from '../auth/model.js';
import type { Db } from '../db.js';
import { principalOf, requirePermission, type Ctx } from '../http-kit.js';
import { readJsonBody } from '../../lib/body.js';
import { jsonDepth } from '../../lib/json-limits.js';
import { HttpError } from '../../lib/http-errors.js';
import { isJsonObject, type Json } from '../../lib/merge-patch.js';
import { isUuid, WILDCARD } from '../../lib/uuid.js';
import { loadDump, parseDump } from './load.js';
import { ObjectError, RankClass, UNOWNED, type ObjectRegistry } from './objects.js';
import { evaluatePreconditions, parsePreconditions, type Preconditions } from './preconditions.js';
import { parseSearchQuery } from './search.js';
import { ConfigApp, type ConfigStore } from './store.js';

/** ConfigDB permissions (ACL target in brackets). */
export const ConfigDbPerm = {
  /** [app] */
  ReadConfig: '4a339562-cd57-408d-9d1a-6529a383ea4b',
  /** [app] */
  WriteConfig: '6c799ccb-d2ad-4715-a2a7-3c8728d6c0bf',
  /** [wildcard] */
  ListObjects: '6b4d73ea-50f1-11f0-9333-132037a152a5',
  /** [class] */
  CreateObject: 'ae09e2ba-50ef-11f0-ac03-1f9f5e6548be',
  /** [class] creating with a caller-chosen UUID */
  CreateSpecificObject: 'e3491b9c-50f1-11f0-8e16-e75c8f93227b',
  /** [class] */
  ReadMembers: 'd4fd61da-50ef-11f0-ad24-335234e4c8a2',
  /** [class] */
  WriteMembers: 'c2759f6e-50ef-11f0-8730-ef0ba0514a0e',
  /** [member object] */
  WriteMemberships: 'e08d89bc-50ef-11f0-8352-83e3d3d35028',
  /** [class] */
  ReadSubclasses: 'e6bb9978-50ef-11f0-b3c2-b79b9f64d2ff',
  /** [class] */
  WriteSubclasses: 'ed11bd2a-50ef-11f0-9f85-df13a1dff9e6',
  /** [subclass] */
  WriteSuperclasses: 'fb8e5048-50ef-11f0-91c5-7fd3cb373fbb',
  /** [object] */
  DeleteObject: '6957174b-7b08-45ca-ac5c-c03ab6928a6e',
} as const;

/** Classes the v1 compatibility paths refer to. */
const CompatClass = {
  Device: '18773d6d-a70d-443a-b29a-3f1583195290',
  Schema: '83ee28d4-023e-4c2c-ab86-12c24e86372c',
  App: 'd319bd87-f42b-4b66-be4f-f82ff48b93f0',
} as const;

export interface ConfigDbRouteDeps {
  db: Db;
  objects: ObjectRegistry;
  store: ConfigStore;
  auth: AuthModel;
  log: Logger;
}

type Params = Record<string, string>;
type Handler = (ctx: Ctx, p: Params) => void | Promise<void>;

interface Route {
  pattern: string[];
  methods?: Record<string, Handler>;
  /** Compatibility path: rewritten to this path and dispatched again. */
  alias?: (p: Params) => string;
}

function split(path: string): string[] {
  return path.split('/').filter((s, i, all) => !(s === '' && (i === 0 || i === all.length - 1)));
}

function route(path: string, methods: Record<string, Handler>): Route {
  return { pattern: split(path), methods };
}

function alias(path: string, to: (p: Params) => string): Route {
  return { pattern: split(path), alias: to };
}

function match(pattern: string[], segs: string[]): Params | undefined {
  if (pattern.length !== segs.length) return undefined;
  const params: Params = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = segs[i]!;
    else if (p !== segs[i]) return undefined;
  }
  return params;
}

function decodeSegments(path: string): string[] {
  try {
    return split(path).map((s) => decodeURIComponent(s));
  } catch {
    throw new HttpError(400, 'malformed percent-encoding in the request path');
  }
}

/** Factory+ v2 paths answer 410 for anything that is not a lower-case UUID. */
function requireUuids(p: Params): void {
  for (const v of Object.values(p)) {
    if (!isUuid(v)) throw new HttpError(410, `${JSON.stringify(v)} is not a valid UUID`);
  }
}

function sendJson(ctx: Ctx, status: number, value: Json): void {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(value);
}

function sendEmpty(ctx: Ctx, status: number): void {
  ctx.body = null;
  ctx.status = status;
}

function preconditionsOf(ctx: Ctx): Preconditions {
  return parsePreconditions({
    ifMatch: ctx.get('if-match') || undefined,
    ifNoneMatch: ctx.get('if-none-match') || undefined,
  });
}

function mediaType(ctx: Ctx): string {
  return (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();
}

const MERGE_PATCH = 'application/merge-patch+json';
const LOAD_LIMIT = 32 * 1024 * 1024;

/**
 * The deepest entry the store takes. Hashing, merge patches and schema
 * validation walk an entry recursively; beyond a few thousand levels they
 * run out of stack, which was a 500. Factory+ entries (schemas included)
 * nest a few dozen levels at most, so 256 refuses nothing real.
 */
const MAX_ENTRY_DEPTH = 256;

/** A JSON body no deeper than `limit` levels; 422 otherwise, before anything reads it recursively. */
function shallow(body: Json, limit: number, what: string): Json {
  if (jsonDepth(body, limit) > limit)
    throw new HttpError(422, `${what} nests more than ${limit} levels deep, the limit`);
  return body;
}

/** Turns registry errors into HTTP answers with their own status. */
function objectErrors() {
  return async (ctx: Ctx, next: Next): Promise<void> => {
    try {
      await next();
    } catch (e) {
      if (e instanceof ObjectError && Array.isArray(e.detail)) {
        // ACS answers some conflicts with the bare list of what is in the way.
        ctx.status = e.status;
        ctx.body = e.detail;
        return;
      }
      if (e instanceof ObjectError) {
        const detail =
          e.detail === undefined
            ? undefined
            : isJsonObject(e.detail as Json)
              ? (e.detail as Record<string, unknown>)
              : { detail: e.detail };
        throw new HttpError(e.status, e.message, {}, detail);
      }
      throw e;
    }
  };
}

/**
 * The ConfigDB HTTP API (v2 with the v1 compatibility paths, search and
 * `/load`) as one Koa middleware, to be mounted after authentication.
 */
export function configDbRoutes(deps: ConfigDbRouteDeps) {
  const { store, objects, auth, log } = deps;
  const P = ConfigDbPerm;

  const need = (ctx: Ctx, perm: string, target: string, what: string) =>
    requirePermission(ctx, auth, perm, target, what);

  // ---- config entries ------------------------------------------------------

  const entryGet: Handler = (ctx, { app, obj }) => {
    need(ctx, P.ReadConfig, app!, `read config of application ${app}`);
    const pre = preconditionsOf(ctx);
    if (!store.appExists(app!)) throw new HttpError(404, `application ${app} is not a registered object`);
    const entry = store.get(app!, obj!);
    const result = evaluatePreconditions(pre, entry?.etag, true);
    if (result === 'not-modified') {
      ctx.set('ETag', `"${entry!.etag}"`);
      sendEmpty(ctx, 304);
      return;
    }
    if (result === 'failed') throw new HttpError(412, 'precondition failed: the entry does not have the expected ETag');
    if (!entry) throw new HttpError(404, `no entry for object ${obj} in application ${app}`);
    ctx.set('ETag', `"${entry.etag}"`);
    sendJson(ctx, 200, entry.json);
  };

  const entryPut: Handler = async (ctx, { app, obj }) => {
    need(ctx, P.WriteConfig, app!, `write config of application ${app}`);
    const pre = preconditionsOf(ctx);
    const body = shallow(await readJsonBody(ctx), MAX_ENTRY_DEPTH, 'the entry');
    const result = store.put(app!, obj!, body, { preconditions: pre });
    sendEmpty(ctx, result === 'created' ? 201 : 204);
  };

  const entryPatch: Handler = async (ctx, { app, obj }) => {
    if (mediaType(ctx) !== MERGE_PATCH) {
      throw new HttpError(415, `a merge patch must be sent as ${MERGE_PATCH}`);
    }
    need(ctx, P.ReadConfig, app!, `read config of application ${app}`);
    need(ctx, P.WriteConfig, app!, `write config of application ${app}`);
    const pre = preconditionsOf(ctx);
    const patch = shallow(await readJsonBody(ctx, { types: [MERGE_PATCH] }), MAX_ENTRY_DEPTH, 'the merge patch');
    store.patch(app!, obj!, patch, { preconditions: pre });
    sendEmpty(ctx, 204);
  };

  const entryDelete: Handler = (ctx, { app, obj }) => {
    need(ctx, P.WriteConfig, app!, `write config of application ${app}`);
    const pre = preconditionsOf(ctx);
    store.delete(app!, obj!, { preconditions: pre });
    sendEmpty(ctx, 204);
  };

  const entryList: Handler = (ctx, { app }) => {
    need(ctx, P.ReadConfig, app!, `read config of application ${app}`);
    sendJson(ctx, 200, store.list(app!));
  };

  const entryClassList: Handler = (ctx, { app, cls }) => {
    need(ctx, P.ReadConfig, app!, `read config of application ${app}`);
    sendJson(ctx, 200, store.listInClass(app!, cls!));
  };

  const search: Handler = (ctx, { app, cls }) => {
    need(ctx, P.ReadConfig, app!, `read config of application ${app}`);
    const query = parseSearchQuery(ctx.querystring);
    sendJson(ctx, 200, store.search(app!, query, cls) as Json);
  };

  // ---- objects ---------------------------------------------------------------

  const objectCreate: Handler = async (ctx) => {
    const body = await readJsonBody(ctx);
    if (!isJsonObject(body)) throw new HttpError(422, 'the request body must be a JSON object');
    const cls = body.class;
    if (cls === undefined) throw new HttpError(422, '"class" is required');
    if (!isUuid(cls)) throw new HttpError(422, '"class" must be a UUID');
    if ('rank' in body) throw new HttpError(422, '"rank" follows from the class and cannot be given');
    const uuid = body.uuid ?? undefined;
    if (uuid !== undefined && !isUuid(uuid)) throw new HttpError(422, '"uuid" must be a UUID');
    const ownerGiven = body.owner ?? undefined;
    if (ownerGiven !== undefined && !isUuid(ownerGiven)) throw new HttpError(422, '"owner" must be a UUID');
    if (uuid !== undefined) need(ctx, P.CreateSpecificObject, cls, `create object ${uuid} in class ${cls}`);
    else need(ctx, P.CreateObject, cls, `create objects in class ${cls}`);
    const principal = principalOf(ctx);
    const owner = ownerGiven ?? principal.uuid;
    if (
      ownerGiven !== undefined &&
      ownerGiven !== principal.uuid &&
      ownerGiven !== UNOWNED &&
      !objects.exists(ownerGiven) &&
      !auth.principal(ownerGiven)
    ) {
      throw new HttpError(409, `owner ${ownerGiven} is not a known object`);
    }
    const { registration, created } = store.createObject({ class: cls, uuid, owner });
    sendJson(ctx, created ? 201 : 200, { ...registration });
  };

  const objectDelete: Handler = (ctx, { obj }) => {
    need(ctx, P.DeleteObject, obj!, `delete object ${obj}`);
    store.deleteObject(obj!);
    sendEmpty(ctx, 204);
  };

  const objectList: Handler = (ctx) => {
    need(ctx, P.ListObjects, WILDCARD, 'list objects');
    sendJson(ctx, 200, objects.all());
  };

  const objectGet: Handler = (ctx, { obj }) => {
    need(ctx, P.ReadConfig, ConfigApp.Registration, 'read object registrations');
    const reg = objects.get(obj!);
    if (!reg) throw new HttpError(404, `object ${obj} does not exist`);
    sendJson(ctx, 200, { ...reg });
  };

  // ---- classes ---------------------------------------------------------------

  const requireClass = (cls: string) => {
    if (!objects.exists(cls)) throw new HttpError(404, `class ${cls} does not exist`);
  };

  const classInfo: Handler = (ctx, { cls }) => {
    need(ctx, P.ReadMembers, cls!, `read members of class ${cls}`);
    need(ctx, P.ReadSubclasses, cls!, `read subclasses of class ${cls}`);
    requireClass(cls!);
    sendJson(ctx, 200, { members: objects.directMembers(cls!), subclasses: objects.directSubclasses(cls!) });
  };

  interface Relation {
    perm: string;
    what: string;
    list: (cls: string) => string[];
  }
  const relations: Record<string, Relation> = {
    member: { perm: P.ReadMembers, what: 'read members', list: (c) => objects.members(c) },
    'direct/member': { perm: P.WriteMembers, what: 'read direct members', list: (c) => objects.directMembers(c) },
    subclass: { perm: P.ReadSubclasses, what: 'read subclasses', list: (c) => objects.subclasses(c) },
    'direct/subclass': {
      perm: P.WriteSubclasses,
      what: 'read direct subclasses',
      list: (c) => objects.directSubclasses(c),
    },
  };

  const relList =
    (rel: Relation): Handler =>
    (ctx, { cls }) => {
      need(ctx, rel.perm, cls!, `${rel.what} of class ${cls}`);
      requireClass(cls!);
      sendJson(ctx, 200, rel.list(cls!));
    };

  const relHas =
    (rel: Relation): Handler =>
    (ctx, { cls, obj }) => {
      need(ctx, rel.perm, cls!, `${rel.what} of class ${cls}`);
      if (objects.exists(cls!) && rel.list(cls!).includes(obj!)) sendEmpty(ctx, 204);
      else throw new HttpError(404, `${obj} is not in that relation with ${cls}`);
    };

  const memberPut: Handler = (ctx, { cls, obj }) => {
    need(ctx, P.WriteMembers, cls!, `change members of class ${cls}`);
    need(ctx, P.WriteMemberships, obj!, `change the classes of ${obj}`);
    store.transaction(() => objects.addMember(cls!, obj!));
    sendEmpty(ctx, 204);
  };

  const memberDelete: Handler = (ctx, { cls, obj }) => {
    need(ctx, P.WriteMembers, cls!, `change members of class ${cls}`);
    need(ctx, P.WriteMemberships, obj!, `change the classes of ${obj}`);
    store.transaction(() => objects.removeMember(cls!, obj!));
    sendEmpty(ctx, 204);
  };

  const subclassPut: Handler = (ctx, { cls, obj }) => {
    need(ctx, P.WriteSubclasses, cls!, `change subclasses of class ${cls}`);
    need(ctx, P.WriteSuperclasses, obj!, `change the superclasses of ${obj}`);
    store.transaction(() => objects.addSubclass(cls!, obj!));
    sendEmpty(ctx, 204);
  };

  const subclassDelete: Handler = (ctx, { cls, obj }) => {
    need(ctx, P.WriteSubclasses, cls!, `change subclasses of class ${cls}`);
    need(ctx, P.WriteSuperclasses, obj!, `change the superclasses of ${obj}`);
    store.transaction(() => objects.removeSubclass(cls!, obj!));
    sendEmpty(ctx, 204);
  };

  // ---- dumps -----------------------------------------------------------------

  const load: Handler = async (ctx) => {
    const principal = principalOf(ctx);
    if (!principal.root) throw new HttpError(403, 'not permitted: loading dumps needs a root principal');
    // An entry sits three levels down in a dump (configs, application, object).
    const body = shallow(await readJsonBody(ctx, { limit: LOAD_LIMIT }), MAX_ENTRY_DEPTH + 3, 'the dump');
    const dump = parseDump(body);
    const summary = loadDump({ store, objects, log }, dump, principal.uuid);
    log.info({ ...summary, principal: principal.uuid }, 'ConfigDB dump loaded');
    sendEmpty(ctx, 204);
  };

  const forbidden: Handler = () => {
    throw new HttpError(403, 'not permitted: use /v2/object/{uuid} and /v2/app/{uuid}/object/{uuid} instead');
  };

  // ---- route table -----------------------------------------------------------

  const entry = { GET: entryGet, PUT: entryPut, PATCH: entryPatch, DELETE: entryDelete };
  const routes: Route[] = [
    route('/v2/app/:app/object/:obj', entry),
    route('/v2/app/:app/object', { GET: entryList }),
    route('/v2/app/:app/class/:cls', { GET: entryClassList }),
    route('/v2/object', { GET: objectList, POST: objectCreate }),
    route('/v2/object/:obj', { GET: objectGet, DELETE: objectDelete }),
    route('/v2/class/:cls', { GET: classInfo }),
    route('/v2/class/:cls/member', { GET: relList(relations.member!) }),
    route('/v2/class/:cls/member/:obj', { GET: relHas(relations.member!) }),
    route('/v2/class/:cls/subclass', { GET: relList(relations.subclass!) }),
    route('/v2/class/:cls/subclass/:obj', { GET: relHas(relations.subclass!) }),
    route('/v2/class/:cls/direct/member', { GET: relList(relations['direct/member']!) }),
    route('/v2/class/:cls/direct/member/:obj', {
      GET: relHas(relations['direct/member']!),
      PUT: memberPut,
      DELETE: memberDelete,
    }),
    route('/v2/class/:cls/direct/subclass', { GET: relList(relations['direct/subclass']!) }),
    route('/v2/class/:cls/direct/subclass/:obj', {
      GET: relHas(relations['direct/subclass']!),
      PUT: subclassPut,
      DELETE: subclassDelete,
    }),
    alias('/v2/app', () => `/v2/class/${CompatClass.App}/member`),
    alias('/v2/class', () => `/v2/class/${RankClass.r1}/member`),

    route('/v1/app/:app/search', { GET: search }),
    route('/v1/app/:app/class/:cls/search', { GET: search }),
    alias('/v1/app', () => `/v2/class/${CompatClass.App}/member`),
    route('/v1/app/:app', { GET: forbidden }),
    alias('/v1/app/:app/object/:obj', (p) => `/v2/app/${p.app}/object/${p.obj}`),
    alias('/v1/app/:app/device/:obj', (p) => `/v2/app/${p.app}/object/${p.obj}`),
    alias('/v1/app/:app/schema/:obj', (p) => `/v2/app/${p.app}/object/${p.obj}`),
    alias('/v1/app/:app/app/:obj', (p) => `/v2/app/${p.app}/object/${p.obj}`),
    alias('/v1/app/:app/device', (p) => `/v2/app/${p.app}/class/${CompatClass.Device}`),
    alias('/v1/app/:app/schema', (p) => `/v2/app/${p.app}/class/${CompatClass.Schema}`),
    alias('/v1/app/:app/app', (p) => `/v2/app/${p.app}/class/${CompatClass.App}`),
    alias('/v1/app/:app/config', (p) => `/v2/app/${p.app}/object/${p.app}`),
    alias('/v1/app/:app/config-schema', (p) => `/v2/app/${ConfigApp.ConfigSchema}/object/${p.app}`),
    alias('/v1/app/:app/object', (p) => `/v2/app/${p.app}/object`),
    alias('/v1/app/:app/class/:cls', (p) => `/v2/app/${p.app}/class/${p.cls}`),
    alias('/v1/object', () => '/v2/object'),
    alias('/v1/object/:obj', (p) => `/v2/object/${p.obj}`),
    alias('/v1/class', () => `/v2/class/${RankClass.r1}/member`),
    alias('/v1/class/:cls', (p) => `/v2/class/${p.cls}/member`),

    route('/load', { POST: load }),
    alias('/v1/load', () => '/load'),
  ];

  async function dispatch(ctx: Ctx, path: string, depth: number): Promise<void> {
    const segs = decodeSegments(path);
    for (const r of routes) {
      const params = match(r.pattern, segs);
      if (!params) continue;
      if (r.alias) {
        requireUuids(params);
        if (depth > 2) throw new HttpError(500, 'compatibility path loop');
        return dispatch(ctx, r.alias(params), depth + 1);
      }
      const methods = r.methods!;
      const handler = methods[ctx.method] ?? (ctx.method === 'HEAD' ? methods.GET : undefined);
      if (!handler) {
        const allow = Object.keys(methods);
        if (methods.GET) allow.push('HEAD');
        throw new HttpError(405, `${ctx.method} is not allowed here`, { Allow: allow.join(', ') });
      }
      requireUuids(params);
      return handler(ctx, params);
    }
    throw new HttpError(404, `no route for ${ctx.method} ${ctx.path}`);
  }

  const errors = objectErrors();
  return (ctx: Ctx, next: Next) =>
    errors(ctx, async () => {
      const p = ctx.path;
      if (p === '/load' || p.startsWith('/v1/') || p.startsWith('/v2/') || p === '/v1' || p === '/v2') {
        await dispatch(ctx, p, 0);
        return;
      }
      await next();
    });
}
