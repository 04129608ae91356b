import { expect } from 'chai';
import { execFile, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, lstatSync, readdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/index.js';
import { GitPerm } from '../../src/embedded/git/index.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { adminAuth, basic, startTestCore, tempDir, type TestCore } from '../helpers/core.js';
import { gitEnv } from '../helpers/git.js';
import { startCoreProcess, waitFor, type CoreProcess } from '../helpers/processes.js';

/*
 * What an attacker (or a careless client) tried beyond the hostile-input
 * corpus: requests that crashed or stalled shared parts of the embedded
 * core, data readable by other local users, and answers that told more
 * than the caller may know.
 */

const run = promisify(execFile);
const u = loadConfig({ env: {} }).uuids;
const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');

function gitUrl(base: string, path: string, user: { username: string; password: string }): string {
  const url = new URL(path, base);
  url.username = encodeURIComponent(user.username);
  url.password = encodeURIComponent(user.password);
  return url.href;
}

/** Backend host processes whose parent is `ppid`. */
async function backendHosts(ppid = process.pid): Promise<Array<{ pid: number; args: string }>> {
  const { stdout } = await run('ps', ['-o', 'pid=,args=', '--ppid', String(ppid)]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter((l) => l.includes('backend-host')).map((l) => {
    const [pid, ...args] = l.trim().split(/\s+/);
    return { pid: Number(pid), args: args.join(' ') };
  });
}

describe('hardening against hostile and careless callers', function () {
  this.timeout(120_000);

  describe('embedded Git server', () => {
    let t: TestCore;
    let admin: string;
    let repo: string;
    let other: string;
    const puller = { username: 'puller', password: 'pull-only-password' };

    const req = (method: string, path: string, auth = admin, body?: unknown) => fetch(new URL(path, t.core.endpoints.git), {
      method, headers: { Authorization: auth, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const makeRepo = async (path: string) => {
      const cdb = t.core.endpoints.configdb;
      const h = { Authorization: admin, 'Content-Type': 'application/json' };
      const uuid = (await (await fetch(new URL('/v2/object', cdb), { method: 'POST', headers: h, body: JSON.stringify({ class: u.class.edgeCluster }) })).json()).uuid as string;
      const put = await fetch(new URL(`/v2/app/${u.app.gitRepoConfig}/object/${uuid}`, cdb), { method: 'PUT', headers: h, body: JSON.stringify({ path }) });
      expect(put.status).to.equal(201);
      return uuid;
    };

    before(async () => {
      t = await startTestCore();
      admin = adminAuth(t.core);
      repo = await makeRepo('cluster/Pullable');
      other = await makeRepo('cluster/Hidden');
      await t.core.git.ensure(other);
      const who = randomUUID();
      t.core.auth.ensurePrincipal(who);
      t.core.auth.setPassword(puller.username, who, puller.password);
      t.core.auth.addGrant({ principal: who, permission: GitPerm.pull, target: repo, plural: false });
    });
    after(async () => { await t.stop(); });

    it('answers dumb-HTTP GETs (HEAD, info/refs without ?service=) with 404 while clones and pushes in flight all succeed', async () => {
      const wd = tempDir('hard-git-');
      const url = gitUrl(t.core.endpoints.git, `/uuid/${repo}`, t.core.credentials.admin);
      await run('git', ['clone', '-q', url, join(wd, 'seed')], { env: gitEnv });
      writeFileSync(join(wd, 'seed', 'a.txt'), 'a\n');
      await run('git', ['-C', join(wd, 'seed'), 'add', '-A'], { env: gitEnv });
      await run('git', ['-C', join(wd, 'seed'), 'commit', '-qm', 'a'], { env: gitEnv });
      await run('git', ['-C', join(wd, 'seed'), 'push', '-q', 'origin', 'HEAD:main'], { env: gitEnv });
      const helpers = await backendHosts();

      let hostile = true;
      const statuses: number[] = [];
      const probe = (async () => {
        const paths = [`/uuid/${repo}/HEAD`, `/uuid/${repo}/info/refs`, `/git/cluster/Pullable/HEAD`, `/uuid/${repo}/objects/info/packs`];
        for (let i = 0; hostile; i++) {
          const r = await req('GET', paths[i % paths.length]!, basic(puller.username, puller.password));
          statuses.push(r.status);
          await r.arrayBuffer();
          await new Promise((res) => setTimeout(res, 50));
        }
      })();
      const work = Array.from({ length: 8 }, async (_, i) => {
        const dir = join(wd, `c${i}`);
        await run('git', ['clone', '-q', url, dir], { env: gitEnv });
        if (i % 2) return;
        writeFileSync(join(dir, `f${i}.txt`), `${i}\n`);
        await run('git', ['-C', dir, 'add', '-A'], { env: gitEnv });
        await run('git', ['-C', dir, 'commit', '-qm', `c${i}`], { env: gitEnv });
        await run('git', ['-C', dir, 'pull', '-q', '--rebase', 'origin', 'main'], { env: gitEnv });
        // Pushes of the same branch race; a rejected one fetches and tries again.
        for (let n = 0; ; n++) {
          try { await run('git', ['-C', dir, 'push', '-q', 'origin', 'HEAD:main'], { env: gitEnv }); return; } catch (e) {
            if (n > 10 || !/rejected|fetch first|non-fast-forward/.test((e as { stderr?: string }).stderr ?? '')) throw e;
            await run('git', ['-C', dir, 'pull', '-q', '--rebase', 'origin', 'main'], { env: gitEnv });
          }
        }
      });
      const results = await Promise.allSettled(work);
      hostile = false;
      await probe;
      expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).to.deep.equal([]);
      expect(statuses.length).to.be.greaterThan(3);
      expect([...new Set(statuses)]).to.deep.equal([404]);
      expect((await backendHosts()).map((h) => h.pid), 'the same helper, never restarted').to.deep.equal(helpers.map((h) => h.pid));
    });

    it('its helper answers a dumb-HTTP request given to it directly and stays up', async () => {
      const root = tempDir('hard-host-');
      await run('git', ['init', '-q', '--bare', join(root, 'x.git')]);
      const sockDir = tempDir('hard-sock-');
      const socketPath = join(sockDir, 's');
      const host = fork(join(ROOT, 'src', 'embedded', 'git', 'backend-host.ts'), [socketPath, root], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
      try {
        await new Promise<void>((res, rej) => { host.once('message', () => res()); host.once('exit', (c) => rej(new Error(`helper exited ${c}`))); });
        const get = (path: string) => new Promise<{ status: number; body: string }>((res, rej) => {
          httpRequest({ socketPath, path, method: 'GET' }, (r) => {
            let body = '';
            r.on('data', (d: Buffer) => { body += d.toString(); });
            r.on('end', () => res({ status: r.statusCode ?? 0, body }));
          }).on('error', rej).end();
        });
        for (const path of ['/x.git/HEAD', '/x.git/info/refs', '/x.git/HEAD']) {
          const r = await get(path);
          expect(r.status, path).to.be.oneOf([200, 404]);
        }
        const smart = await get('/x.git/info/refs?service=git-upload-pack');
        expect(smart.status).to.equal(200);
        expect(smart.body).to.include('# service=git-upload-pack');
        expect(host.exitCode, 'helper alive').to.equal(null);
      } finally {
        host.kill();
      }
    });

    it('/v1/status lists only the repos the caller may pull from', async () => {
      const mine = await (await req('GET', '/v1/status', basic(puller.username, puller.password))).json() as string[];
      expect(mine).to.deep.equal([repo]);
      const all = await (await req('GET', '/v1/status')).json() as string[];
      expect(all).to.include.members([repo, other, Local.repo.helmCharts]);
    });

    it('/git/{group}/{name} answers a forbidden repo exactly as a missing one', async () => {
      const pull = basic(puller.username, puller.password);
      const hidden = await req('GET', '/git/cluster/Hidden/info/refs?service=git-upload-pack', pull);
      const missing = await req('GET', '/git/cluster/Nowhere/info/refs?service=git-upload-pack', pull);
      expect(hidden.status).to.equal(missing.status);
      expect(hidden.status).to.equal(404);
      const [a, b] = [await hidden.json(), await missing.json()] as Array<{ message: string }>;
      expect(a.message.replace('Hidden', 'X')).to.equal(b.message.replace('Nowhere', 'X'));
      const visible = await req('GET', '/git/cluster/Pullable/info/refs?service=git-upload-pack', pull);
      expect(visible.status).to.equal(200);
    });

    it('a repeated ?service= does not give a pull-only user the push advertisement', async () => {
      const pull = basic(puller.username, puller.password);
      for (const q of ['service=git-upload-pack&service=git-receive-pack', 'service=git-receive-pack&service=git-upload-pack',
        'service=git-upload-pack&Service=git-receive-pack', 'service=git-receive-pack']) {
        const r = await req('GET', `/uuid/${repo}/info/refs?${q}`, pull);
        const body = await r.text();
        expect(r.headers.get('content-type') ?? '', q).to.not.include('receive-pack');
        expect(body, q).to.not.include('service=git-receive-pack');
      }
    });
  });
  describe('data at rest', () => {
    /** Every path under `root` (itself included) that group or other may use, with its mode. */
    const loose = (root: string): string[] => {
      const out: string[] = [];
      const walk = (p: string) => {
        const st = lstatSync(p);
        if (st.isSymbolicLink()) return;
        if (st.mode & 0o077) out.push(`${(st.mode & 0o777).toString(8)} ${p}`);
        if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n));
      };
      walk(root);
      return out;
    };
    const banner = (p: CoreProcess) => waitFor(() => /Credential .*\n/.exec(p.output())?.[0], 10_000, p, 'the banner');

    it('under umask 000 the data directory and the Git backend socket are private; the admin password is shown only when made', async () => {
      const dataDir = join(tempDir('hard-umask-'), 'data');
      let core: CoreProcess | undefined = await startCoreProcess(dataDir, {}, [], { umask: '000' });
      try {
        const password = core.credentials.admin.password;
        expect(await banner(core)).to.include(password);
        // Objects, packs and refs written by git for a clone and a push.
        const wd = tempDir('hard-umask-wd-');
        const url = gitUrl(core.endpoints.git, `/uuid/${Local.repo.helmCharts}`, core.credentials.admin);
        await run('git', ['clone', '-q', url, join(wd, 'h')], { env: gitEnv });
        writeFileSync(join(wd, 'h', 'x.txt'), 'x\n');
        await run('git', ['-C', join(wd, 'h'), 'add', '-A'], { env: gitEnv });
        await run('git', ['-C', join(wd, 'h'), 'commit', '-qm', 'x'], { env: gitEnv });
        await run('git', ['-C', join(wd, 'h'), 'push', '-q', 'origin', 'HEAD:main'], { env: gitEnv });

        expect(loose(dataDir)).to.deep.equal([]);
        for (const f of ['core.sqlite', 'core.sqlite-wal', 'credentials.json', 'endpoints.json']) {
          expect(lstatSync(join(dataDir, f)).mode & 0o777, f).to.equal(0o600);
        }
        // The helper's socket grants pushes without a credential: only this user may reach it.
        const [helper] = await backendHosts(core.child.pid!);
        expect(helper, 'the Git backend helper').to.not.equal(undefined);
        const socket = helper!.args.split(' ').find((a) => a.endsWith('.sock'))!;
        expect(socket, 'socket path').to.be.a('string');
        expect(dirname(socket)).to.not.equal('/tmp');
        expect(lstatSync(dirname(socket)).mode & 0o777, 'socket directory').to.equal(0o700);
        expect(lstatSync(socket).isSocket()).to.equal(true);
        expect(lstatSync(socket).mode & 0o077, 'socket mode').to.equal(0);
        await core.stop();

        // Files loosened while stopped are said and fixed at the next start; the password is not shown again.
        chmodSync(dataDir, 0o755);
        for (const f of ['core.sqlite', 'credentials.json', 'endpoints.json']) chmodSync(join(dataDir, f), 0o644);
        core = await startCoreProcess(dataDir, {}, [], { umask: '000' });
        const again = await banner(core);
        expect(again).to.not.include(password);
        expect(again).to.include('credentials.json');
        expect(core.output()).to.not.include(password);
        expect(core.output()).to.match(/made private/);
        expect(loose(dataDir)).to.deep.equal([]);
      } finally {
        await core?.stop();
      }
    });
  });
});
