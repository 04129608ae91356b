/**
 * The drift check's cost: it reads heads from the Git server's status list
 * (`GET /v1/status/{uuid}`, answered from memory by the Factory+ Git server,
 * from the ref files by the embedded one), confirms a difference by ref
 * advertisement, falls back to advertisements for a server without the
 * list, and stays within DRIFT_CHECK_SECONDS, the repos it did not reach
 * going first next time. The Git server is reached through an HTTP proxy
 * that records every request, and `git` itself judges the refs.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GitStorage } from '../../src/embedded/git/storage.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { readStatus } from '../../src/reconcile/setup-status.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { clone as cloneRepo, gitEnv, repoUrl } from '../helpers/git.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { waitFor } from '../helpers/processes.js';

const run = promisify(execFile);
const gitc = (dir: string, ...args: string[]) =>
  run('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { env: gitEnv });

/** The requests of one kind the proxy saw since `from`, as repo UUIDs. */
function asked(proxy: FaultProxy, kind: 'status' | 'advert', from = 0): string[] {
  const re = kind === 'status' ? /^GET \/v1\/status\/([0-9a-f-]{36})$/ : /^GET \/uuid\/([0-9a-f-]{36})\/info\/refs\?/;
  return proxy.seen
    .slice(from)
    .map((l) => re.exec(l)?.[1])
    .filter((x): x is string => x !== undefined);
}

describe('embedded Git server: branch heads for the status list', () => {
  it('lists the branches git itself lists: loose, packed, nested, a packed ref updated loose, symbolic refs left out', async () => {
    const root = mkdtempSync(join(tmpdir(), 'git-status-'));
    const storage = new GitStorage(root);
    const repo = '6f2bd3d4-36c4-4b0a-9d6a-0d8c6f0e2a11';
    await storage.ensure(repo);
    const bare = storage.dir(repo);
    const work = mkdtempSync(join(tmpdir(), 'git-status-wt-'));
    await run('git', ['init', '-q', '-b', 'main', work], { env: gitEnv });
    await gitc(work, 'commit', '-q', '--allow-empty', '-m', 'one');
    await gitc(work, 'push', '-q', bare, 'HEAD:main', 'HEAD:refs/heads/feature/deep/x', 'HEAD:old');
    await run('git', ['--git-dir', bare, 'pack-refs', '--all'], { env: gitEnv });
    await gitc(work, 'commit', '-q', '--allow-empty', '-m', 'two');
    await gitc(work, 'push', '-q', bare, 'HEAD:main', 'HEAD:refs/heads/feature/y');
    await run('git', ['--git-dir', bare, 'symbolic-ref', 'refs/heads/alias', 'refs/heads/main'], { env: gitEnv });

    const { stdout } = await run(
      'git',
      ['--git-dir', bare, 'for-each-ref', '--format=%(refname:strip=2) %(objectname) %(symref)', 'refs/heads'],
      { env: gitEnv },
    );
    const expected: Record<string, string> = {};
    for (const line of stdout.trim().split('\n')) {
      const [name, oid, symref] = line.split(' ');
      if (!symref) expected[name] = oid;
    }
    expect(Object.keys(expected)).to.have.members(['main', 'feature/deep/x', 'feature/y', 'old']);
    expect(expected.main).to.not.equal(expected.old);
    expect(storage.branches(repo)).to.deep.equal(expected);
    expect(storage.branches('00000000-0000-4000-8000-000000000000')).to.deep.equal({});
  });
});

