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

const VERSION = '0.1.0';

/** Builds the HTTP API over a running manager; `externalUrl` is used when none is configured. */
export function createApi(
  manager: Manager,
  log: Logger,
  opts: { externalUrl: () => string; now?: () => number; eventStream?: ApiDeps['eventStream'] },
): { app: Koa; deps: ApiDeps } {
  const { config } = manager;
  const h = config.http;
  const u = config.uuids;
  const now = opts.now ?? Date.now;
  const tokens = new TokenStore(now, h.tokenTtlSeconds * 1000);
  const jwt = h.oidc.jwksUrl || h.oidc.discoveryUrl ? new JwtVerifier({ ...h.oidc, now }) : undefined;
  // A wrong or unreachable issuer shows in the log at start, not only when the first JWT arrives.
  jwt
    ?.prepare()
    .catch((e: Error) => log.warn({ err: e.message }, 'OIDC issuer not usable yet; JWTs get 503 until it is'));
  const deps: ApiDeps = {
    manager,
    tokens,
    authn: new Authenticator({
      authBase: () => manager.dir.serviceUrl(u.service.auth),
      tokens,
      passwordLimits: config.passwordLimits,
      jwt,
    }),
    acl: new AclChecker(manager.auth, u.special.wildcard, h.aclCacheSeconds * 1000),
    bootstrapTokens: new BootstrapTokens(loadOrCreateKey(resolve(config.dataDir)), {
      ttlSeconds: h.bootstrapTtlSeconds,
      now,
    }),
    metrics: new Metrics({
      phases: () => manager.status.phaseCounts(),
      queue: () => manager.controller.stats,
      statusWritesPending: () => manager.status.pending,
      repoWritesWaiting: () => manager.repos.waiting,
      mqtt: () => ({ changeFeed: manager.feed.mqttConnected, sparkplug: manager.node?.connected ?? false }),
      changeFeed: () => ({ live: manager.feed.live, connected: manager.feed.connected }),
      lastResyncMs: () => manager.controller.lastResyncMs,
      lastDriftCheck: () => manager.controller.lastDriftCheck,
      driftChecks: () => manager.controller.driftChecks,
      dependencies: () => dependencyHealth(manager),
    }),
    externalUrl: () => h.externalUrl ?? opts.externalUrl(),
    version: VERSION,
    log,
    now: () => new Date(now()),
    eventStream: opts.eventStream,
  };
  return { app: createApp(deps), deps };
}
