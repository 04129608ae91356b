import type { Context } from 'koa';
import { HttpError } from './http-errors.js';
import type { Json } from './merge-patch.js';

/** Reads the raw request body, refusing (413) anything over `limit` bytes. */
export async function readRawBody(ctx: Context, limit: number): Promise<Buffer> {
  const declared = Number(ctx.get('content-length') || NaN);
  if (Number.isFinite(declared) && declared > limit) {
    ctx.req.resume();
    throw new HttpError(413, `request body of ${declared} bytes exceeds the limit of ${limit}`);
  }
  // Listened to rather than iterated: leaving a `for await` early destroys the
  // socket, and a client still sending would see a reset instead of the 413.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const req = ctx.req;
    const tooBig = () =>
      new HttpError(413, `request body exceeds the limit of ${limit} bytes`, { Connection: 'close' });
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      // Past the limit the rest is read and dropped so the answer can be
      // delivered, up to a bound beyond which the connection is cut.
      else if (size > limit * 8) req.destroy();
    });
    req.on('end', () => (size > limit ? reject(tooBig()) : resolve(Buffer.concat(chunks))));
    req.on('error', (e) =>
      reject(size > limit ? tooBig() : new HttpError(400, `request body could not be read: ${e.message}`)),
    );
    req.on('close', () => {
      if (!req.complete) reject(size > limit ? tooBig() : new HttpError(400, 'request body ended early'));
    });
  });
}

/**
 * Reads a JSON body of one of the accepted media types; 415 for another type,
 * 400 for text that is not JSON (bare strings and numbers are JSON too).
 */
export async function readJsonBody(ctx: Context, opts: { types?: string[]; limit?: number } = {}): Promise<Json> {
  const types = opts.types ?? ['application/json'];
  const type = (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();
  if (!types.includes(type)) {
    throw new HttpError(415, `content type must be ${types.join(' or ')}${type ? `, not ${type}` : ''}`);
  }
  const raw = await readRawBody(ctx, opts.limit ?? 1024 * 1024);
  const text = raw.toString('utf8');
  if (!text.trim()) throw new HttpError(400, 'request body is empty');
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new HttpError(400, `request body is not valid JSON: ${(e as Error).message}`);
  }
}
