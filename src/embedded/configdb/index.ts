import type Koa from 'koa';
import type { Logger } from 'pino';
import type { AuthModel } from '../auth/model.js';
import type { Db } from '../db.js';
import { createServiceApp, type TokenStore } from '../http-kit.js';
import { CONFIGDB_SERVICE } from './load.js';
import type { ObjectRegistry } from './objects.js';
import { configDbRoutes } from './routes.js';
import type { ConfigStore } from './store.js';

export { ConfigDbPerm } from './routes.js';

const CONFIGDB_VERSION = '2.0.0';

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
