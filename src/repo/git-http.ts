import http from 'node:http';
import https from 'node:https';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { isStaleConnection, keepAliveAgents, markStale } from '../lib/http-client.js';

/** A Git server that stops answering is a failure, not a wait without end. */
export class GitHttpTimeout extends Error {
  constructor(url: string, ms: number) {
    super(`the Git server did not answer ${url} within ${ms} ms`);
  }
}

async function collect(body: GitHttpRequest['body']): Promise<Buffer | undefined> {
  if (!body) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export interface GitResponse {
  statusCode: number;
  statusMessage: string;
  headers: Record<string, string>;
  body: http.IncomingMessage;
}

/**
 * Credentials for a Git server: headers to send, and fresh ones after a 401.
 * A bearer token dies with the token store of the server that issued it (a
 * restarted Git server), so a 401 is answered once with a new token.
 */
export type GitAuth = (fresh: boolean) => Promise<Record<string, string>>;

interface GitRequestOptions {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  timeoutMs: number;
}

/**
 * One request, with `auth`'s headers; a 401 gets new credentials and the
 * request is sent again, once.
 */
export async function gitRequest(opts: GitRequestOptions & { auth?: GitAuth }): Promise<GitResponse> {
  if (!opts.auth) return sendGitRequest(opts);
  const first = await sendGitRequest({ ...opts, headers: { ...opts.headers, ...(await opts.auth(false)) } });
  if (first.statusCode !== 401) return first;
  first.body.resume();
  return sendGitRequest({ ...opts, headers: { ...opts.headers, ...(await opts.auth(true)) } });
}

/**
 * A kept-alive connection the server closes as idle just when a request is
 * sent on it fails with ECONNRESET before the server saw anything; the
 * request is then sent again on another (as Node's documentation of
 * `request.reusedSocket` advises), if it only reads: the ref advertisement,
 * the status list, a fetch's upload-pack.
 */
async function sendGitRequest(opts: GitRequestOptions): Promise<GitResponse> {
  const reads = (opts.method ?? 'GET') === 'GET' || opts.url.endsWith('/git-upload-pack');
  for (let attempt = 1; ; attempt++) {
    try {
      return await sendGitRequestOnce(opts);
    } catch (e) {
      if (!(reads && attempt < 3 && isStaleConnection(e))) throw e;
    }
  }
}

/**
 * One request to a Git server over a kept-alive connection. The timeout is
 * for silence: it fires when nothing moves on the connection for that long,
 * so a large pack that keeps streaming is not cut off.
 */
function sendGitRequestOnce(opts: GitRequestOptions): Promise<GitResponse> {
  const u = new URL(opts.url);
  const lib = u.protocol === 'https:' ? https : http;
  const agent = keepAliveAgents[u.protocol as keyof typeof keepAliveAgents];
  if (!agent) return Promise.reject(new Error(`not an HTTP URL: ${opts.url}`));
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body) headers['content-length'] = String(opts.body.length);
    const req = lib.request(u, { method: opts.method ?? 'GET', headers, agent }, (res) => {
      const flat: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers))
        if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v;
      resolve({ statusCode: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: flat, body: res });
    });
    req.setTimeout(opts.timeoutMs, () => req.destroy(new GitHttpTimeout(`${u.origin}${u.pathname}`, opts.timeoutMs)));
    req.on('error', (e) => reject(markStale(e, req.reusedSocket)));
    req.end(opts.body);
  });
}

/** isomorphic-git's HTTP client interface over gitRequest. */
export function gitHttpClient(timeoutMs: number, auth?: GitAuth): HttpClient {
  return {
    async request(r: GitHttpRequest): Promise<GitHttpResponse> {
      const res = await gitRequest({
        url: r.url,
        method: r.method,
        headers: r.headers,
        body: await collect(r.body),
        timeoutMs,
        auth,
      });
      return {
        url: r.url,
        method: r.method,
        statusCode: res.statusCode,
        statusMessage: res.statusMessage,
        headers: res.headers,
        body: res.body[Symbol.asyncIterator](),
      };
    },
  };
}

export async function readAll(body: AsyncIterable<Uint8Array>, limit = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) throw new Error(`answer from the Git server larger than ${limit} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}
