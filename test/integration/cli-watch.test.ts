import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { getCondition, readStatus } from '../../src/reconcile/setup-status.js';
import { FAST_RETRIES, startApiStackWithGitRelay, type ApiStack } from '../helpers/api.js';
import { tempDir } from '../helpers/core.js';
import { waitFor } from '../helpers/processes.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/*
 * `cluster-manager status NAME --watch` against the embedded core and the
 * manager on loopback: it follows GET /v1/events (counted in the manager's
 * own request metrics, which also show it reads no status otherwise), keeps
 * following through a dropped connection, and reads the status every second
 * from a manager that has no event stream. The cluster fails for real (its
 * Git server is out of reach behind a relay) and recovers when Git is back.
 */

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const MAIN = join(ROOT, 'src', 'main.ts');

interface Watch {
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** `cluster-manager …` in its own process, its output readable while it runs. */
function start(args: string[], env: Record<string, string>): Watch {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exit = new Promise<number | null>((res, rej) => {
    child.on('error', rej);
    child.on('exit', (code) => res(code));
  });
  return { stdout: () => stdout, stderr: () => stderr, exit };
}

describe('cluster-manager status --watch (GET /v1/events)', function () {
  this.timeout(120_000);
  let s: ApiStack;
  /** Between the manager and its Git server: refused, the cluster's repo step fails. */
  let git: TcpProxy;
  /** Between the command line and the manager: cut, the event stream drops. */
  let cm: TcpProxy;
  /** A manager of before the event stream: GET /v1/events is 404, the rest is passed on. */
  let older: Server;
  let olderUrl: string;
  let env: Record<string, string>;
  let creds: string[];

  /** GET requests the manager answered, by route, from its own metrics. */
  const gets = async () => {
    const counts: Record<string, number> = {};
    for (const v of (await s.deps.metrics.requests.get()).values)
      if (v.labels.method === 'GET') counts[String(v.labels.route)] = (counts[String(v.labels.route)] ?? 0) + v.value;
    return counts;
  };
  const statusReads = (c: Record<string, number>) => (c['/v1/cluster'] ?? 0) + (c['/v1/cluster/:uuid/status'] ?? 0);

  /** A cluster whose configuration entry is written now; it is not waited for. */
  const configure = async (name: string) => {
    const u = s.config.uuids;
    const uuid = s.t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
    const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${u.app.clusterConfig}/object/${uuid}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, namespace: 'fplus-edge' }),
    });
    expect(r.status).to.equal(201);
    return uuid;
  };
  /** Git out of reach, a cluster made, and its repo step failed twice: a cluster failing and retrying. */
  const failing = async (name: string) => {
    git.set('refuse');
    const uuid = await configure(name);
    await waitFor(
      () => (getCondition(readStatus(s.m.status.get(uuid)), 'Repo')?.attempts ?? 0) >= 2,
      30_000,
      undefined,
      `${name} failing`,
    );
    return uuid;
  };

  before(async () => {
    ({ s, git } = await startApiStackWithGitRelay({
      config: FAST_RETRIES,
      // A dropped stream is taken up again after 200 ms rather than the default 5 s.
      eventStream: { retryMs: 200 },
    }));
    cm = await startTcpProxy(s.url);
    older = createServer((req, res) => {
      if (req.url?.split('?')[0] === '/v1/events') {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'Not Found', message: `no route ${req.url}` }));
        return;
      }
      const up = request(new URL(req.url ?? '/', s.url), { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => older.listen(0, '127.0.0.1', r));
    olderUrl = `http://127.0.0.1:${(older.address() as AddressInfo).port}`;
    const admin = s.t.core.credentials.admin;
    creds = ['--user', admin.username, '--password', admin.password];
    env = { DATA_DIR: tempDir('cm-watch-data-'), XDG_CONFIG_HOME: tempDir('cm-watch-xdg-') };
  });
  afterEach(() => git.set('pass'));
  after(async () => {
    await new Promise((r) => older?.close(r));
    await cm?.close();
    await s?.stop();
    await git?.close();
  });

  it('follows a failing cluster to ready over the event stream, through a dropped connection, reading no status', async () => {
    await failing('Watch_1');
    const before = await gets();
    const w = start(['status', 'Watch_1', '--watch', '--timeout', '60', '--url', cm.url, ...creds], env);
    await waitFor(() => w.stdout().includes('GitUnavailable'), 20_000, undefined, 'the failing status printed');
    expect(w.stdout()).to.match(/^Watch_1 {2}[0-9a-f-]{36}$/m);
    expect(w.stdout()).to.match(/Phase:\s+repo/);
    // A new attempt arrives as a line of its own, not as the whole status again.
    await waitFor(() => /^\d\d:\d\d:\d\d {2}Repo False GitUnavailable \(attempt \d+/m.test(w.stdout()), 10_000);

    // The connection drops: the client reconnects (Last-Event-ID is not needed: a new snapshot follows).
    expect(cm.cutAll()).to.be.at.least(1);
    await waitFor(() => w.stderr().includes('the event stream is back'), 10_000, undefined, 'reconnected');
    git.set('pass');
    expect(await w.exit, w.stderr()).to.equal(0);
    const out = w.stdout();
    expect(out).to.match(/^\d\d:\d\d:\d\d {2}phase repo -> ready$/m);
    expect(out).to.match(/^\d\d:\d\d:\d\d {2}Ready True Commissioned/m);
    // The whole status again at the end.
    expect(out.slice(out.lastIndexOf('Watch_1  '))).to.match(/Phase:\s+ready/);
    expect(w.stderr()).to.include('the event stream dropped');

    const after = await gets();
    expect((after['/v1/events'] ?? 0) - (before['/v1/events'] ?? 0), 'streams opened').to.equal(2);
    // Everything came over the stream: not one read of the list or of a status.
    expect(statusReads(after) - statusReads(before), 'status reads').to.equal(0);
  });

  it('reads the status every second from a Cluster Manager without GET /v1/events (404)', async () => {
    await failing('Watch_2');
    const before = await gets();
    const w = start(['status', 'Watch_2', '--watch', '--timeout', '60', '--url', olderUrl, ...creds], env);
    await waitFor(() => w.stdout().includes('GitUnavailable'), 20_000, undefined, 'the failing status printed');
    expect(w.stderr()).to.include('has no event stream (GET /v1/events is 404)');
    git.set('pass');
    expect(await w.exit, w.stderr()).to.equal(0);
    expect(w.stdout()).to.match(/^\d\d:\d\d:\d\d {2}Ready True Commissioned/m);
    const after = await gets();
    expect(after['/v1/cluster/:uuid/status'] - (before['/v1/cluster/:uuid/status'] ?? 0)).to.be.at.least(2);
  });

  it('ends at once when nothing answers, with exit 4 and the service message when the stream is refused, and 3 when the cluster goes', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const down = start(['status', 'Watch_1', '--watch', '--url', `http://127.0.0.1:${port}`, ...creds], env);
    expect(await down.exit).to.equal(1);
    expect(down.stderr()).to.equal(
      `cluster-manager: cannot reach the Cluster Manager at http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    );

    const refused = start(['status', 'Watch_1', '--watch', '--url', s.url, '--user', 'admin', '--password', 'no'], env);
    expect(await refused.exit).to.equal(4);
    expect(refused.stderr()).to.match(/^cluster-manager: wrong username or password/m);
    expect(refused.stderr()).to.not.match(/^\s+at /m);

    const uuid = await failing('Watch_3');
    const w = start(['status', uuid, '--watch', '--url', s.url, ...creds], env);
    await waitFor(() => w.stdout().includes('GitUnavailable'), 20_000, undefined, 'the failing status printed');
    const del = await fetch(
      `${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.clusterConfig}/object/${uuid}`,
      { method: 'DELETE', headers: { Authorization: s.admin } },
    );
    expect(del.status).to.be.oneOf([200, 204]);
    git.set('pass');
    expect(await w.exit).to.equal(3);
    expect(w.stderr()).to.include(`${uuid} was deleted`);
  });
});