describe('drift check cost', function () {
  this.timeout(120_000);

  const start = async (reconcile: Record<string, unknown> = {}) => {
    let proxy!: FaultProxy;
    const s = await startApiStack({
      config: { reconcile: { resyncSeconds: 600, ...reconcile } },
      serviceUrls: async (e) => {
        proxy = await startFaultProxy(e.git);
        return { gitUrl: proxy.url };
      },
    });
    return { s, proxy };
  };
  const stacks: Array<{ s: ApiStack; proxy: FaultProxy }> = [];
  after(async () => {
    for (const { s, proxy } of stacks) {
      await s.stop();
      await proxy.close();
    }
  });
  /** `n` clusters, commissioned and ready. */
  const clusters = async (s: ApiStack, prefix: string, n: number): Promise<string[]> => {
    const u = s.config.uuids;
    const ids = Array.from(
      { length: n },
      () => s.t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid,
    );
    await Promise.all(
      ids.map(async (uuid, i) => {
        const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${u.app.clusterConfig}/object/${uuid}`, {
          method: 'PUT',
          headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
          body: JSON.stringify({ name: `${prefix}_${i}`, namespace: 'fplus-edge' }),
        });
        expect(r.status).to.equal(201);
      }),
    );
    await waitFor(() => ids.every((c) => readStatus(s.m.status.get(c))?.ready), 60_000, undefined, 'ready');
    await s.m.controller.idle();
    return ids;
  };

  it('reads unchanged heads from the status list with no ref advertisement, and confirms a moved one with one', async () => {
    const { s, proxy } = await start();
    stacks.push({ s, proxy });
    const ids = await clusters(s, 'Listed', 3);

    let from = proxy.seen.length;
    await s.m.controller.checkDrift();
    expect(s.m.controller.lastDriftCheck).to.deep.include({ checked: 3, moved: 0, failed: 0, deferred: 0 });
    expect(asked(proxy, 'status', from)).to.have.members(ids);
    expect(asked(proxy, 'advert', from), 'no git process for an unchanged repo').to.deep.equal([]);

    // A push straight to the Git server, past the proxy.
    const dir = await cloneRepo(repoUrl(s.t.core.endpoints.git, ids[0], s.t.core.credentials.admin));
    await gitc(dir, 'commit', '-q', '--allow-empty', '-m', 'by hand');
    await gitc(dir, 'push', '-q', 'origin', 'HEAD:main');
    from = proxy.seen.length;
    await s.m.controller.checkDrift();
    expect(s.m.controller.lastDriftCheck).to.deep.include({ checked: 3, moved: 1 });
    expect(asked(proxy, 'advert', from), 'the moved repo, confirmed').to.deep.equal([ids[0]]);
    await s.m.controller.idle();
    const pushed = (await run('git', ['-C', dir, 'rev-parse', 'HEAD'], { env: gitEnv })).stdout.trim();
    const head = readStatus(s.m.status.get(ids[0]))?.repo?.head;
    const { stdout } = await run('git', ['--git-dir', s.t.core.git.dir(ids[0]), 'rev-parse', 'main'], { env: gitEnv });
    expect(head, 'repo.head is the head after the repair').to.equal(stdout.trim());
    const isAncestor = await run(
      'git',
      ['--git-dir', s.t.core.git.dir(ids[0]), 'merge-base', '--is-ancestor', pushed, 'main'],
      {
        env: gitEnv,
      },
    ).then(
      () => true,
      () => false,
    );
    expect(isAncestor, 'the repair is on top of the hand push').to.equal(true);
  });

  it('asks a Git server without the status list by ref advertisement, and stops asking for the list after three failures', async () => {
    const { s, proxy } = await start();
    stacks.push({ s, proxy });
    const ids = await clusters(s, 'Plain', 4);
    proxy.set({ fault: { kind: 'status', status: 404 }, every: 1, match: /^GET \/v1\/status\// });

    let from = proxy.seen.length;
    await s.m.controller.checkDrift();
    expect(s.m.controller.lastDriftCheck).to.deep.include({ checked: 4, moved: 0, failed: 0 });
    expect(asked(proxy, 'advert', from)).to.have.members(ids);

    from = proxy.seen.length;
    await s.m.controller.checkDrift();
    expect(s.m.controller.lastDriftCheck).to.deep.include({ checked: 4, moved: 0, failed: 0 });
    expect(asked(proxy, 'status', from), 'the list is no longer asked for').to.deep.equal([]);
    expect(asked(proxy, 'advert', from)).to.have.members(ids);
  });

  it('a status request never answered (the Factory+ Git server for a repo it does not list) falls back to the advertisement', async () => {
    const { s, proxy } = await start();
    stacks.push({ s, proxy });
    const [c] = await clusters(s, 'Silent', 1);
    proxy.set({ fault: { kind: 'hang' }, every: 1, match: /^GET \/v1\/status\// });
    const from = proxy.seen.length;
    const t0 = Date.now();
    await s.m.controller.checkDrift();
    expect(Date.now() - t0).to.be.within(2_500, 10_000);
    expect(s.m.controller.lastDriftCheck).to.deep.include({ checked: 1, moved: 0, failed: 0 });
    expect(asked(proxy, 'advert', from)).to.deep.equal([c]);
  });

  it('stays within DRIFT_CHECK_SECONDS; the repos it did not reach go first in the next check', async () => {
    const { s, proxy } = await start({ driftCheckSeconds: 0.3 });
    stacks.push({ s, proxy });
    // More clusters than reads at once (32), each read held 600 ms: the first 32 start, the rest wait for time that runs out.
    const ids = await clusters(s, 'Budget', 40);
    proxy.set({ fault: { kind: 'delay', ms: 600 }, every: 1, match: /^GET \/v1\/status\// });

    let from = proxy.seen.length;
    await s.m.controller.checkDrift();
    const first = asked(proxy, 'status', from);
    expect(s.m.controller.lastDriftCheck).to.deep.include({ checked: 32, deferred: 8 });
    expect(s.m.controller.lastDriftCheck!.ms).to.be.below(2_000);
    const missed = ids.filter((c) => !first.includes(c));
    expect(missed).to.have.length(8);

    from = proxy.seen.length;
    await s.m.controller.checkDrift();
    const second = asked(proxy, 'status', from);
    expect(second, 'the repos not reached go first').to.have.length(32).and.to.include.members(missed);
    expect(s.m.controller.lastDriftCheck!.oldest, 'every repo compared by now').to.be.at.least(Date.now() - 10_000);

    // The metrics say the same.
    const text = await (await fetch(`${s.url}/metrics`, { headers: { Authorization: s.admin } })).text();
    expect(text).to.match(/^cluster_manager_last_drift_check_repos\{outcome="deferred"\} 8$/m);
    expect(text).to.match(/^cluster_manager_drift_checks_total \d+$/m);
    expect(text).to.match(/^cluster_manager_drift_check_oldest_seconds \d/m);
  });

  it('DRIFT_CHECK_SECONDS=0 turns the drift check off', async () => {
    const { s, proxy } = await start({ driftCheckSeconds: 0 });
    stacks.push({ s, proxy });
    await clusters(s, 'Off', 1);
    const from = proxy.seen.length;
    await s.m.controller.checkDrift();
    expect(proxy.seen.slice(from)).to.deep.equal([]);
    expect(s.m.controller.lastDriftCheck).to.equal(undefined);
  });
});
