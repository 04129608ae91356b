import { STATUS_CODES } from 'node:http';
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';

/** An error that becomes an HTTP answer `{error, message}` with its status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function errorBody(status: number, message: string, detail?: Record<string, unknown>): Record<string, unknown> {
  return { error: STATUS_CODES[status] ?? 'Error', message, ...detail };
}

/**
 * Outermost middleware: every failure becomes a JSON body with a message,
 * including unknown routes and errors thrown by Koa itself (e.g. body limits).
 */
export function jsonErrors(log: Logger) {
  return async (ctx: Context, next: Next): Promise<void> => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new HttpError(404, `no route for ${ctx.method} ${ctx.path}`);
      }
    } catch (e) {
      const err = e as Error & {
        status?: number;
        expose?: boolean;
        headers?: Record<string, string>;
        detail?: Record<string, unknown>;
      };
      // Only errors meant as answers carry their status through: ours, and
      // Koa's own (which say whether to expose them). Any other `status`
      // field, such as a client's record of what another service answered,
      // is not this request's status.
      const meant = err instanceof HttpError || typeof err.expose === 'boolean';
      const status =
        meant && typeof err.status === 'number' && err.status >= 400 && err.status < 600 ? err.status : 500;
      if (status >= 500) log.error({ err, method: ctx.method, path: ctx.path }, 'request failed');
      ctx.status = status;
      for (const [k, v] of Object.entries(meant ? (err.headers ?? {}) : {})) ctx.set(k, v);
      // Every 503 says when to try again.
      if (status === 503 && !ctx.response.get('Retry-After')) ctx.set('Retry-After', '5');
      const message = status >= 500 && !(err instanceof HttpError) ? 'internal error' : err.message;
      ctx.body = errorBody(status, message, err.detail);
    }
  };
}
