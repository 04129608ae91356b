import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

export interface SendOptions {
  method: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  timeoutMs: number;
}

export interface Sent {
  status: number;
  headers: Headers;
  text: string;
}

// Keep-alive pools shared by every client: service calls are many and small,
// and node:http costs a fraction of the CPU of fetch for them.
export const keepAliveAgents = {
  'http:': new HttpAgent({ keepAlive: true, maxSockets: 64 }),
  'https:': new HttpsAgent({ keepAlive: true, maxSockets: 64 }),
};

const STALE = Symbol('stale kept-alive connection');

/** The error, marked when it is a reset of a reused kept-alive connection (see `isStaleConnection`). */
export function markStale(e: Error, reusedSocket: boolean): Error {
  if (reusedSocket && (e as NodeJS.ErrnoException).code === 'ECONNRESET')
    (e as Error & { [STALE]?: boolean })[STALE] = true;
  return e;
}

/**
 * Whether a request failed only because the kept-alive connection it was
 * sent on had just been closed by the server as idle: the server saw
 * nothing, so a request that only reads (or is idempotent) can be sent again.
 */
export function isStaleConnection(e: unknown): boolean {
  return e instanceof Error && (e as Error & { [STALE]?: boolean })[STALE] === true;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

function toHeaders(res: IncomingMessage): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    if (Array.isArray(v)) for (const x of v) h.append(k, x);
    else if (v !== undefined) h.set(k, v);
  }
  return h;
}

/**
 * One HTTP exchange with the whole answer read as text; rejects on a network
 * error or the timeout. An idempotent request that meets a kept-alive
 * connection closed under it is sent again (twice at most).
 */
export async function send(url: URL, o: SendOptions): Promise<Sent> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await sendOnce(url, o);
    } catch (e) {
      if (!(IDEMPOTENT.has(o.method.toUpperCase()) && attempt < 3 && isStaleConnection(e))) throw e;
    }
  }
}

function sendOnce(url: URL, o: SendOptions): Promise<Sent> {
  const https = url.protocol === 'https:';
  if (!https && url.protocol !== 'http:') return Promise.reject(new Error(`unsupported protocol ${url.protocol}`));
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(o.body));
    const req = (https ? httpsRequest : httpRequest)(
      url,
      { method: o.method, headers, agent: keepAliveAgents[url.protocol as 'http:' | 'https:'] },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: toHeaders(res),
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(o.timeoutMs, () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
    req.on('error', (e) => reject(markStale(e, req.reusedSocket)));
    req.end(o.body);
  });
}
