import { resolve } from 'node:path';
import type Koa from 'koa';
import type { Logger } from 'pino';
import { BootstrapTokens, loadOrCreateKey } from '../bootstrap/token.js';
import type { Manager } from '../manager.js';
import { createApp } from './app.js';
import { Authenticator } from './authn.js';
import { AclChecker } from './authz.js';
import type { ApiDeps } from './deps.js';
import { JwtVerifier } from './jwt.js';
import { Metrics } from './metrics.js';
import { TokenStore } from '../lib/tokens.js';
import { dependencyHealth } from './routes/service.js';

export const VERSION = '0.1.0';

/** Builds the HTTP API over a running manager; `externalUrl` is used when none is configured. */
export function createApi(manager: Manager, log: Logger, opts: { externalUrl: () => string; now?: () => number }): { app: Koa; deps: ApiDeps } {
  const { config } = manager;
  const h = config.http;
  const u = config.uuids;
  const now = opts.now ?? Date.now;
  const tokens = new TokenStore(now, h.tokenTtlSeconds * 1000);
  const deps: ApiDeps = {
    manager,
    tokens,
    authn: new Authenticator({
      authBase: () => manager.dir.serviceUrl(u.service.auth), tokens, passwordLimits: config.passwordLimits,
      jwt: h.oidc.jwksUrl ? new JwtVerifier({ jwksUrl: h.oidc.jwksUrl, issuer: h.oidc.issuer, audience: h.oidc.audience, now }) : undefined,
    }),
    acl: new AclChecker(manager.auth, u.special.wildcard, h.aclCacheSeconds * 1000),
    bootstrapTokens: new BootstrapTokens(loadOrCreateKey(resolve(config.dataDir)), { ttlSeconds: h.bootstrapTtlSeconds, now }),
    metrics: new Metrics({
      phases: () => manager.status.phaseCounts(), queue: () => manager.controller.stats, statusWritesPending: () => manager.status.pending,
      repoWritesWaiting: () => manager.repos.waiting,
      mqtt: () => ({ changeFeed: manager.feed.connected, sparkplug: manager.node?.connected ?? false }),
      lastResyncMs: () => manager.controller.lastResyncMs,
      dependencies: () => dependencyHealth(manager),
    }),
    externalUrl: () => h.externalUrl ?? opts.externalUrl(),
    version: VERSION,
    log,
    now: () => new Date(now()),
  };
  return { app: createApp(deps), deps };
}
