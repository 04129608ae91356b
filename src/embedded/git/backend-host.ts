/**
 * The process that runs `git http-backend` for the embedded Git server.
 *
 * Starting a process forks the one that asks for it; forking a large process
 * costs milliseconds of its event loop per request. This small process does
 * the forking instead: the Git server passes each smart-HTTP request (already
 * authenticated and authorised) to it over a Unix socket.
 *
 * Every request is handled in isolation: whatever goes wrong with one
 * (a backend that fails, a client that goes away) ends that answer only,
 * because every request in flight shares this process.
 *
 * argv: <socket path> <project root>. Exits when its parent goes away.
 */
import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { finished } from 'node:stream/promises';
import { runHttpBackend } from './cgi.js';

const [socketPath, projectRoot] = process.argv.slice(2);
if (!socketPath || !projectRoot) {
  process.stderr.write('usage: backend-host <socket> <project root>\n');
  process.exit(2);
}
// Everything the backend writes (objects, packs, refs) is for this user only.
process.umask(0o077);

/** Every push leaves a pack and automatic gc is off; this repacks now and then, in the background. */
const GC_EVERY_PUSHES = 100;
const pushes = new Map<string, number>();
const collecting = new Set<string>();
function maybeCollect(pathInfo: string): void {
  const repo = /^\/([^/]+\.git)\//.exec(pathInfo)?.[1];
  if (!repo) return;
  const n = (pushes.get(repo) ?? 0) + 1;
  pushes.set(repo, n % GC_EVERY_PUSHES);
  if (n < GC_EVERY_PUSHES || collecting.has(repo)) return;
  collecting.add(repo);
  execFile(
    'git',
    ['-C', `${projectRoot}/${repo}`, 'gc', '--auto', '--quiet'],
    { env: { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: '1', HOME: projectRoot } },
    () => collecting.delete(repo),
  );
}

/** Ends an answer that went wrong: a 502 if nothing was sent yet, else the connection is cut. */
function fail(res: ServerResponse, e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`git backend: ${message}\n`);
  if (!res.headersSent) {
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(message);
  } else {
    res.destroy();
  }
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://backend');
  const header = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const r = await runHttpBackend({
    projectRoot,
    pathInfo: url.pathname,
    req,
    query: url.search.slice(1),
    remoteUser: header('x-remote-user') ?? '',
    remoteAddr: header('x-remote-addr') ?? '',
  });
  // A trailer can only follow a chunked answer; git gives some answers a
  // Content-Length, and those go out as they are, without the exit code.
  const chunked = !Object.keys(r.headers).some((k) => k.toLowerCase() === 'content-length');
  res.writeHead(r.status, chunked ? { ...r.headers, Trailer: 'X-Git-Exit' } : r.headers);
  r.body.pipe(res, { end: false });
  await finished(r.body);
  const code = await r.done;
  if (chunked) res.addTrailers({ 'X-Git-Exit': String(code) });
  res.end();
  if (code === 0 && req.method === 'POST' && url.pathname.endsWith('/git-receive-pack')) maybeCollect(url.pathname);
}

const server = createServer((req, res) => {
  res.on('error', () => {
    /* the Git server went away mid-answer */
  });
  handle(req, res).catch((e: unknown) => fail(res, e));
});
server.on('clientError', (_e, socket) => socket.destroy());
server.listen(socketPath, () => process.send?.('ready'));
process.on('disconnect', () => process.exit(0));
