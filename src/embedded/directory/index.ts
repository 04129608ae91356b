import Router from '@koa/router';
import type Koa from 'koa';
import type { Logger } from 'pino';
import { readJsonBody } from '../../lib/body.js';
import { HttpError } from '../../lib/http-errors.js';
import { isUuid } from '../../lib/uuid.js';
import type { AuthModel } from '../auth/model.js';
import { mountRouter, sendJson, uuidParam } from '../auth/router-kit.js';
import type { Db } from '../db.js';
import { createServiceApp, principalOf, type State, type TokenStore } from '../http-kit.js';

export const DIRECTORY_SERVICE = 'af4a1d66-e6f7-43c4-8a67-0fa3be2b1cf9';

export interface Advertisement {
  service: string;
  url: string | null;
  device: string | null;
}

/** A Sparkplug node (no `device_id`) or device known to the embedded core. */
export interface DirectoryDevice {
  uuid: string;
  group_id: string;
  node_id: string;
  device_id?: string | null;
  online?: boolean;
  last_change?: string | null;
  top_schema?: string | null;
  schemas?: string[];
}

export interface DirectoryAppDeps {
  auth: AuthModel;
  tokens: TokenStore;
  log: Logger;
  /** Holds the advertisements loaded with `POST /load`. */
  db: Db;
  /** The embedded services' own advertisements; they win over loaded ones for the same service. */
  adverts: () => Advertisement[];
  devices: () => DirectoryDevice[];
}

