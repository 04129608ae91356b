import Router from '@koa/router';
import { readFileSync } from 'node:fs';
import type { Context } from 'koa';
import { HttpError } from '../lib/http-errors.js';

/** The status page's paths: `/`, `/ui/` and its files. None holds data, so none needs a credential. */
export const UI_PATHS = /^\/(ui\/([a-z][a-z-]*\.(js|css))?)?$/;

const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'events.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/**
 * Only files of this origin run, no inline script or style, and the page
 * talks to this service alone; it is never framed (clickjacking of the
 * bootstrap button) and sends no Referer.
 */
const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * `GET /` and `/ui/…`: the status page. Its files sit beside this module
 * (src/http/ui in a checkout, dist/http/ui once built) and are read once, at
 * start; a fixed list, so no request names a file of its own choosing.
 * Missing files make the page 404, never the service fail to start.
 */
export function uiRoutes(dir = new URL('./ui/', import.meta.url)): Router {
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const [name, type] of Object.entries(TYPES)) {
    try {
      files.set(name, { type, body: readFileSync(new URL(name, dir)) });
    } catch {
      // A build without the page's files (tsc alone, not `npm run build`) serves
      // the API all the same; the page is then 404.
    }
  }
  const serve = (name: string) => (ctx: Context) => {
    const f = files.get(name);
    if (!f) throw new HttpError(404, `no file ${ctx.path}`);
    ctx.set('Content-Security-Policy', UI_CSP);
    ctx.set('X-Frame-Options', 'DENY');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.type = f.type;
    ctx.body = f.body;
  };
  const r = new Router();
  r.get('/', serve('index.html'));
  r.get('/ui/', serve('index.html'));
  r.get('/ui/:file', (ctx) => serve(String(ctx.params.file))(ctx));
  return r;
}
