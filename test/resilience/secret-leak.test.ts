import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino, type Logger } from 'pino';
import { loadConfig } from '../../src/config/index.js';
import type { Config } from '../../src/config/types.js';
import { startEmbeddedCore, type EmbeddedCore } from '../../src/embedded/core.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { createApi } from '../../src/http/index.js';
import { listen, type Listening } from '../../src/lib/listen.js';
import { startManager, type Manager } from '../../src/manager.js';
import { testCert } from '../helpers/certs.js';
import { adminAuth, basic, tempDir } from '../helpers/core.js';
import { gitEnv } from '../helpers/git.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import { waitFor } from '../helpers/processes.js';

/*
 * Secret values must never leave the sealing code in plaintext. Values that
 * carry a marker unique to this run (in ASCII and inside binary data) are
 * sealed through the API, also as dry runs, into clusters without a
 * certificate, over the size limit, with a bad scope, cut off mid-body;
 * some are deleted and the listings fetched. Then the marker — as is, in
 * base64 and base64url at every alignment, in hex and as a JSON byte list —
 * must appear in none of: the manager's and the core's logs (pino at
 * 'trace' into memory), process stderr, any HTTP answer (headers and body),
 * the setup status entries and every other Config Store entry, any Sparkplug
 * message on spBv1.0/# (topic and raw payload), the cluster repo's full
 * history (`git log -p --all` of a real clone) and raw objects
 * (`git cat-file --batch-all-objects --batch` in the bare repo), and any file
 * in either data directory.
 *
 * The stack is built here from the parts test/helpers/api.ts uses, because
 * that helper hard-wires a silent logger.
 */

const run = promisify(execFile);

/** Every encoding of `marker` a leak could plausibly take. */
function leakForms(marker: Buffer): Array<{ form: string; bytes: Buffer }> {
  const out: Array<{ form: string; bytes: Buffer }> = [{ form: 'plain', bytes: marker }];
  for (const enc of ['base64', 'base64url'] as const) {
    for (let k = 0; k < 3; k++) {
      // The characters fully determined by the marker when it starts k bytes into a value.
      const text = Buffer.concat([Buffer.alloc(k, 0xa5), marker]).toString(enc);
      const from = Math.ceil((8 * k) / 6);
      const to = Math.floor((8 * (k + marker.length)) / 6);
      out.push({ form: `${enc}@${k}`, bytes: Buffer.from(text.slice(from, to)) });
    }
  }
  out.push({ form: 'hex', bytes: Buffer.from(marker.toString('hex')) });
  out.push({ form: 'HEX', bytes: Buffer.from(marker.toString('hex').toUpperCase()) });
  out.push({ form: 'json-bytes', bytes: Buffer.from([...marker].join(',')) });
  return out;
}

