import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';

export interface CgiResponse {
  status: number;
  headers: Record<string, string>;
  body: Readable;
  /** Resolves with the exit code once the backend has finished. */
  done: Promise<number>;
}

let backend: { command: string; args: string[] } | undefined;
/**
 * `git http-backend` starts the program git-http-backend from git's exec
 * path as one more process; starting that program itself saves a process
 * on every request.
 */
function httpBackend(): { command: string; args: string[] } {
  if (!backend) {
    let direct: string | undefined;
    try {
      direct = join(execFileSync('git', ['--exec-path'], { encoding: 'utf8' }).trim(), 'git-http-backend');
    } catch {
      /* spawning below reports a missing git */
    }
    backend = direct && existsSync(direct) ? { command: direct, args: [] } : { command: 'git', args: ['http-backend'] };
  }
  return backend;
}

/**
 * Runs `git http-backend` as a CGI program for one request: the request body
 * is streamed to its stdin and its stdout is split into CGI headers and a
 * streamed body, so packs of any size never sit in memory.
 */
export function runHttpBackend(opts: {
  projectRoot: string;
  pathInfo: string;
  req: IncomingMessage;
  query: string;
  remoteUser: string;
  remoteAddr?: string;
}): Promise<CgiResponse> {
  const { req } = opts;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: opts.projectRoot,
    GIT_HTTP_EXPORT_ALL: '1',
    PATH_INFO: opts.pathInfo,
    QUERY_STRING: opts.query,
    REQUEST_METHOD: req.method ?? 'GET',
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_USER: opts.remoteUser,
    REMOTE_ADDR: opts.remoteAddr ?? req.socket.remoteAddress ?? '',
    GIT_CONFIG_NOSYSTEM: '1',
    HOME: opts.projectRoot,
  };
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
  if (req.headers['git-protocol']) env.GIT_PROTOCOL = String(req.headers['git-protocol']);

  const { command, args } = httpBackend();
  const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin.on('error', () => {
    /* the backend may exit before reading everything */
  });
  req.pipe(child.stdin);

  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const body = new PassThrough();
    let parsed = false;
    const onData = (chunk: Buffer) => {
      if (parsed) return;
      head = Buffer.concat([head, chunk]);
      let sep = head.indexOf('\r\n\r\n');
      let sepLen = 4;
      if (sep < 0) {
        sep = head.indexOf('\n\n');
        sepLen = 2;
      }
      if (sep < 0) {
        if (head.length > 64 * 1024) {
          child.kill();
          reject(new Error('git http-backend sent oversized headers'));
        }
        return;
      }
      parsed = true;
      child.stdout.off('data', onData);
      const headers: Record<string, string> = {};
      let status = 200;
      for (const line of head.subarray(0, sep).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') status = parseInt(value, 10) || 500;
        else headers[name] = value;
      }
      const rest = head.subarray(sep + sepLen);
      if (rest.length) body.write(rest);
      child.stdout.pipe(body);
      resolve({ status, headers, body, done });
    };
    child.stdout.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      if (!parsed) reject(new Error(`git http-backend exited with ${code} before answering: ${stderr.trim()}`));
    });
  });
}
