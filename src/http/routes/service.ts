import Router from '@koa/router';
import type { ApiDeps } from '../deps.js';
import { openApiDocument } from '../openapi.js';
import { principalOf } from '../params.js';

/** What every Factory+ service answers (`/ping`, `/token`) and what operators scrape. */
export function serviceRoutes(d: ApiDeps): Router {
  const r = new Router();
  const m = d.manager;

  r.get('/ping', (ctx) => {
    ctx.body = {
      service: m.config.uuids.service.clusterManager, version: d.version,
      software: { vendor: 'Factory+', application: 'cluster-manager', revision: d.version },
    };
  });

  r.post('/token', (ctx) => {
    ctx.body = d.tokens.issue(principalOf(ctx));
  });

  // Public so that probes need no credential; it says nothing about any cluster.
  r.get('/health', (ctx) => {
    const ready = m.controller.ready;
    ctx.status = ready ? 200 : 503;
    ctx.body = {
      live: true, ready,
      mqtt: { changeFeed: m.feed.connected, sparkplug: m.node?.connected ?? false },
      configStore: m.status.degraded ? 'failing' : 'ok',
      statusWritesPending: m.status.pending,
      lastResyncError: m.controller.resyncFailures ? m.controller.lastResyncError ?? null : null,
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
