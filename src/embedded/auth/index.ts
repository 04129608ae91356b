import type Koa from 'koa';
import type { Logger } from 'pino';
import type { ObjectRegistry } from '../configdb/objects.js';
import { createServiceApp, type TokenStore } from '../http-kit.js';
import type { AuthModel } from './model.js';
import { mountRouter } from './router-kit.js';
import { authRouter } from './routes.js';
import { AUTH_SERVICE } from './validate.js';

export interface AuthAppDeps {
  auth: AuthModel;
  /** The class graph the ACL expansion reads; the model listens to its changes. */
  objects: ObjectRegistry;
  tokens: TokenStore;
  log: Logger;
}

/**
 * The embedded Auth service (service `cab2642a-…`, version 2.0.0): ACL reads,
 * grants, Kerberos identities and dump loading over the Factory+ v2 HTTP API.
 */
export function createAuthApp(deps: AuthAppDeps): Koa {
  const app = createServiceApp({
    serviceUuid: AUTH_SERVICE,
    version: '2.0.0',
    application: 'embedded-auth',
    auth: deps.auth,
    tokens: deps.tokens,
    log: deps.log,
  });
  mountRouter(app, authRouter(deps.auth));
  return app;
}
