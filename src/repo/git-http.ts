import http from 'node:http';
import https from 'node:https';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { keepAliveAgents } from '../lib/http-client.js';

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
 * One request to a Git server over a kept-alive connection. The timeout is
 * for silence: it fires when nothing moves on the connection for that long,
 * so a large pack that keeps streaming is not cut off.
 */
export function gitRequest(opts: { url: string; method?: string; headers?: Record<string, string>; body?: Buffer; timeoutMs: number }): Promise<GitResponse> {
  const u = new URL(opts.url);
  const lib = u.protocol === 'https:' ? https : http;
  const agent = keepAliveAgents[u.protocol as keyof typeof keepAliveAgents];
  if (!agent) return Promise.reject(new Error(`not an HTTP URL: ${opts.url}`));
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.body) headers['content-length'] = String(opts.body.length);
    const req = lib.request(u, { method: opts.method ?? 'GET', headers, agent }, (res) => {
      const flat: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v;
      resolve({ statusCode: res.statusCode ?? 0, statusMessage: res.statusMessage ?? '', headers: flat, body: res });
    });
    req.setTimeout(opts.timeoutMs, () => req.destroy(new GitHttpTimeout(`${u.origin}${u.pathname}`, opts.timeoutMs)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** isomorphic-git's HTTP client interface over gitRequest. */
export function gitHttpClient(timeoutMs: number): HttpClient {
  return {
    async request(r: GitHttpRequest): Promise<GitHttpResponse> {
      const res = await gitRequest({ url: r.url, method: r.method, headers: r.headers, body: await collect(r.body), timeoutMs });
      return { url: r.url, method: r.method, statusCode: res.statusCode, statusMessage: res.statusMessage, headers: res.headers, body: res.body[Symbol.asyncIterator]() };
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
