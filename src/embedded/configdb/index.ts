import type Koa from 'koa';
import type { Logger } from 'pino';
import type { AuthModel } from '../auth/model.js';
import type { Db } from '../db.js';
import { createServiceApp, type TokenStore } from '../http-kit.js';
import { CONFIGDB_SERVICE } from './load.js';
import type { ObjectRegistry } from './objects.js';
import { configDbRoutes } from './routes.js';
import type { ConfigStore } from './store.js';

export { ConfigStore, ConfigApp } from './store.js';
export type { ConfigEntry, ConfigChangeListener, WriteOptions, WriteResult } from './store.js';
export { ConfigDbPerm, configDbRoutes } from './routes.js';
export { CONFIGDB_SERVICE, loadDump, parseDump } from './load.js';
export type { ConfigDump, DumpObject, LoadSummary } from './load.js';
export { parseSearchQuery, evaluateSearch } from './search.js';
export type { SearchQuery, SearchResult } from './search.js';
export { parsePreconditions, evaluatePreconditions } from './preconditions.js';
export type { Preconditions } from './preconditions.js';

export const CONFIGDB_VERSION = '2.0.0';

export interface ConfigDbDeps {
  db: Db;
  objects: ObjectRegistry;
  store: ConfigStore;
  auth: AuthModel;
  tokens: TokenStore;
  log: Logger;
  version?: string;
}

/**
 * The embedded Config Store: the Factory+ ConfigDB HTTP API (v2, the v1
 * compatibility paths, search and `/load`) over the local SQLite store.
 * Every route but `/ping` needs Basic or Bearer credentials.
 */
export function createConfigDbApp(deps: ConfigDbDeps): Koa {
  const app = createServiceApp({
    serviceUuid: CONFIGDB_SERVICE,
    version: deps.version ?? CONFIGDB_VERSION,
    application: 'Embedded Config Store',
    auth: deps.auth,
    tokens: deps.tokens,
    log: deps.log,
    isPublic: (ctx) => ctx.path === '/ping' && ctx.method === 'GET',
  });
  app.use(configDbRoutes(deps));
  return app;
}
