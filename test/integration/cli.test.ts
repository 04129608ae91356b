import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { tempDir } from '../helpers/core.js';
import { clone, repoUrl } from '../helpers/git.js';
import { waitFor } from '../helpers/processes.js';
import { unsealValue } from '../helpers/unseal.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const MAIN = join(ROOT, 'src', 'main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `cluster-manager …` in its own Node process, as an operator runs it: stdout a pipe, no terminal. */
function cli(args: string[], opts: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', rej);
    child.on('exit', (code) => res({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

describe('cluster-manager command line (against the service on loopback)', function () {
  this.timeout(120_000);
  let s: ApiStack;
  /** A data directory without endpoints.json, so that only what a test gives is used. */
  let emptyData: string;
  let conn: string[];
  let edgeClusterClass: string;
  const rsa = () => testCert('rsa');

  const run = (args: string[], opts: { env?: Record<string, string>; input?: string } = {}) =>
    cli([...args, ...conn], { ...opts, env: { DATA_DIR: emptyData, ...opts.env } });
  const ok = async (args: string[], opts: { env?: Record<string, string>; input?: string } = {}) => {
    const r = await run(args, opts);
    expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).to.equal(0);
    return r;
  };
  const configdb = (method: string, path: string, body?: unknown) =>
    fetch(`${s.t.core.endpoints.configdb}${path}`, {
      method,
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const members = async () =>
    (await (await configdb('GET', `/v2/class/${edgeClusterClass}/member`)).json()) as string[];
  const uuidOf = async (name: string) => {
    const list = JSON.parse((await ok(['ls', '--json'])).stdout) as Array<{ name: string; uuid: string }>;
    return list.find((c) => c.name === name)!.uuid;
  };

  before(async () => {
    s = await startApiStack();
    emptyData = tempDir('cm-cli-data-');
    edgeClusterClass = s.config.uuids.class.edgeCluster;
    const admin = s.t.core.credentials.admin;
    conn = ['--url', s.url, '--user', admin.username, '--password', admin.password];
    conn.push('--directory', s.t.core.endpoints.directory);
  });
  after(async () => {
    await s?.stop();
  });

  it('--help lists every command and each command has its own help', async () => {
    const r = await cli(['--help']);
    expect(r.code).to.equal(0);
    for (const c of ['serve', 'core', 'check-config', 'ls', 'status', 'create', 'delete', 'bootstrap', 'seal']) {
      expect(r.stdout).to.match(new RegExp(`^  ${c}\\b`, 'm'));
    }
    for (const c of ['secrets', 'rm-secret', 'reseal', 'redeploy', 'login'])
      expect(r.stdout).to.match(new RegExp(`^  ${c}\\b`, 'm'));
    const seal = await cli(['seal', '--help']);
    expect(seal.code).to.equal(0);
    expect(seal.stdout).to.include('--from-file').and.include('--scope').and.include('--dry-run').and.include('--url');
  });

  it('usage errors exit 2 with a message and no stack', async () => {
    const cases: string[][] = [
      ['bogus'],
      ['status'],
      ['seal', 'Demo_1', 'app/db', 'password'],
      ['seal', 'Demo_1', 'app/db', 'password', '-', '--from-literal', 'x'],
      ['seal', 'Demo_1', 'app/db', 'password', '--from-literal', 'x', '--scope', 'everywhere'],
      ['seal', 'Demo_1', 'no-slash', 'password', '--from-literal', 'x'],
      ['redeploy'],
      ['redeploy', 'Demo_1', '--all'],
      ['create', 'Demo_9', '--values', join(emptyData, 'missing.json')],
    ];
    for (const args of cases) {
      const r = await run(args);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.not.match(/^\s+at /m);
      expect(r.stderr.trim(), args.join(' ')).to.not.equal('');
    }
    const noUrl = await cli(['ls'], { env: { DATA_DIR: emptyData } });
    expect(noUrl.code).to.equal(2);
    expect(noUrl.stderr).to.include('--url');
  });

  it('create Demo_1 and status --watch end at ready; ls shows it; a second Demo_1 is refused', async () => {
    const c = await ok(['create', 'Demo_1']);
    expect(c.stdout).to.match(/Created Demo_1 [0-9a-f-]{36}/);
    const w = await ok(['status', 'Demo_1', '--watch', '--timeout', '60']);
    expect(w.stdout).to.match(/Phase:\s+ready/);
    expect(w.stdout).to.match(/Ready\s+True\s+Commissioned\s+\d+s ago/);
    expect(w.stdout).to.not.include('\x1b[');

    const ls = await ok(['ls']);
    expect(ls.stdout).to.match(/^NAME\s+PHASE\s+READY\s+REASON\s+EDGE\s+SECRETS\s+UUID/);
    expect(ls.stdout).to.match(/^Demo_1\s+ready\s+True\s+-\s+\S.*\s+0\s+[0-9a-f-]{36}$/m);
    const json = JSON.parse((await ok(['ls', '--json'])).stdout) as Array<Record<string, unknown>>;
    expect(json.find((x) => x.name === 'Demo_1')).to.include({ phase: 'ready', ready: true, secrets: 0 });

    const st = JSON.parse((await ok(['status', 'Demo_1', '--json'])).stdout) as Record<string, unknown>;
    expect(st).to.include({ phase: 'ready', ready: true });

    const before = (await members()).length;
    const again = await run(['create', 'Demo_1']);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.include('exists already');
    expect((await members()).length).to.equal(before);
  });

  it('create --bare --values --namespace writes those fields; an entry the Config Store refuses leaves no object', async () => {
    const values = join(emptyData, 'values.json');
    writeFileSync(values, JSON.stringify({ replicas: 2 }));
    const r = await ok(['create', 'Demo_2', '--bare', '--values', values, '--namespace', 'edge-two', '--json']);
    const made = JSON.parse(r.stdout) as { uuid: string };
    const entry = (await (
      await configdb('GET', `/v2/app/${s.config.uuids.app.clusterConfig}/object/${made.uuid}`)
    ).json()) as Record<string, unknown>;
    expect(entry).to.deep.equal({ name: 'Demo_2', namespace: 'edge-two', bare: true, values: { replicas: 2 } });

    const before = await members();
    const bad = await run(['create', 'Demo_3', '--chart', 'not-a-uuid']);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/^cluster-manager: .*chart/m);
    expect(await members()).to.have.members(before);
  });

  it('status of an unknown cluster exits 3; a wrong password exits 4 with the service message', async () => {
    const unknown = await run(['status', 'No_Such_Cluster']);
    expect(unknown.code).to.equal(3);
    expect(unknown.stderr).to.include('no cluster named No_Such_Cluster');
    const unknownUuid = await run(['status', '0b6d4a0e-1111-4c4c-9d9d-000000000000']);
    expect(unknownUuid.code).to.equal(3);

    const wrong = await cli(['ls', '--url', s.url, '--user', 'admin', '--password', 'wrong'], {
      env: { DATA_DIR: emptyData },
    });
    expect(wrong.code).to.equal(4);
    expect(wrong.stderr).to.match(/^cluster-manager: \S/);
    expect(wrong.stderr).to.not.match(/^\s+at /m);
    const none = await cli(['ls', '--url', s.url], { env: { DATA_DIR: emptyData, XDG_CONFIG_HOME: emptyData } });
    expect(none.code).to.equal(4);
    expect(none.stderr).to.include('cluster-manager login');
  });

  it('seal from standard input, a literal and a file; secrets lists the keys; the repo holds the value sealed', async () => {
    const uuid = await uuidOf('Demo_1');
    const put = await configdb('PUT', `/v2/app/${s.config.uuids.app.edgeStatus}/object/${uuid}`, {
      kubeseal_cert: rsa().certPem,
    });
    expect(put.status).to.be.oneOf([200, 201, 204]);

    const sealed = await ok(['seal', 'Demo_1', 'app/db', 'password', '-'], { input: 's3cret' });
    expect(sealed.stdout).to.include('Sealed app/db password (strict)');
    await ok(['seal', 'Demo_1', 'app/db', 'username', '--from-literal', 'admin']);
    const file = join(emptyData, 'token.txt');
    writeFileSync(file, 'tok\n');
    await ok(['seal', 'Demo_1', 'app/api', 'token', '--from-file', file, '--scope', 'namespace-wide']);

    const list = await ok(['secrets', 'Demo_1']);
    expect(list.stdout).to.match(/^app\/db\s+strict\s+password,username\s+[0-9a-f]{16}$/m);
    expect(list.stdout).to.match(/^app\/api\s+namespace-wide\s+token\s/m);
    expect(list.stdout).to.not.include('s3cret');
    const one = JSON.parse((await ok(['secrets', 'Demo_1', 'app/db', '--json'])).stdout) as { keys: string[] };
    expect(one.keys).to.have.members(['password', 'username']);

    // The oracle: the committed manifest opens, with the controller's key, to exactly what was piped in.
    const dir = await clone(repoUrl(s.t.core.endpoints.git, uuid, s.t.core.credentials.admin));
    const m = parse(readFileSync(join(dir, 'edo/secrets/app/db.yaml'), 'utf8')) as {
      spec: { encryptedData: Record<string, string> };
    };
    expect(unsealValue(rsa().keyPem, m.spec.encryptedData.password, Buffer.from('app/db')).toString()).to.equal(
      's3cret',
    );
    const api = parse(readFileSync(join(dir, 'edo/secrets/app/api.yaml'), 'utf8')) as typeof m;
    expect(unsealValue(rsa().keyPem, api.spec.encryptedData.token, Buffer.from('app')).toString()).to.equal('tok\n');

    const dry = await ok(['seal', 'Demo_1', 'app/other', 'k', '--from-literal', 'v', '--dry-run']);
    expect((parse(dry.stdout) as { kind: string }).kind).to.equal('SealedSecret');
    expect((await ok(['secrets', 'Demo_1'])).stdout).to.not.include('app/other');

    const missing = await run(['secrets', 'Demo_1', 'app/none']);
    expect(missing.code).to.equal(3);
  });

  it('reseal lists what predates a new certificate; rm-secret removes a key', async () => {
    const uuid = await uuidOf('Demo_1');
    const current = await ok(['reseal', 'Demo_1']);
    expect(current.stdout).to.not.match(/^app\/db/m);
    await configdb('PUT', `/v2/app/${s.config.uuids.app.edgeStatus}/object/${uuid}`, {
      kubeseal_cert: testCert('rsa-other').certPem,
    });
    const stale = await ok(['reseal', 'Demo_1']);
    expect(stale.stdout).to.match(/^app\/db\s+password\s+[0-9a-f]{16}$/m);
    expect(stale.stdout).to.match(/^app\/api\s+token\s/m);
    const json = JSON.parse((await ok(['reseal', 'Demo_1', '--json'])).stdout) as { stale: unknown[] };
    expect(json.stale).to.have.length(3);

    await ok(['rm-secret', 'Demo_1', 'app/db', 'username']);
    const one = JSON.parse((await ok(['secrets', 'Demo_1', 'app/db', '--json'])).stdout) as { keys: string[] };
    expect(one.keys).to.deep.equal(['password']);
  });

  it('bootstrap prints a URL that serves the script, its expiry and the line to run', async () => {
    const r = await ok(['bootstrap', 'Demo_1']);
    const url = /^URL:\s+(\S+)$/m.exec(r.stdout)![1];
    expect(r.stdout).to.match(/^Expires:\s+\d{4}-\d\d-\d\dT.*\(in (59m|60m|1h)\)$/m);
    expect(r.stdout).to.include(`curl -fsS '${url}' | sh`);
    const script = await fetch(url);
    expect(script.status).to.equal(200);
    expect(await script.text()).to.match(/^#!\/bin\/sh/);
    const json = JSON.parse((await ok(['bootstrap', 'Demo_1', '--json'])).stdout) as Record<string, string>;
    expect(Date.parse(json.expires)).to.be.greaterThan(Date.now());
    expect(json.command).to.equal(`curl -fsS '${json.url}' | sh`);
  });

  it('redeploy one cluster by name, and --all', async () => {
    const one = JSON.parse((await ok(['redeploy', 'Demo_1', '--json'])).stdout) as { head: string };
    expect(one.head).to.match(/^[0-9a-f]{40}$/);
    expect((await ok(['redeploy', 'Demo_1'])).stdout).to.include(`Redeployed Demo_1: repo at ${one.head}`);
    const all = JSON.parse((await ok(['redeploy', '--all', '--json'])).stdout) as { queued: number };
    expect(all.queued).to.be.at.least(2);
  });

  it('login keeps a token in a 0600 file that later commands use without a password', async () => {
    const home = tempDir('cm-cli-home-');
    const xdg = join(home, 'xdg');
    mkdirSync(xdg);
    const admin = s.t.core.credentials.admin;
    const env = { HOME: home, XDG_CONFIG_HOME: xdg, DATA_DIR: emptyData };
    const login = await cli(['login', '--url', s.url, '--user', admin.username, '--password', admin.password], { env });
    expect(login.code, login.stderr).to.equal(0);
    const file = join(xdg, 'cluster-manager', 'token.json');
    expect(statSync(file).mode & 0o777).to.equal(0o600);
    expect(statSync(join(xdg, 'cluster-manager')).mode & 0o777).to.equal(0o700);
    expect(readFileSync(file, 'utf8')).to.not.include(admin.password);

    const ls = await cli(['ls', '--url', s.url, '--json'], { env });
    expect(ls.code, ls.stderr).to.equal(0);
    expect((JSON.parse(ls.stdout) as Array<{ name: string }>).map((c) => c.name)).to.include('Demo_1');
    // The token means nothing to the Config Store.
    const create = await cli(['create', 'Demo_4', '--url', s.url], { env });
    expect(create.code, create.stderr).to.equal(2);
    expect(create.stderr).to.include('Config Store');
    // A token the service no longer knows (it keeps them in memory) is refused with a hint.
    writeFileSync(file, JSON.stringify({ url: s.url, token: 'forgotten', expiry: Date.now() + 3_600_000 }));
    const refused = await cli(['ls', '--url', s.url], { env });
    expect(refused.code).to.equal(4);
    expect(refused.stderr).to.include('cluster-manager login again');
    // Without XDG_CONFIG_HOME, ~/.config is used.
    const plain = await cli(['login', '--url', s.url, '--user', admin.username, '--password', admin.password], {
      env: { HOME: home, DATA_DIR: emptyData },
    });
    expect(plain.code).to.equal(0);
    expect(statSync(join(home, '.config', 'cluster-manager', 'token.json')).mode & 0o777).to.equal(0o600);
  });

  it('without options it uses the embedded default endpoints.json in DATA_DIR', async () => {
    const data = tempDir('cm-cli-endpoints-');
    const admin = s.t.core.credentials.admin;
    writeFileSync(
      join(data, 'endpoints.json'),
      JSON.stringify({
        directory: s.t.core.endpoints.directory,
        configdb: s.t.core.endpoints.configdb,
        clusterManager: s.url,
        username: admin.username,
        password: admin.password,
      }),
      { mode: 0o600 },
    );
    const env = { DATA_DIR: data, XDG_CONFIG_HOME: data };
    const r = await cli(['status', 'Demo_1'], { env });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/Phase:\s+ready/);
    // The acceptance path: no option at all, from creation to ready.
    const create = await cli(['create', 'Demo_5'], { env });
    expect(create.code, create.stderr).to.equal(0);
    const watch = await cli(['status', 'Demo_5', '--watch', '--json'], { env });
    expect(watch.code, watch.stderr).to.equal(0);
    const lines = watch.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { phase: string; ready: boolean });
    expect(lines.at(-1)).to.include({ phase: 'ready', ready: true });
  });

  it('delete removes the configuration entry and the cluster goes', async () => {
    const uuid = await uuidOf('Demo_2');
    const r = await ok(['delete', 'Demo_2']);
    expect(r.stdout).to.include(`Deleted Demo_2 ${uuid}`);
    const entry = await configdb('GET', `/v2/app/${s.config.uuids.app.clusterConfig}/object/${uuid}`);
    expect(entry.status).to.equal(404);
    await waitFor(async () => (await run(['status', uuid])).code === 3, 60_000, undefined, 'Demo_2 gone');
    const again = await run(['delete', 'Demo_2']);
    expect(again.code, again.stderr).to.equal(3);
  });
});
