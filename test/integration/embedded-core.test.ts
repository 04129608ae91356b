import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/index.js';
import { Local, Known } from '../../src/embedded/seed/local-uuids.js';
import { adminAuth, basic, startTestCore, tempDir, type TestCore } from '../helpers/core.js';
import { encodePayload } from '../../src/lib/sparkplug/index.js';
import { subscribe } from '../helpers/mqtt.js';
import { waitFor } from '../helpers/processes.js';

const run = promisify(execFile);
const u = loadConfig({ env: {} }).uuids;
const CLUSTER_CLASS = u.class.edgeCluster;

function gitEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 't',
    GIT_AUTHOR_EMAIL: 't@t',
    GIT_COMMITTER_NAME: 't',
    GIT_COMMITTER_EMAIL: 't@t',
  };
}

function gitUrl(base: string, path: string, user?: { username: string; password: string }): string {
  const url = new URL(path, base);
  if (user) {
    url.username = encodeURIComponent(user.username);
    url.password = encodeURIComponent(user.password);
  }
  return url.href;
}

/** The embedded Git server's backend host processes started by this process. */
async function backendHosts(): Promise<number[]> {
  const { stdout } = await run('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)]).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .filter((l) => l.includes('backend-host'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

async function git(cwd: string, ...args: string[]) {
  return run('git', args, { cwd, env: gitEnv() });
}

describe('embedded Factory+ core', function () {
  this.timeout(60_000);
  let t: TestCore;
  let auth: string;
  const req = (base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(new URL(path, base), {
      method,
      headers: {
        Authorization: auth,
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  before(async () => {
    t = await startTestCore();
    auth = adminAuth(t.core);
  });
  after(async () => {
    await t.stop();
  });

  it('is seeded with the templates, ServiceConfig and schemas the Cluster Manager needs', async () => {
    const { configdb } = t.core.endpoints;
    for (const [app, obj] of [
      [u.app.fluxTemplate, u.app.fluxTemplate],
      [u.app.bootstrapTemplate, u.app.bootstrapTemplate],
      [u.app.k8sTemplate, u.resource.helmRelease],
      [u.app.helmChartTemplate, Local.chart.cluster],
      [u.app.serviceConfig, u.service.clusterManager],
      [u.app.configSchema, u.app.clusterConfig],
    ]) {
      const r = await req(configdb, 'GET', `/v2/app/${app}/object/${obj}`);
      expect(r.status, `${app}/${obj}`).to.equal(200);
    }
    const sc = await (
      await req(configdb, 'GET', `/v2/app/${u.app.serviceConfig}/object/${u.service.clusterManager}`)
    ).json();
    expect(sc.group.cluster).to.deep.equal({ path: 'cluster', uuid: Local.repoGroup.cluster });
    expect(sc.repo.helm.uuid).to.equal(Local.repo.helmCharts);
  });

  it('advertises every service in the Directory', async () => {
    const { directory, configdb, git: gitBase, auth: authBase } = t.core.endpoints;
    for (const [svc, url] of [
      [u.service.configdb, configdb],
      [u.service.git, gitBase],
      [u.service.auth, authBase],
    ]) {
      const list = await (await req(directory, 'GET', `/v1/service/${svc}`)).json();
      expect(list).to.have.length(1);
      expect(list[0].url).to.equal(url);
    }
  });

  it('creates a cluster object and configuration entry, rejecting invalid entries with 422', async () => {
    const { configdb } = t.core.endpoints;
    const created = await req(configdb, 'POST', '/v2/object', { class: CLUSTER_CLASS });
    expect(created.status).to.equal(201);
    const { uuid } = await created.json();
    const bad = await req(configdb, 'PUT', `/v2/app/${u.app.clusterConfig}/object/${uuid}`, { name: 'Building_1' });
    expect(bad.status).to.equal(422);
    const err = await bad.json();
    expect(err.message).to.match(/namespace/);
    expect((await req(configdb, 'GET', `/v2/app/${u.app.clusterConfig}/object/${uuid}`)).status).to.equal(404);
    const good = await req(configdb, 'PUT', `/v2/app/${u.app.clusterConfig}/object/${uuid}`, {
      name: 'Building_1',
      namespace: 'fplus-edge',
      chart: Local.chart.cluster,
    });
    expect(good.status).to.equal(201);
    const list = await (await req(configdb, 'GET', `/v2/app/${u.app.clusterConfig}/object`)).json();
    expect(list).to.include(uuid);
  });

  it('publishes change notifications as Sparkplug NDATA on MQTT', async () => {
    const { configdb, mqtt } = t.core.endpoints;
    const sub = await subscribe(
      mqtt,
      { username: 'admin', password: t.core.credentials.admin.password },
      'spBv1.0/AMRC-Service-Core/+/Config_DB',
    );
    try {
      const obj = (await (await req(configdb, 'POST', '/v2/object', { class: CLUSTER_CLASS })).json()).uuid;
      await req(configdb, 'PUT', `/v2/app/${u.app.clusterConfig}/object/${obj}`, {
        name: 'Notify_1',
        namespace: 'edge',
      });
      const msg = await sub.waitFor(
        (m) =>
          m.topic.endsWith('/NDATA/Config_DB') &&
          m.payload?.metrics?.some((x) => x.name === 'Last_Changed/Application' && x.value === u.app.clusterConfig) ===
            true,
        5000,
      );
      expect(msg.payload?.metrics).to.have.length(1);
      expect(msg.payload?.metrics?.[0].type).to.equal('UUID');
      // An unchanged write is not a change.
      const before = sub.messages.length;
      await req(configdb, 'PUT', `/v2/app/${u.app.clusterConfig}/object/${obj}`, {
        name: 'Notify_1',
        namespace: 'edge',
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(sub.messages.length).to.equal(before);
    } finally {
      await sub.close();
    }
  });

  it("keeps the Config_DB node's bdSeq across a core restart, so a host never sees it start again at 0", async () => {
    // A broker of its own: on a shared one, other cores' Config_DB nodes publish on the same topics.
    const own = await startTestCore({ embeddedBroker: true });
    const birthBdSeq = async (): Promise<bigint> => {
      const creds = { username: 'admin', password: own.core.credentials.admin.password };
      const sub = await subscribe(own.core.endpoints.mqtt, creds, 'spBv1.0/AMRC-Service-Core/NBIRTH/Config_DB');
      try {
        // The node was born before this subscription: ask it to birth again.
        const rebirth = encodePayload({
          timestamp: Date.now(),
          metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }],
        });
        await sub.client.publishAsync('spBv1.0/AMRC-Service-Core/NCMD/Config_DB', Buffer.from(rebirth), { qos: 1 });
        const birth = await sub.waitFor(() => true, 5000);
        return BigInt(birth.payload!.metrics!.find((m) => m.name === 'bdSeq')!.value as number | bigint);
      } finally {
        await sub.close();
      }
    };
    try {
      const first = await birthBdSeq();
      await own.restart({ samePorts: true });
      const second = await birthBdSeq();
      expect(second).to.equal((first + 1n) % 256n);
    } finally {
      await own.stop();
    }
  });

  it('answers ACL reads for granted, not granted and wildcard permissions', async () => {
    const { auth: authBase } = t.core.endpoints;
    const cm = Local.account.clusterManager;
    const acl = (await (await req(authBase, 'GET', `/v2/acl/${cm}`)).json()) as Array<{
      permission: string;
      target: string;
    }>;
    expect(acl).to.deep.include({ permission: Known.perm.readConfig, target: u.app.clusterConfig });
    expect(acl).to.deep.include({ permission: Known.perm.manageKerberos, target: Known.special.wildcard });
    expect(acl.some((e) => e.permission === Known.perm.writeConfig && e.target === u.app.clusterConfig)).to.equal(
      false,
    );
    const adminAcl = await (await req(authBase, 'GET', `/v2/acl/${Local.account.admin}`)).json();
    expect(adminAcl).to.deep.include({ permission: u.perm.manageClusters, target: Known.special.wildcard });
  });

  it('serves git over smart HTTP for repos that have a configuration entry, with Pull/Push checked', async () => {
    const { configdb, git: gitBase } = t.core.endpoints;
    const admin = t.core.credentials.admin;
    const cm = t.core.credentials.clusterManager;
    const repo = (await (await req(configdb, 'POST', '/v2/object', { class: CLUSTER_CLASS })).json()).uuid;
    const wd = tempDir('git-');

    // No configuration entry: no repo.
    await expectGitFailure(git(wd, 'clone', '-q', gitUrl(gitBase, `/uuid/${repo}`, admin), 'none'), /404|not found/i);

    expect(
      (await req(configdb, 'PUT', `/v2/app/${u.app.gitRepoConfig}/object/${repo}`, { path: 'cluster/Test_Repo' }))
        .status,
    ).to.equal(201);
    await git(wd, 'clone', '-q', gitUrl(gitBase, `/uuid/${repo}`, admin), 'a');
    mkdirSync(join(wd, 'a', 'by-hand'));
    writeFileSync(join(wd, 'a', 'by-hand', 'x.yaml'), 'kind: ConfigMap\n');
    await git(join(wd, 'a'), 'add', '-A');
    await git(join(wd, 'a'), 'commit', '-qm', 'first');
    await git(join(wd, 'a'), 'push', '-q', 'origin', 'HEAD:main');

    await git(wd, 'clone', '-q', gitUrl(gitBase, '/git/cluster/Test_Repo', admin), 'b');
    expect(readFileSync(join(wd, 'b', 'by-hand', 'x.yaml'), 'utf8')).to.equal('kind: ConfigMap\n');

    // The Cluster Manager account may push only to repos in the cluster repo group.
    await expectGitFailure(git(wd, 'clone', '-q', gitUrl(gitBase, `/uuid/${repo}`, cm), 'c'), /403|denied/i);
    expect((await req(configdb, 'PUT', `/v2/class/${Local.repoGroup.cluster}/direct/member/${repo}`)).status).to.equal(
      204,
    );
    await git(wd, 'clone', '-q', gitUrl(gitBase, `/uuid/${repo}`, cm), 'c');
    writeFileSync(join(wd, 'c', 'README.md'), 'managed\n');
    await git(join(wd, 'c'), 'add', '-A');
    await git(join(wd, 'c'), 'commit', '-qm', 'second');
    await git(join(wd, 'c'), 'push', '-q', 'origin', 'HEAD:main');

    // Wrong password and no credentials are refused.
    await expectGitFailure(
      git(wd, 'clone', '-q', gitUrl(gitBase, `/uuid/${repo}`, { username: 'admin', password: 'wrong' }), 'd'),
      /401|Authentication failed/i,
    );
    await expectGitFailure(
      git(wd, 'clone', '-q', gitUrl(gitBase, `/uuid/${repo}`), 'e'),
      /401|Authentication|could not read Username/i,
    );

    const branches = await (await req(gitBase, 'GET', `/v1/status/${repo}`)).json();
    expect(branches.main).to.match(/^[0-9a-f]{40}$/);
  });

  it('resolves a repo path from the current configuration entries, and a path two repos claim to neither', async () => {
    const { configdb, git: gitBase } = t.core.endpoints;
    const refs = async (path: string) =>
      (await req(gitBase, 'GET', `/git/${path}/info/refs?service=git-upload-pack`)).status;
    const setPath = async (repo: string, path: string) =>
      expect(
        (await req(configdb, 'PUT', `/v2/app/${u.app.gitRepoConfig}/object/${repo}`, { path })).status,
      ).to.be.oneOf([201, 204]);
    const newRepo = async () =>
      (await (await req(configdb, 'POST', '/v2/object', { class: CLUSTER_CLASS })).json()).uuid;

    expect(await refs('cluster/Path_One')).to.equal(404);
    const one = await newRepo();
    await setPath(one, 'cluster/Path_One');
    expect(await refs('cluster/Path_One')).to.equal(200);
    const two = await newRepo();
    await setPath(two, 'cluster/Path_One');
    expect(await refs('cluster/Path_One')).to.equal(404);
    await setPath(two, 'cluster/Path_Two');
    expect(await refs('cluster/Path_One')).to.equal(200);
    expect(await refs('cluster/Path_Two')).to.equal(200);
  });

  it('has the shared Helm repo with flux-system/flux-system.yaml', async () => {
    const wd = tempDir('helm-');
    await git(
      wd,
      'clone',
      '-q',
      gitUrl(t.core.endpoints.git, `/uuid/${Local.repo.helmCharts}`, t.core.credentials.admin),
      'h',
    );
    expect(existsSync(join(wd, 'h', 'flux-system', 'flux-system.yaml'))).to.equal(true);
  });

  it('runs git http-backend from a small helper process that comes back if it dies, and goes with the core', async () => {
    const helmUrl = gitUrl(t.core.endpoints.git, `/uuid/${Local.repo.helmCharts}`, t.core.credentials.admin);
    await git(tempDir('helm-'), 'clone', '-q', helmUrl, 'h');
    const [helper] = await backendHosts();
    expect(helper, 'a backend host process').to.be.a('number');
    process.kill(helper!, 'SIGKILL');
    await waitFor(async () => !(await backendHosts()).includes(helper!), 5_000, undefined, 'the helper gone');
    await git(tempDir('helm-'), 'clone', '-q', helmUrl, 'h');
    const [again] = await backendHosts();
    expect(again, 'a new backend host').to.be.a('number').and.not.equal(helper);

    const other = await startTestCore();
    const before = await backendHosts();
    await git(
      tempDir('helm-'),
      'clone',
      '-q',
      gitUrl(other.core.endpoints.git, `/uuid/${Local.repo.helmCharts}`, other.core.credentials.admin),
      'h',
    );
    const theirs = (await backendHosts()).filter((p) => !before.includes(p));
    expect(theirs).to.have.length(1);
    await other.stop();
    expect(await backendHosts(), 'stopped with its core').to.not.include(theirs[0]);
  });

  it('prints nothing on stderr when a client hangs up in the middle of an answer (a killed manager)', async () => {
    const repo = `/uuid/${Local.repo.helmCharts}`;
    const refs = await (await req(t.core.endpoints.git, 'GET', `${repo}/info/refs?service=git-upload-pack`)).text();
    const head = /([0-9a-f]{40}) refs\/heads\/main/.exec(refs)?.[1];
    expect(head, 'the Helm repo head').to.be.a('string');
    const pkt = (line: string) => (line.length + 4).toString(16).padStart(4, '0') + line;
    const written: string[] = [];
    const realWrite = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      written.push(String(chunk));
      return (realWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    let cut = 0;
    try {
      for (let i = 0; i < 5; i++) {
        await new Promise<void>((resolve, reject) => {
          const r = httpRequest(
            new URL(`${repo}/git-upload-pack`, t.core.endpoints.git),
            {
              method: 'POST',
              headers: { Authorization: auth, 'Content-Type': 'application/x-git-upload-pack-request' },
            },
            (res) =>
              res.once('data', () => {
                cut++;
                r.destroy();
                setTimeout(resolve, 150);
              }),
          );
          r.on('error', () => {
            /* our own hang-up */
          });
          r.on('close', () => setTimeout(resolve, 150));
          r.end(`${pkt(`want ${head}\n`)}0000${pkt('done\n')}`, (err?: Error | null) => err && reject(err));
        });
      }
    } finally {
      process.stderr.write = realWrite;
    }
    console.log(
      `    [core/stderr] ${cut} pack downloads cut after their first bytes; stderr got ${written.length} writes`,
    );
    expect(cut, 'answers that started and were cut').to.equal(5);
    expect(written.join('')).to.equal('');
  });

  it('rejects bad requests with JSON errors and changes nothing', async () => {
    const { configdb, auth: authBase, directory, git: gitBase } = t.core.endpoints;
    const before = await (await req(configdb, 'GET', `/v2/app/${u.app.clusterConfig}/object`)).json();
    const cases: Array<[string, string, string, RequestInit]> = [
      [
        configdb,
        'PUT',
        `/v2/app/not-a-uuid/object/${Local.chart.cluster}`,
        { body: '{}', headers: { 'Content-Type': 'application/json' } },
      ],
      [
        configdb,
        'PUT',
        `/v2/app/6a1e1c52-6f0e-4a51-9d53-4c3b1f0e9e11/object/${Local.chart.cluster}`,
        { body: '{}', headers: { 'Content-Type': 'application/json' } },
      ],
      [configdb, 'POST', '/v2/object', { body: '{not json', headers: { 'Content-Type': 'application/json' } }],
      [
        configdb,
        'POST',
        '/v2/object',
        { body: JSON.stringify({ class: CLUSTER_CLASS }), headers: { 'Content-Type': 'text/plain' } },
      ],
      [authBase, 'GET', '/v2/acl/zzz', {}],
      [directory, 'GET', '/v1/device/not-a-uuid', {}],
      [gitBase, 'GET', '/uuid/not-a-uuid/info/refs', {}],
    ];
    for (const [base, method, path, init] of cases) {
      const r = await fetch(new URL(path, base), {
        method,
        ...init,
        headers: { Authorization: auth, ...((init.headers as Record<string, string>) ?? {}) },
      });
      expect(r.status, `${method} ${path}`).to.be.within(400, 499);
      const body = await r.json();
      expect(body.message, `${method} ${path}`).to.be.a('string').and.not.empty;
    }
    for (const base of [configdb, authBase, directory, gitBase]) {
      const r = await fetch(new URL('/ping', base).href.replace('/ping', '/v2/app'), {});
      expect(r.status).to.equal(401);
      expect(r.headers.get('www-authenticate')).to.match(/Basic/);
      expect((await r.json()).message).to.be.a('string');
    }
    const after = await (await req(configdb, 'GET', `/v2/app/${u.app.clusterConfig}/object`)).json();
    expect(after).to.deep.equal(before);
  });

  it('keeps every entry, grant and repo across a restart', async () => {
    const { configdb } = t.core.endpoints;
    const obj = (await (await req(configdb, 'POST', '/v2/object', { class: CLUSTER_CLASS })).json()).uuid;
    await req(configdb, 'PUT', `/v2/app/${u.app.clusterConfig}/object/${obj}`, { name: 'Persist', namespace: 'edge' });
    const before = await (await req(configdb, 'GET', `/v2/app/${u.app.clusterConfig}/object`)).json();
    const password = t.core.credentials.admin.password;
    await t.restart();
    expect(t.core.credentials.admin.password).to.equal(password);
    const after = await (await req(t.core.endpoints.configdb, 'GET', `/v2/app/${u.app.clusterConfig}/object`)).json();
    expect(after).to.deep.equal(before);
    const entry = await (
      await req(t.core.endpoints.configdb, 'GET', `/v2/app/${u.app.clusterConfig}/object/${obj}`)
    ).json();
    expect(entry).to.deep.equal({ name: 'Persist', namespace: 'edge' });
    expect(t.core.auth.check(t.core.auth.principal(Local.account.clusterManager)!, u.perm.gitPush, obj)).to.equal(
      false,
    );
    const cmAcl = await (await req(t.core.endpoints.auth, 'GET', `/v2/acl/${Local.account.clusterManager}`)).json();
    expect(cmAcl.length).to.be.greaterThan(5);
  });

  it('accepts the admin credential with Basic and with a bearer token from every service', async () => {
    for (const base of Object.values({
      a: t.core.endpoints.configdb,
      b: t.core.endpoints.auth,
      c: t.core.endpoints.directory,
      d: t.core.endpoints.git,
    })) {
      const tok = await (
        await fetch(new URL('/token', base), { method: 'POST', headers: { Authorization: adminAuth(t.core) } })
      ).json();
      expect(tok.token).to.be.a('string');
      const ping = await fetch(new URL('/ping', base), { headers: { Authorization: `Bearer ${tok.token}` } });
      expect(ping.status).to.equal(200);
      const wrong = await fetch(new URL('/token', base), {
        method: 'POST',
        headers: { Authorization: basic('admin', 'nope') },
      });
      expect(wrong.status).to.equal(401);
    }
  });
});

async function expectGitFailure(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    const msg = `${(e as { stderr?: string }).stderr ?? ''} ${(e as Error).message}`;
    expect(msg).to.match(pattern);
    return;
  }
  expect.fail('git command was expected to fail');
}
