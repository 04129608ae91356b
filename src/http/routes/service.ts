import Router from '@koa/router';
import type { AuthState } from '../authn.js';
import type { ApiDeps } from '../deps.js';
import { openApiDocument } from '../openapi.js';
import { principalOf } from '../params.js';

type DependencyState = 'ok' | 'failing' | 'unknown';

/** What the last exchange with each dependency says about it. */
export function dependencyHealth(m: ApiDeps['manager']): Record<'configdb' | 'auth' | 'git' | 'mqtt', DependencyState> {
  const s = m.config.uuids.service;
  const byHttp = (service: string): DependencyState => {
    const url = m.dir.knownUrl(service);
    const h = url ? m.http.originHealth(new URL(url).origin) : undefined;
    return h === undefined ? 'unknown' : h.ok ? 'ok' : 'failing';
  };
  const git = m.repos.health;
  return {
    configdb: m.status.degraded ? 'failing' : byHttp(s.configdb),
    auth: byHttp(s.auth),
    git: git === undefined ? 'unknown' : git.ok ? 'ok' : 'failing',
    // MQTT carries the change feed (when it is live there) and the Sparkplug node.
    mqtt: m.feed.mqttConnected || m.node?.connected ? 'ok' : 'failing',
  };
}

/** What every Factory+ service answers (`/ping`, `/token`) and what operators scrape. */
export function serviceRoutes(d: ApiDeps): Router {
  const r = new Router();
  const m = d.manager;

  r.get('/ping', (ctx) => {
    ctx.body = {
      service: m.config.uuids.service.clusterManager,
      version: d.version,
      software: { vendor: 'Factory+', application: 'cluster-manager', revision: d.version },
    };
  });

  // A token lives no longer than the credential it was exchanged for (a JWT, or another token).
  r.post('/token', (ctx) => {
    ctx.body = d.tokens.issue(principalOf(ctx), (ctx.state as AuthState).credentialExpiry);
  });

  // Public so that probes need no credential; it says nothing about any cluster.
  r.get('/health', (ctx) => {
    const ready = m.controller.ready;
    ctx.status = ready ? 200 : 503;
    ctx.body = {
      live: true,
      ready,
      mqtt: { changeFeed: m.feed.mqttConnected, sparkplug: m.node?.connected ?? false },
      changeFeed: { mode: m.feed.mode, live: m.feed.live, connected: m.feed.connected },
      configStore: m.status.degraded ? 'failing' : 'ok',
      statusWritesPending: m.status.pending,
      repoChangesWaiting: m.repos.waiting,
      lastResyncError: m.controller.resyncFailures ? (m.controller.lastResyncError ?? null) : null,
      dependencies: dependencyHealth(m),
    };
  });

  r.get('/metrics', async (ctx) => {
    ctx.type = d.metrics.registry.contentType;
    ctx.body = await d.metrics.registry.metrics();
  });

  r.get('/openapi.json', (ctx) => {
    ctx.body = openApiDocument(d.version);
  });

  return r;
}