describe('resilience: secret values never leak', function () {
  this.timeout(60_000);
  const marker = `LEAKMARK${randomBytes(12).toString('hex')}`;
  const pwMarker = `PWMARK${randomBytes(12).toString('hex')}`;
  const forms = [
    ...leakForms(Buffer.from(marker)).map((f) => ({ ...f, what: 'value' })),
    ...leakForms(Buffer.from(pwMarker)).map((f) => ({ ...f, what: 'password' })),
  ];

  const managerLogs: string[] = [];
  const coreLogs: string[] = [];
  const stderr: string[] = [];
  const answers: Array<{ what: string; status: number; headers: string; body: Buffer }> = [];
  const realStderrWrite = process.stderr.write.bind(process.stderr);

  let core: EmbeddedCore;
  let coreDir: string;
  let config: Config;
  let m: Manager;
  let server: Listening;
  let url = '';
  let admin = '';
  let sub: Subscriber;
  let A: string; // certificate, secrets sealed, some deleted
  let B: string; // no certificate: sealing fails with 503 after the body is read
  const sent: Buffer[] = [];

  const memoryLogger = (sink: string[]): Logger =>
    pino(
      { level: 'trace' },
      {
        write: (line: string) => {
          sink.push(line);
        },
      },
    );

  /** An HTTP call whose whole answer is kept for the scan. */
  const call = async (
    what: string,
    method: string,
    path: string,
    body?: Buffer | string,
    auth: string | null = admin,
    headers: Record<string, string> = {},
  ) => {
    if (body !== undefined) sent.push(Buffer.from(body));
    const res = await fetch(`${url}${path}`, {
      method,
      body: body === undefined ? undefined : new Uint8Array(Buffer.from(body)),
      headers: { ...(auth ? { Authorization: auth } : {}), ...headers },
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    answers.push({
      what,
      status: res.status,
      headers: [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n'),
      body: bytes,
    });
    return { status: res.status, text: bytes.toString('utf8') };
  };
  const secret = (cluster: string, ns: string, name: string, key: string, q = '') =>
    `/v1/cluster/${cluster}/secret/${ns}/${name}/${key}${q}`;
  const putEdgeStatus = async (cluster: string, body: unknown) => {
    const r = await fetch(`${core.endpoints.configdb}/v2/app/${config.uuids.app.edgeStatus}/object/${cluster}`, {
      method: 'PUT',
      headers: { Authorization: admin, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(r.status).to.be.oneOf([201, 204]);
  };
  const createCluster = async (name: string) => {
    const uuid = core.objects.create({ class: config.uuids.class.edgeCluster, owner: Local.account.admin }).registration
      .uuid;
    const r = await fetch(`${core.endpoints.configdb}/v2/app/${config.uuids.app.clusterConfig}/object/${uuid}`, {
      method: 'PUT',
      headers: { Authorization: admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, namespace: 'fplus-edge' }),
    });
    expect(r.status).to.equal(201);
    await waitFor(() => m.status.get(uuid)?.ready === true, 30_000, undefined, `cluster ${name} ready`);
    return uuid;
  };

  /** Which marker forms occur in `hay`. */
  const leaks = (hay: Buffer | string): string[] => {
    const b = Buffer.isBuffer(hay) ? hay : Buffer.from(hay, 'utf8');
    return forms.filter((f) => b.includes(f.bytes)).map((f) => `${f.what}/${f.form}`);
  };
  const git = async (args: string[], cwd?: string) =>
    (await run('git', args, { cwd, env: gitEnv, maxBuffer: 256 * 1024 * 1024, encoding: 'buffer' }))
      .stdout as unknown as Buffer;
  const filesUnder = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? filesUnder(p) : [p];
    });

  before(async () => {
    testCert('rsa');
    testCert('rsa-other');
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      // Kept for the scan, not shown: Koa's default error handler prints stack traces here.
      stderr.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      (rest.find((x) => typeof x === 'function') as (() => void) | undefined)?.();
      return true;
    }) as typeof process.stderr.write;

    coreDir = tempDir('leak-core-');
    const base = loadConfig({ env: {}, overrides: { profile: 'seed' } });
    core = await startEmbeddedCore({
      dataDir: coreDir,
      host: '127.0.0.1',
      ports: { directory: 0, configdb: 0, auth: 0, git: 0, mqtt: 0, cmdesc: 0 },
      uuids: base.uuids,
      organisation: base.factoryplus.organisation,
      realm: base.factoryplus.realm,
      domain: base.factoryplus.externalDomain,
      adminUsername: 'admin',
      externalMqttUrl: process.env.TEST_MQTT_URL || undefined,
      log: memoryLogger(coreLogs),
    });
    admin = adminAuth(core);
    // Subscribed before the manager starts, so its births are seen too.
    sub = await subscribe(core.endpoints.mqtt, core.credentials.admin, 'spBv1.0/#');
    config = loadConfig({ env: {}, overrides: { dataDir: tempDir('leak-cm-'), reconcile: { resyncSeconds: 600 } } });
    const log = memoryLogger(managerLogs);
    log.trace('trace-probe');
    m = await startManager({
      config,
      directoryUrl: core.endpoints.directory,
      credentials: core.credentials.clusterManager,
      mqttProtocol: process.env.TEST_MQTT_URL ? 5 : 4,
      log,
    });
    const api = createApi(m, log, { externalUrl: () => url });
    server = await listen(api.app.callback(), '127.0.0.1', 0);
    url = server.url.replace(/\/$/, '');
    await waitFor(() => m.controller.ready, 10_000, undefined, 'first resync');
    [A, B] = await Promise.all([createCluster('Leak_A'), createCluster('Leak_B')]);
    await putEdgeStatus(A, { kubeseal_cert: testCert('rsa').certPem });
  });

  after(async () => {
    process.stderr.write = realStderrWrite;
    await sub?.close();
    await server?.close();
    await m?.stop();
    await core?.stop();
  });

  it('seals, dry-runs, fails, deletes and lists values carrying the marker', async () => {
    const ascii = `password=${marker};`;
    const binary = Buffer.concat([
      randomBytes(200),
      Buffer.from(marker),
      Buffer.from([0, 0xff, 0xfe, 0x80]),
      randomBytes(100),
    ]);
    const big = Buffer.concat([randomBytes(300_000), Buffer.from(marker), randomBytes(1000)]);
    const want = async (what: string, status: number | number[], p: Promise<{ status: number; text: string }>) => {
      const r = await p;
      expect(r.status, `${what}: ${r.text.slice(0, 300)}`).to.be.oneOf(Array.isArray(status) ? status : [status]);
      console.log(`    [leak] injected ${what} -> ${r.status}`);
    };
    // Values put with the administrator's credential, each named in the report of what was sent and answered.
    const puts: Array<[string, number, string, Buffer | string]> = [
      ['ASCII value (strict)', 204, secret(A, 'app', 'db', 'password'), ascii],
      ['binary value (strict)', 204, secret(A, 'app', 'db', 'blob'), binary],
      ['marker alone, namespace-wide', 204, secret(A, 'app', 'nsw', 'token', '?scope=namespace-wide'), marker],
      [
        '300 KB binary with the marker, cluster-wide',
        204,
        secret(A, 'other', 'cw', 'data', '?scope=cluster-wide'),
        big,
      ],
      ['marker JSON, to be deleted', 204, secret(A, 'app', 'doomed', 'k', ''), JSON.stringify({ token: marker })],
      ['ASCII value, dry run', 200, secret(A, 'app', 'db', 'password', '?dryrun'), ascii],
      ['binary value, dry run (new secret)', 200, secret(A, 'dry', 'only', 'k', '?dryrun'), binary],
      ['scope conflict (cluster-wide over strict)', 409, secret(A, 'app', 'db', 'other', '?scope=cluster-wide'), ascii],
      ['scope conflict, dry run', 409, secret(A, 'app', 'db', 'other', '?scope=cluster-wide&dryrun'), ascii],
      ['cluster without a certificate', 404, secret(B, 'app', 'db', 'password'), ascii],
      ['unknown cluster', 404, secret('00000000-0000-4000-8000-000000000000', 'app', 'db', 'password'), ascii],
      ['bad scope', 400, secret(A, 'app', 'db', 'password', '?scope=bogus'), ascii],
      ['bad key', 400, secret(A, 'app', 'db', 'bad%20key'), ascii],
      [
        'over 1 MiB',
        413,
        secret(A, 'app', 'db', 'password'),
        Buffer.concat([Buffer.alloc(1024 * 1024), Buffer.from(marker)]),
      ],
    ];
    for (const [what, status, path, body] of puts) await want(what, status, call(what, 'PUT', path, body));
    await want(
      'marker as the body of POST /token',
      200,
      call('token body', 'POST', '/token', JSON.stringify({ marker }), admin, { 'Content-Type': 'application/json' }),
    );
    await want(
      'marker as the body of POST bootstrap-url',
      200,
      call('bootstrap-url body', 'POST', `/v1/cluster/${A}/bootstrap-url`, marker),
    );
    await want(
      'wrong password carrying the password marker',
      401,
      call('wrong password', 'GET', '/v1/cluster', undefined, basic('admin', pwMarker)),
    );
    await want(
      'password marker as user name',
      401,
      call('wrong user', 'PUT', secret(A, 'app', 'db', 'password'), ascii, basic(pwMarker, 'x')),
    );

    // A client that hangs up half way through a value.
    const { port, hostname } = new URL(url);
    const k = connect(Number(port), hostname);
    k.on('error', () => undefined);
    await new Promise<void>((r) => k.once('connect', () => r()));
    k.write(
      `PUT ${secret(A, 'app', 'cut', 'k')} HTTP/1.1\r\nHost: x\r\nAuthorization: ${admin}\r\nContent-Length: 100000\r\n\r\n${ascii}`,
    );
    await new Promise((r) => setTimeout(r, 100));
    k.destroy();
    console.log('    [leak] injected a value cut off mid-body by the client');

    // An Edge cluster status whose certificate is not one: the value is read, then refused.
    await putEdgeStatus(B, {
      kubeseal_cert: `-----BEGIN CERTIFICATE-----\n${Buffer.from('junk').toString('base64')}\n-----END CERTIFICATE-----\n`,
    });
    await want(
      'cluster with an unusable certificate',
      [422, 503],
      call('bad cert', 'PUT', secret(B, 'app', 'db', 'password'), ascii),
    );

    await want('delete one key', 204, call('delete', 'DELETE', secret(A, 'app', 'doomed', 'k')));
    await want('delete dry run', 200, call('delete dryrun', 'DELETE', secret(A, 'app', 'db', 'blob', '?dryrun')));
    await want('delete absent key', [204, 404], call('delete absent', 'DELETE', secret(A, 'app', 'db', 'absent')));
    // A rotated certificate makes every value stale: the re-seal report names them.
    await putEdgeStatus(A, { kubeseal_cert: testCert('rsa-other').certPem });
    for (const [what, path] of [
      ['list', `/v1/cluster/${A}/secret`],
      ['one secret', `/v1/cluster/${A}/secret/app/db`],
      ['status', `/v1/cluster/${A}/status`],
      ['clusters', '/v1/cluster'],
      ['metrics', '/metrics'],
      ['health', '/health'],
      ['ping', '/ping'],
      ['openapi', '/openapi.json'],
    ] as const)
      await want(`GET ${what}`, 200, call(what, 'GET', path));
    await want('re-seal report', 200, call('reseal', 'POST', `/v1/cluster/${A}/secret-reseal`));
    await waitFor(() => m.status.pending === 0, 10_000, undefined, 'status writes settled');
    await new Promise((r) => setTimeout(r, 500)); // Sparkplug DDATA after the last status change
  });

  it('the checks can see the marker where it is (positive controls)', () => {
    expect(
      sent.some((b) => leaks(b).includes('value/plain')),
      'marker found in what was sent',
    ).to.equal(true);
    const b64 = Buffer.from(Buffer.concat([randomBytes(7), Buffer.from(marker)]).toString('base64'));
    expect(
      leaks(b64).some((f) => f.startsWith('value/base64@')),
      'base64 form found in base64 of a value',
    ).to.equal(true);
    expect(managerLogs.length, 'manager log lines captured').to.be.above(1);
    expect(
      managerLogs.some((l) => l.includes('trace-probe') && /"level":10/.test(l)),
      'trace level reaches the capture',
    ).to.equal(true);
    expect(
      managerLogs.some((l) => /"level":(20|30)/.test(l) && !l.includes('trace-probe')),
      'the manager itself logged',
    ).to.equal(true);
    expect(coreLogs.length, 'core log lines captured').to.be.above(0);
    expect(sub.messages.length, 'Sparkplug messages received').to.be.above(0);
    expect(answers.length).to.be.above(20);
    console.log(
      `    [leak] checked the probes: ${managerLogs.length} manager + ${coreLogs.length} core log lines, ${sub.messages.length} Sparkplug messages, ${answers.length} HTTP answers`,
    );
  });

  it('not in the logs or on stderr', () => {
    const found: string[] = [];
    for (const [name, lines] of [
      ['manager log', managerLogs],
      ['core log', coreLogs],
      ['stderr', stderr],
    ] as const) {
      for (const [i, l] of lines.entries()) {
        const f = leaks(l);
        if (f.length) found.push(`${name} line ${i}: ${f.join(',')}: ${l.slice(0, 300)}`);
      }
    }
    console.log(
      `    [leak] checked ${managerLogs.length + coreLogs.length} log lines and ${stderr.length} stderr writes for ${forms.length} marker forms: ${found.length} hits`,
    );
    expect(found).to.deep.equal([]);
  });

  it('not in any HTTP answer, headers or body', () => {
    const found = answers.flatMap((a) => [
      ...leaks(a.headers).map((f) => `${a.what} headers: ${f}`),
      ...leaks(a.body).map((f) => `${a.what} body (${a.status}): ${f}`),
    ]);
    console.log(
      `    [leak] checked ${answers.length} HTTP answers (${answers.reduce((n, a) => n + a.body.length, 0)} body bytes): ${found.length} hits`,
    );
    expect(found).to.deep.equal([]);
  });

  it('not in the setup status or any other Config Store entry', () => {
    const setup = core.store.entries(config.uuids.app.setupStatus);
    expect(setup.length, 'setup status entries').to.be.at.least(2);
    const found = setup.flatMap(([obj, json]) => leaks(JSON.stringify(json)).map((f) => `setup status ${obj}: ${f}`));
    // Every entry of every application, as stored.
    const rows = core.db.prepare('SELECT app, object, json FROM config_entry').all() as Array<{
      app: string;
      object: string;
      json: string;
    }>;
    for (const r of rows) for (const f of leaks(r.json)) found.push(`app ${r.app} object ${r.object}: ${f}`);
    console.log(
      `    [leak] checked ${setup.length} setup status entries and all ${rows.length} Config Store entries: ${found.length} hits`,
    );
    expect(found).to.deep.equal([]);
  });

  it('not in any Sparkplug message', () => {
    const found = sub.messages.flatMap((msg, i) =>
      [...leaks(msg.topic), ...leaks(msg.raw)].map((f) => `#${i} ${msg.topic}: ${f}`),
    );
    console.log(
      `    [leak] checked ${sub.messages.length} Sparkplug messages (${sub.messages.reduce((n, x) => n + x.raw.length, 0)} bytes) on spBv1.0/#: ${found.length} hits`,
    );
    expect(found).to.deep.equal([]);
  });

  it('not in the cluster repo: full history of a clone, and every raw object of the bare repo', async () => {
    const cloneUrl = new URL(`/uuid/${A}`, core.endpoints.git);
    cloneUrl.username = core.credentials.admin.username;
    cloneUrl.password = core.credentials.admin.password;
    const dir = join(tempDir('leak-clone-'), 'c');
    await git(['clone', '-q', cloneUrl.href, dir]);
    const log = await git(['log', '-p', '--all', '--binary', '--full-history'], dir);
    expect(log.toString('utf8'), 'the history holds the sealed secrets').to.include('edo/secrets/app/db.yaml');
    const found = leaks(log).map((f) => `git log -p: ${f}`);
    const objects: Buffer[] = [];
    for (const repo of [core.git.dir(A), core.git.dir(B)]) {
      const raw = await git(['cat-file', '--batch-all-objects', '--batch'], repo);
      objects.push(raw);
      for (const f of leaks(raw)) found.push(`${repo} objects: ${f}`);
    }
    expect(objects[0]!.toString('latin1')).to.include('kind: SealedSecret');
    console.log(
      `    [leak] checked git log -p --all (${log.length} bytes) and cat-file of all objects (${objects.reduce((n, b) => n + b.length, 0)} bytes): ${found.length} hits`,
    );
    expect(found).to.deep.equal([]);
  });

  it('not in any file of the core or manager data directories', () => {
    const found: string[] = [];
    let n = 0;
    for (const root of [coreDir, config.dataDir]) {
      for (const f of filesUnder(root)) {
        n++;
        for (const form of leaks(readFileSync(f))) found.push(`${f}: ${form}`);
      }
    }
    console.log(
      `    [leak] checked ${n} files under the data directories (SQLite, WAL, loose/packed git objects): ${found.length} hits`,
    );
    expect(found).to.deep.equal([]);
  });
});
