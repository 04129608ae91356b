import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import { HttpError, jsonErrors } from '../lib/http-errors.js';
import type { ApiDeps } from './deps.js';
import { errorAnswers } from './errors.js';
import { clusterRoutes } from './routes/clusters.js';
import { secretRoutes } from './routes/secrets.js';
import { serviceRoutes } from './routes/service.js';
import { eventRoutes, EventHub } from './events.js';
import { UI_PATHS, uiRoutes } from './ui.js';

// The status page's files hold no data: everything it shows comes from the authenticated API.
const PUBLIC = [/^\/v1\/cluster\/[^/]+\/bootstrap$/, /^\/health$/, UI_PATHS];

/** Answers 405 with `Allow` for a known path and a method it does not take. */
function methodNotAllowed(routers: Router[]) {
  return async (ctx: Context) => {
    const allowed = new Set<string>();
    for (const r of routers) {
      for (const layer of r.stack) {
        if (layer.match(ctx.path)) for (const m of layer.methods) if (m !== 'HEAD') allowed.add(m);
      }
    }
    if (allowed.size)
      throw new HttpError(405, `${ctx.method} is not allowed on ${ctx.path}`, { Allow: [...allowed].join(', ') });
  };
}

/**
 * The Cluster Manager's HTTP API: metrics around JSON errors around
 * authentication around the routes. The bootstrap script (its URL carries a
 * signed token), `/health` (for probes) and the status page's static files
 * are the only public routes.
 */
export function createApp(d: ApiDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  // Errors of the request stream (a client hanging up mid-body) reach Koa's
  // default handler, which prints a stack trace to stderr; they are the
  // client's doing and belong in the debug log.
  app.on('error', (err: Error) => d.log.debug({ err: err.message }, 'request stream error'));
  const { maxEventStreams, maxEventStreamsPerCaller } = d.manager.config.http;
  const events = new EventHub(d, {
    maxStreams: maxEventStreams,
    maxStreamsPerCaller: maxEventStreamsPerCaller,
    ...d.eventStream,
  });
  d.events = events;
  const routers = [serviceRoutes(d), clusterRoutes(d), secretRoutes(d), eventRoutes(events), uiRoutes()];
  app.use(d.metrics.middleware());
  app.use(jsonErrors(d.log));
  app.use(async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Cache-Control', 'no-store');
    // CORS as Factory+ services have it, but without credentials: browser
    // clients send their token in Authorization, and credentials a browser
    // has cached are never sent along with a cross-origin request.
    if (ctx.get('Origin')) {
      ctx.set('Access-Control-Allow-Origin', '*');
      if (ctx.method === 'OPTIONS') {
        ctx.set('Access-Control-Allow-Methods', 'GET, POST, PUT, DELETE');
        ctx.set('Access-Control-Allow-Headers', 'Authorization, Content-Type');
        ctx.set('Access-Control-Max-Age', '600');
        ctx.status = 204;
        return;
      }
    }
    await next();
  });
  app.use(errorAnswers);
  app.use(d.authn.middleware((ctx) => PUBLIC.some((re) => re.test(ctx.path))));
  // An empty segment is a missing namespace, name or key, not another route.
  app.use(async (ctx, next) => {
    if (ctx.path.startsWith('/v1/') && (ctx.path.includes('//') || ctx.path.endsWith('/'))) {
      throw new HttpError(400, `${ctx.path} has an empty path segment`);
    }
    await next();
  });
  for (const r of routers) app.use(r.routes());
  app.use(methodNotAllowed(routers));
  return app;
}
