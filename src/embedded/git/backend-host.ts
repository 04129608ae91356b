/**
 * The process that runs `git http-backend` for the embedded Git server.
 *
 * Starting a process forks the one that asks for it; forking a large process
 * costs milliseconds of its event loop per request. This small process does
 * the forking instead: the Git server passes each smart-HTTP request (already
 * authenticated and authorised) to it over a Unix socket.
 *
 * argv: <socket path> <project root>. Exits when its parent goes away.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { runHttpBackend } from './cgi.js';

const [socketPath, projectRoot] = process.argv.slice(2);
if (!socketPath || !projectRoot) {
  process.stderr.write('usage: backend-host <socket> <project root>\n');
  process.exit(2);
}

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
  execFile('git', ['-C', `${projectRoot}/${repo}`, 'gc', '--auto', '--quiet'], { env: { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: '1', HOME: projectRoot } }, () => collecting.delete(repo));
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://backend');
  const header = (name: string) => { const v = req.headers[name]; return Array.isArray(v) ? v[0] : v; };
  runHttpBackend({
    projectRoot, pathInfo: url.pathname, req, query: url.search.slice(1),
    remoteUser: header('x-remote-user') ?? '', remoteAddr: header('x-remote-addr') ?? '',
  }).then((r) => {
    res.writeHead(r.status, { ...r.headers, Trailer: 'X-Git-Exit' });
    r.body.pipe(res, { end: false });
    r.body.on('end', () => {
      void r.done.then((code) => {
        res.addTrailers({ 'X-Git-Exit': String(code) });
        res.end();
        if (code === 0 && req.method === 'POST' && url.pathname.endsWith('/git-receive-pack')) maybeCollect(url.pathname);
      });
    });
  }, (e: Error) => {
    res.writeHead(502, { 'Content-Type': 'text/plain' });
    res.end(e.message);
  });
});
server.listen(socketPath, () => process.send?.('ready'));
process.on('disconnect', () => process.exit(0));