/** Directory dump (reference §4.2), already validated. */
export interface DirectoryDump {
  service: string;
  version: 1;
  advertisements: Advertisement[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates a Directory dump; returns the reason when it is invalid or empty. */
function parseDirectoryDump(body: unknown): DirectoryDump | string {
  if (!isObject(body)) return 'a dump must be a JSON object';
  if (body.service !== DIRECTORY_SERVICE) return `dump "service" must be ${DIRECTORY_SERVICE}`;
  if (body.version !== 1) return 'only dump version 1 is supported';
  if (!Array.isArray(body.advertisements)) return '"advertisements" must be an array';
  if (body.advertisements.length === 0) return 'the dump has no advertisements';
  const adverts: Advertisement[] = [];
  for (const [i, a] of body.advertisements.entries()) {
    if (!isObject(a)) return `advertisement ${i} must be an object`;
    if (!isUuid(a.service)) return `advertisement ${i}: "service" must be a UUID`;
    if (a.url !== undefined && a.url !== null && typeof a.url !== 'string')
      return `advertisement ${i}: "url" must be a string`;
    if (a.device !== undefined && a.device !== null && !isUuid(a.device))
      return `advertisement ${i}: "device" must be a UUID`;
    adverts.push({
      service: a.service,
      url: (a.url as string | null | undefined) ?? null,
      device: (a.device as string | null | undefined) ?? null,
    });
  }
  return { service: DIRECTORY_SERVICE, version: 1, advertisements: adverts };
}

/** Loaded service advertisements, at most one provider per service as in the Factory+ Directory. */
class AdvertStore {
  constructor(private readonly db: Db) {
    db.exec(`CREATE TABLE IF NOT EXISTS directory_advert (
      service TEXT PRIMARY KEY, url TEXT, device TEXT, updated TEXT NOT NULL)`);
  }

  load(adverts: Advertisement[]): void {
    const put = this.db.prepare(`INSERT INTO directory_advert (service, url, device, updated) VALUES (?, ?, ?, ?)
      ON CONFLICT(service) DO UPDATE SET url = excluded.url, device = excluded.device, updated = excluded.updated`);
    const now = new Date().toISOString();
    this.db.transaction(() => {
      for (const a of adverts) put.run(a.service, a.url, a.device, now);
    })();
  }

  all(): Advertisement[] {
    return this.db
      .prepare('SELECT service, url, device FROM directory_advert ORDER BY service')
      .all() as Advertisement[];
  }
}

/**
 * The embedded Directory (reference §4): service lookup (embedded services
 * merged with loaded advertisements), Sparkplug devices and addresses, and
 * `POST /load` of Directory dumps.
 */
export function createDirectoryApp(deps: DirectoryAppDeps): Koa {
  const app = createServiceApp({
    serviceUuid: DIRECTORY_SERVICE,
    version: '1.0.0',
    application: 'embedded-directory',
    auth: deps.auth,
    tokens: deps.tokens,
    log: deps.log,
  });
  const store = new AdvertStore(deps.db);
  const router = new Router<State>();

  const providers = (): Map<string, Advertisement[]> => {
    const map = new Map<string, Advertisement[]>();
    for (const a of store.all()) map.set(a.service, [a]);
    const own = new Map<string, Advertisement[]>();
    for (const a of deps.adverts()) {
      const list = own.get(a.service) ?? [];
      list.push(a);
      own.set(a.service, list);
    }
    for (const [service, list] of own) map.set(service, list);
    return map;
  };

  router.get('/v1/service', (ctx) => sendJson(ctx, [...providers().keys()].sort()));
  router.get('/v1/service/:service', (ctx) => {
    const service = uuidParam(ctx.params.service, 'service UUID');
    // An unknown service is an empty list, not 404.
    sendJson(
      ctx,
      (providers().get(service) ?? []).map((a) => ({ device: a.device ?? null, url: a.url ?? null })),
    );
  });

  const devices = () => deps.devices();
  const isNode = (d: DirectoryDevice) => d.device_id === undefined || d.device_id === null || d.device_id === '';
  const unique = (xs: string[]) => [...new Set(xs)].sort();

  router.get('/v1/device', (ctx) => sendJson(ctx, unique(devices().map((d) => d.uuid))));
  router.get('/v1/device/:device', (ctx) => {
    const uuid = uuidParam(ctx.params.device, 'device UUID');
    const d = devices().find((x) => x.uuid === uuid);
    if (!d) throw new HttpError(404, `no device ${uuid}`);
    sendJson(ctx, {
      ...d,
      uuid: d.uuid,
      group_id: d.group_id,
      node_id: d.node_id,
      device_id: isNode(d) ? null : d.device_id,
      online: d.online ?? false,
      last_change: d.last_change ?? null,
      top_schema: d.top_schema ?? null,
      schemas: d.schemas ?? [],
    });
  });

  router.get('/v1/address', (ctx) =>
    sendJson(ctx, { address: '', children: unique(devices().map((d) => d.group_id)) }),
  );
  router.get('/v1/address/:group', (ctx) => {
    const { group } = ctx.params;
    const nodes = unique(
      devices()
        .filter((d) => d.group_id === group)
        .map((d) => d.node_id),
    );
    if (nodes.length === 0) throw new HttpError(404, `no Sparkplug group ${group}`);
    sendJson(ctx, { address: group, children: nodes });
  });
  router.get('/v1/address/:group/:node', (ctx) => {
    const { group, node } = ctx.params;
    const here = devices().filter((d) => d.group_id === group && d.node_id === node);
    const self = here.find(isNode);
    if (!self) throw new HttpError(404, `no Sparkplug node ${group}/${node}`);
    const children = unique(here.filter((d) => !isNode(d)).map((d) => d.device_id as string));
    sendJson(ctx, { address: `${group}/${node}`, uuid: self.uuid, ...(children.length ? { children } : {}) });
  });
  router.get('/v1/address/:group/:node/:device', (ctx) => {
    const { group, node, device } = ctx.params;
    const d = devices().find((x) => x.group_id === group && x.node_id === node && x.device_id === device);
    if (!d) throw new HttpError(404, `no Sparkplug device ${group}/${node}/${device}`);
    sendJson(ctx, { address: `${group}/${node}/${device}`, uuid: d.uuid });
  });

  // The original also mounts the loader under /v1.
  for (const path of ['/load', '/v1/load']) {
    router.post(path, async (ctx) => {
      // The original answers 403 to others but loads the dump anyway; here it is refused.
      if (!principalOf(ctx).root) throw new HttpError(403, 'not permitted: only the root principal may load dumps');
      const dump = parseDirectoryDump(await readJsonBody(ctx));
      if (typeof dump === 'string') throw new HttpError(422, dump);
      store.load(dump.advertisements);
      deps.log.info({ count: dump.advertisements.length }, 'loaded service advertisements');
      ctx.status = 204;
    });
  }

  mountRouter(app, router);
  return app;
}
