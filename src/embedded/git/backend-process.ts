import { fork, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CgiResponse } from './cgi.js';

/** Request headers the backend needs; everything else stays here. */
const FORWARDED = ['content-type', 'content-length', 'content-encoding', 'git-protocol', 'transfer-encoding'];
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'trailer', 'date']);

/** The host module beside this one, as .ts when running from source. */
function hostModule(): string {
  const self = fileURLToPath(import.meta.url);
  return join(self, '..', `backend-host${self.endsWith('.ts') ? '.ts' : '.js'}`);
}

/**
 * The small helper process that runs `git http-backend` (backend-host):
 * started on first use, restarted if it dies, stopped with the Git server.
 */
export class BackendProcess {
  private child: ChildProcess | undefined;
  private starting: Promise<string> | undefined;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private stopped = false;

  constructor(private readonly projectRoot: string) {}

  private socketPath(): Promise<string> {
    if (this.stopped) return Promise.reject(new Error('the Git backend has been stopped'));
    this.starting ??= new Promise<string>((resolve, reject) => {
      // The socket grants whatever the Git server asks for, without a
      // credential: it lives in a directory only this user can enter
      // (mkdtemp makes it 0700 whatever the umask), never in /tmp itself.
      const dir = mkdtempSync(join(tmpdir(), 'fplus-git-'));
      chmodSync(dir, 0o700);
      const socket = join(dir, 'backend.sock');
      const child = fork(hostModule(), [socket, this.projectRoot], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      this.child = child;
      const fail = (why: string) => {
        if (this.child === child) {
          this.child = undefined;
          this.starting = undefined;
        }
        rmSync(dir, { recursive: true, force: true });
        reject(new Error(why));
      };
      child.once('message', (m) => {
        if (m === 'ready') resolve(socket);
      });
      child.once('error', (e) => fail(`the Git backend could not start: ${e.message}`));
      child.once('exit', (code, signal) => fail(`the Git backend exited (${signal ?? code})`));
    });
    return this.starting;
  }

  /** Passes one smart-HTTP request to `git http-backend` and streams the answer. */
  async run(opts: { pathInfo: string; req: IncomingMessage; query: string; remoteUser: string }): Promise<CgiResponse> {
    const socketPath = await this.socketPath();
    const { req } = opts;
    const headers: Record<string, string> = {
      'x-remote-user': opts.remoteUser,
      'x-remote-addr': req.socket.remoteAddress ?? '',
    };
    for (const h of FORWARDED) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    return new Promise<CgiResponse>((resolve, reject) => {
      const up = http.request(
        {
          socketPath,
          agent: this.agent,
          method: req.method,
          headers,
          path: `${opts.pathInfo}${opts.query ? `?${opts.query}` : ''}`,
        },
        (res) => {
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = Array.isArray(v) ? v.join(', ') : v;
          const done = new Promise<number>((settle) => {
            // Chunked answers end with git's exit code as a trailer; answers
            // with a Content-Length (advertisements) carry none, and arriving whole is success.
            res.on('end', () => {
              const code = res.trailers['x-git-exit'];
              settle(code !== undefined ? Number(code) : res.headers.trailer || !res.complete ? 1 : 0);
            });
            res.on('error', () => settle(1));
            res.on('aborted', () => settle(1));
          });
          resolve({ status: res.statusCode ?? 502, headers: out, body: res, done });
        },
      );
      up.on('error', reject);
      req.pipe(up);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.agent.destroy();
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill();
    });
  }
}
