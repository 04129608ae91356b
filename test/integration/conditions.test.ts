/**
 * What an operator of many clusters asks: is it working, and if not, why;
 * can I make it try again. Every failure is a condition (in the status,
 * `GET /v1/cluster` and on Sparkplug); names are held by one cluster;
 * redeploys restore what a push damaged. Against the embedded core, with
 * real Git and the real `git` CLI as the judge of repo contents.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { getCondition, readStatus } from '../../src/reconcile/setup-status.js';
import { FAST_RETRIES, startApiStackWithGitRelay, type ApiStack } from '../helpers/api.js';
import { clone as cloneRepo, repoUrl } from '../helpers/git.js';
import { waitFor } from '../helpers/processes.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const run = promisify(execFile);

describe('conditions, names and redeploys', function () {
  this.timeout(120_000);
  let s: ApiStack;
  let git: TcpProxy;

  const cdb = (method: string, path: string, body?: unknown) =>
    fetch(`${s.t.core.endpoints.configdb}${path}`, {
      method,
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const api = (method: string, path: string) =>
    fetch(`${s.url}${path}`, { method, headers: { Authorization: s.admin } });
  const u = () => s.config.uuids;
  /** A cluster object and its configuration entry, without waiting for anything. */
  const create = async (spec: Record<string, unknown>): Promise<string> => {
    const uuid = s.t.core.objects.create({ class: u().class.edgeCluster, owner: Local.account.admin }).registration
      .uuid;
    const r = await cdb('PUT', `/v2/app/${u().app.clusterConfig}/object/${uuid}`, { namespace: 'fplus-edge', ...spec });
    expect(r.status).to.equal(201);
    return uuid;
  };
  const status = (c: string) => readStatus(s.m.status.get(c));
  const clone = (c: string) => cloneRepo(repoUrl(s.t.core.endpoints.git, c, s.t.core.credentials.admin));

  before(async () => {
    // The manager reaches Git through a relay, so the Git server can be made unreachable for it alone.
    ({ s, git } = await startApiStackWithGitRelay({ config: FAST_RETRIES }));
  });
  afterEach(() => git.set('pass'));
  after(async () => {
    await s?.stop();
    await git?.close();
  });

  it('a Git server out of reach is Ready=False GitUnavailable on the repo step, with attempts and the next attempt; it clears when Git is back', async () => {
    git.set('refuse');
    const c = await create({ name: 'Git_Down' });
    const failing = await waitFor(
      () => {
        const st = status(c);
        const repo = getCondition(st, 'Repo');
        return repo && (repo.attempts ?? 0) >= 2 ? st : undefined;
      },
      20_000,
      undefined,
      'two failed attempts recorded',
    );
    const ready = getCondition(failing!, 'Ready')!;
    expect(ready).to.include({ status: 'False', reason: 'GitUnavailable' });
    expect(ready.message).to.be.a('string').and.not.equal('');
    const repo = getCondition(failing, 'Repo')!;
    expect(repo).to.include({ status: 'False', reason: 'GitUnavailable' });
    expect(Date.parse(repo.nextAttempt!)).to.be.greaterThan(Date.parse(repo.lastAttempt!));
    expect(failing!.phase).to.equal('repo');
    const before = repo.attempts!;
    await waitFor(
      () => (getCondition(status(c), 'Repo')?.attempts ?? 0) > before,
      10_000,
      undefined,
      'attempts growing',
    );

    // GET /v1/cluster says why.
    const list = (await (await api('GET', '/v1/cluster')).json()) as Array<{
      uuid: string;
      reason: string | null;
      message: string | null;
    }>;
    expect(list.find((x) => x.uuid === c)).to.include({ reason: 'GitUnavailable' });

    // The Sparkplug device says why too.
    const dev = s.m.node as unknown as {
      model: { devices: Map<string, { metrics: { snapshot(): Map<string, unknown> } }> };
    };
    const metrics = dev.model.devices.get(c)!.metrics.snapshot();
    expect(metrics.get('Failure_Reason')).to.equal('GitUnavailable');
    expect(metrics.get('Failure_Message')).to.be.a('string').and.not.equal('');

    git.set('pass');
    const done = await waitFor(
      () => (status(c)?.ready ? status(c) : undefined),
      20_000,
      undefined,
      'ready once Git is back',
    );
    expect(getCondition(done, 'Repo'), 'the step condition is cleared').to.equal(undefined);
    expect(getCondition(done, 'Ready')).to.include({ status: 'True', reason: 'Commissioned' });
    const after = (await (await api('GET', '/v1/cluster')).json()) as Array<{ uuid: string; reason: string | null }>;
    expect(after.find((x) => x.uuid === c)).to.include({ reason: null });
  });

  it('gives a name to one cluster only: 100 entries with one name, one becomes ready, 99 are NameConflict and make nothing', async () => {
    const grantsBefore = s.t.core.auth.findGrants({ permission: u().perm.gitPull }).length;
    const objectsBefore = s.t.core.objects.members(u().class.edgeAccount).length;
    // Names that differ only in case are one name.
    const names = Array.from({ length: 100 }, (_, i) => (i % 3 === 0 ? 'Line_7' : i % 3 === 1 ? 'line_7' : 'LINE_7'));
    const clusters = await Promise.all(names.map((name) => create({ name })));
    await waitFor(
      () => clusters.every((c) => status(c)?.ready || status(c)?.phase === 'failed'),
      60_000,
      undefined,
      'every entry settled',
    );
    const ready = clusters.filter((c) => status(c)?.ready);
    const conflicted = clusters.filter((c) => getCondition(status(c), 'Ready')?.reason === 'NameConflict');
    expect(ready).to.have.length(1);
    expect(conflicted).to.have.length(99);
    expect(getCondition(status(conflicted[0]), 'Ready')!.message).to.include(ready[0]);
    // Nothing was made for the 99: one flux grant, two accounts, one address.
    expect(s.t.core.auth.findGrants({ permission: u().perm.gitPull }).length - grantsBefore).to.equal(1);
    expect(s.t.core.objects.members(u().class.edgeAccount).length - objectsBefore).to.equal(2);
    for (const c of conflicted) {
      expect(s.t.core.store.get(u().app.sparkplugAddress, c), `address of ${c}`).to.equal(undefined);
      expect(s.t.core.store.get(u().app.gitRepoConfig, c), `repo of ${c}`).to.equal(undefined);
      expect(status(c)?.flux, `accounts of ${c}`).to.equal(undefined);
    }

    // The holder goes: one of the waiting ones gets the name.
    expect((await cdb('DELETE', `/v2/app/${u().app.clusterConfig}/object/${ready[0]}`)).status).to.equal(204);
    const next = await waitFor(
      () => conflicted.find((c) => status(c)?.ready),
      30_000,
      undefined,
      'a waiting cluster taking the name',
    );
    await waitFor(() => !s.m.status.get(ready[0]), 20_000, undefined, 'the holder removed');
    expect(conflicted.filter((c) => status(c)?.ready)).to.deep.equal([next]);
    // Clean up the rest quickly: they made nothing, so removing them removes nothing.
    await Promise.all(
      clusters.filter((c) => c !== ready[0]).map((c) => cdb('DELETE', `/v2/app/${u().app.clusterConfig}/object/${c}`)),
    );
    await waitFor(() => clusters.every((c) => !s.m.status.get(c)), 60_000, undefined, 'all removed');
    expect(s.t.core.auth.findGrants({ permission: u().perm.gitPull }).length).to.equal(grantsBefore);
    expect(s.t.core.objects.members(u().class.edgeAccount).length).to.equal(objectsBefore);
  });

  it('applies a values change while a rename stands refused, under the recorded name', async () => {
    const c = await create({ name: 'Keep_Name' });
    await waitFor(() => status(c)?.ready, 30_000, undefined, 'ready');
    expect(
      (
        await cdb('PUT', `/v2/app/${u().app.clusterConfig}/object/${c}`, {
          name: 'New_Name',
          namespace: 'fplus-edge',
          values: { tier: 'gold' },
        })
      ).status,
    ).to.equal(204);
    const st = await waitFor(
      () => {
        const x = status(c);
        return x?.ready &&
          getCondition(x, 'NameChange') &&
          (x.spec as { values?: { tier?: string } }).values?.tier === 'gold'
          ? x
          : undefined;
      },
      30_000,
      undefined,
      'values applied under the refused rename',
    );
    expect(getCondition(st!, 'NameChange')).to.include({ status: 'False', reason: 'NameChangeRefused' });
    expect(st!.spec!.name).to.equal('Keep_Name');
    const dir = await clone(c);
    expect(readFileSync(join(dir, 'edo/cluster/edge-cluster.yaml'), 'utf8')).to.include('tier: gold');
    expect(s.t.core.store.get(u().app.gitRepoConfig, c)?.json).to.deep.equal({ path: 'cluster/Keep_Name' });
  });

  it('redeploys a cluster whose managed file a push deleted, keeping by-hand files; a fleet redeploy answers 202 and completes', async () => {
    const c = await create({ name: 'Redeploy_Me' });
    await waitFor(() => status(c)?.ready, 30_000, undefined, 'ready');
    const dir = await clone(c);
    rmSync(join(dir, 'edo/cluster/self-link.yaml'));
    writeFileSync(join(dir, 'by-hand.txt'), 'mine\n');
    await run('git', ['-C', dir, 'add', '-A']);
    await run('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'damage']);
    await run('git', ['-C', dir, 'push', '-q', 'origin', 'HEAD:main']);

    const r = await api('POST', `/v1/cluster/${c}/redeploy`);
    expect(r.status).to.equal(200);
    const { head } = (await r.json()) as { head: string };
    expect(head).to.match(/^[0-9a-f]{40}$/);
    const after = await clone(c);
    const log = (await run('git', ['-C', after, 'log', '--format=%H %s'])).stdout;
    expect((await run('git', ['-C', after, 'rev-parse', 'HEAD'])).stdout.trim(), log).to.equal(head);
    expect(existsSync(join(after, 'edo/cluster/self-link.yaml')), 'restored').to.equal(true);
    expect(readFileSync(join(after, 'by-hand.txt'), 'utf8')).to.equal('mine\n');
    expect(status(c)?.repo?.head).to.equal(head);

    // Nothing to restore: the head stays.
    const again = (await (await api('POST', `/v1/cluster/${c}/redeploy`)).json()) as { head: string };
    expect(again.head).to.equal(head);

    const fleet = await api('POST', '/v1/cluster/redeploy');
    expect(fleet.status).to.equal(202);
    const { queued } = (await fleet.json()) as { queued: number };
    expect(queued).to.equal(s.m.status.clusters().length);
    await s.m.controller.idle();
    expect(s.m.status.clusters().every((x) => status(x)?.ready || status(x)?.phase === 'failed')).to.equal(true);
  });

  it('the drift check restores managed files a push damaged, and names a force-push that rewrote history; by-hand files stay', async () => {
    const c = await create({ name: 'Drift_Me' });
    await waitFor(() => status(c)?.ready, 30_000, undefined, 'ready');
    const recorded = status(c)!.repo!.head!;
    const gitc = (dir: string, ...args: string[]) =>
      run('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]);

    // An ordinary push that deletes a managed file and adds a by-hand one.
    let dir = await clone(c);
    rmSync(join(dir, 'edo/cluster/helm-charts.yaml'));
    writeFileSync(join(dir, 'by-hand.txt'), 'mine\n');
    await gitc(dir, 'add', '-A');
    await gitc(dir, 'commit', '-qm', 'hand edit');
    await gitc(dir, 'push', '-q', 'origin', 'HEAD:main');
    await s.m.controller.checkDrift();
    expect(s.m.controller.lastDriftCheck).to.deep.include({ moved: 1 });
    await s.m.controller.idle();
    dir = await clone(c);
    expect(existsSync(join(dir, 'edo/cluster/helm-charts.yaml')), 'restored').to.equal(true);
    expect(readFileSync(join(dir, 'by-hand.txt'), 'utf8')).to.equal('mine\n');
    const head1 = (await run('git', ['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim();
    expect(status(c)!.repo!.head, 'repo.head is the head last seen').to.equal(head1);
    expect(getCondition(status(c), 'RepoHistory')).to.equal(undefined);
    expect(
      await run('git', ['-C', dir, 'merge-base', '--is-ancestor', recorded, head1]).then(
        () => true,
        () => false,
      ),
    ).to.equal(true);

    // A force-push of unrelated history.
    const other = join(dir, '..', 'rewrite');
    await run('git', ['init', '-q', '-b', 'main', other]);
    writeFileSync(join(other, 'by-hand.txt'), 'rewritten\n');
    await gitc(other, 'add', '-A');
    await gitc(other, 'commit', '-qm', 'rewrite');
    await gitc(
      other,
      'push',
      '-q',
      '--force',
      repoUrl(s.t.core.endpoints.git, c, s.t.core.credentials.admin),
      'HEAD:main',
    );
    const forced = (await run('git', ['-C', other, 'rev-parse', 'HEAD'])).stdout.trim();
    await s.m.controller.checkDrift();
    await s.m.controller.idle();
    const cond = getCondition(status(c), 'RepoHistory');
    expect(cond).to.include({ status: 'False', reason: 'RepoRewritten' });
    expect(cond!.message).to.include(head1).and.to.include(forced);
    dir = await clone(c);
    expect(existsSync(join(dir, 'edo/cluster/helm-charts.yaml')), 'restored on top').to.equal(true);
    expect(readFileSync(join(dir, 'by-hand.txt'), 'utf8')).to.equal('rewritten\n');
    expect((await run('git', ['-C', dir, 'rev-parse', 'HEAD~1'])).stdout.trim()).to.equal(forced);

    // Nothing moved: nothing to do.
    await s.m.controller.checkDrift();
    expect(s.m.controller.lastDriftCheck).to.deep.include({ moved: 0 });
  });

  it('a ServiceConfig the service cannot use is InvalidServiceConfig on every cluster, and they recover when it is fixed', async () => {
    const scPath = `/v2/app/${u().app.serviceConfig}/object/${u().service.clusterManager}`;
    const good = (await (await cdb('GET', scPath)).json()) as Record<string, unknown>;
    const c = await create({ name: 'Sc_Victim' });
    await waitFor(() => status(c)?.ready, 30_000, undefined, 'ready');
    const bad = { ...good, group: { ...(good.group as object), flux: { uuid: 'not-a-uuid' } } };
    // The app's schema may refuse it; the store then holds it as an operator's direct write would.
    s.t.core.store.put(u().app.serviceConfig, u().service.clusterManager, bad as never);
    await s.m.controller.resync('test');
    const st = await waitFor(
      () => (getCondition(status(c), 'Ready')?.reason === 'InvalidServiceConfig' ? status(c) : undefined),
      20_000,
      undefined,
      'InvalidServiceConfig',
    );
    expect(getCondition(st!, 'Ready')!.message).to.include('group.flux.uuid');
    s.t.core.store.put(u().app.serviceConfig, u().service.clusterManager, good as never);
    await s.m.controller.resync('test');
    await waitFor(() => status(c)?.ready, 30_000, undefined, 'ready again');
  });

  it('answers 404 for an unknown cluster and 403 without Manage clusters', async () => {
    expect((await api('POST', '/v1/cluster/5a8f7c6e-0000-4000-8000-00000000dead/redeploy')).status).to.equal(404);
    const none = await fetch(`${s.url}/v1/cluster/redeploy`, { method: 'POST' });
    expect(none.status).to.equal(401);
  });
});
