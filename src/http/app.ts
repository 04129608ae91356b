import Koa from 'koa';
import type { Logger } from 'pino';
import { HttpError, jsonErrors } from '../lib/http-errors.js';

export interface HealthSource {
  /** Ready once the first full resync has finished. */
  ready(): boolean;
  details(): Record<string, unknown>;
}

/** The Cluster Manager's HTTP app. */
export function createApp(deps: { log: Logger; health: HealthSource }): Koa {
  const app = new Koa();
  app.use(jsonErrors(deps.log));
  app.use(async (ctx, next) => {
    if (ctx.path === '/health') {
      if (ctx.method !== 'GET') throw new HttpError(405, 'use GET /health', { Allow: 'GET' });
      const ready = deps.health.ready();
      ctx.status = ready ? 200 : 503;
      ctx.body = { live: true, ready, ...deps.health.details() };
      return;
    }
    await next();
  });
  return app;
}
