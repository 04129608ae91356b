import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { basic, tempDir } from '../helpers/core.js';
import { subscribe, type Subscriber } from '../helpers/mqtt.js';
import {
  startCoreProcess,
  startManagerProcess,
  waitFor,
  type CoreProcess,
  type ManagerProcess,
} from '../helpers/processes.js';
import { testCert } from '../helpers/certs.js';
import { clone as cloneRepo, repoUrl } from '../helpers/git.js';

const run = promisify(execFile);
const u = loadConfig({ env: {} }).uuids;

/**
 * The Cluster Manager in Factory+ mode: the Factory+ services run in another
 * process (the embedded core started on its own, standing in for a real
 * installation) and the manager knows only the Directory URL, its service
 * account and the settings in its environment.
 */
describe('Factory+ mode against a separately running core', function () {
  this.timeout(120_000);
  let core: CoreProcess;
  let m: ManagerProcess | undefined;
  let admin: string;
  let sub: Subscriber | undefined;
  const managerDir = tempDir('cm-fplus-');
  const coreDir = tempDir('core-proc-');

  const cdb = (method: string, path: string, body?: unknown) =>
    fetch(`${core.endpoints.configdb}${path}`, {
      method,
      headers: { Authorization: admin, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const api = (method: string, path: string, body?: string) =>
    fetch(`${m!.url.replace(/\/$/, '')}${path}`, {
      method,
      headers: { Authorization: admin },
      body,
    });
  const clone = (cluster: string) => cloneRepo(repoUrl(core.endpoints.git, cluster, core.credentials.admin));

  before(async () => {
    core = await startCoreProcess(coreDir);
    admin = basic(core.credentials.admin.username, core.credentials.admin.password);
    m = await startManagerProcess({
      directoryUrl: core.endpoints.directory,
      ...core.credentials.clusterManager,
      dataDir: managerDir,
      env: {
        MQTT_PROTOCOL: '4',
        ORGANISATION_PREFIX: 'ACME',
        GIT_EMAIL: 'cm@acme.example',
        SPARKPLUG_ADDRESS: 'ACME-Service-Core/Clusters',
        METRICS_PORT: '0',
      },
    });
  });
  after(async () => {
    await sub?.close();
    await m?.kill();
    await core?.stop();
  });

  it('core prints a banner that names no Cluster Manager', async () => {
    const out = await waitFor(
      () => (core.output().includes('Written to') ? core.output() : undefined),
      10_000,
      core,
      'the banner',
    );
    expect(out).to.include('Embedded Factory+ core (no Cluster Manager)');
    expect(out).to.not.match(/Cluster Manager with|Cluster Manager {2}/);
  });

  it('serves /metrics without a credential on METRICS_PORT, and only there', async () => {
    const line = m!
      .output()
      .split('\n')
      .find((l) => l.includes('Metrics listening'));
    expect(line, 'log line of the metrics listener').to.be.a('string');
    const url = (JSON.parse(line!) as { url: string }).url;
    expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const r = await fetch(url);
    expect(r.status).to.equal(200);
    expect(await r.text())
      .to.match(/^# TYPE cluster_manager_clusters gauge$/m)
      .and.match(/^cluster_manager_mqtt_connected\{link="sparkplug"\} [01]$/m);
    expect((await fetch(url.replace(/metrics$/, 'v1/cluster'))).status).to.equal(404);
    expect(
      (await fetch(`${m!.url.replace(/\/$/, '')}/metrics`)).status,
      'API port still asks for a credential',
    ).to.equal(401);
  });

  let cluster: string;

  it('commissions a cluster end to end, configured by environment only', async () => {
    cluster = ((await (await cdb('POST', '/v2/object', { class: u.class.edgeCluster })).json()) as { uuid: string })
      .uuid;
    expect(
      (
        await cdb('PUT', `/v2/app/${u.app.clusterConfig}/object/${cluster}`, {
          name: 'Remote_1',
          namespace: 'edge-remote',
        })
      ).status,
    ).to.equal(201);
    const st = await waitFor(
      async () => {
        const r = await api('GET', `/v1/cluster/${cluster}/status`);
        const body = r.status === 200 ? ((await r.json()) as Record<string, unknown>) : undefined;
        return body?.ready === true ? body : undefined;
      },
      60_000,
      m,
      'the cluster to be ready',
    );
    expect(st?.phase).to.equal('ready');
    expect(await (await cdb('GET', `/v2/app/${u.app.sparkplugAddress}/object/${cluster}`)).json()).to.deep.equal({
      group_id: 'ACME-Remote_1',
    });

    const dir = await clone(cluster);
    for (const f of ['flux-system.yaml', 'helm-charts.yaml', 'edge-cluster.yaml', 'self-link.yaml']) {
      const docs = parseAllDocuments(readFileSync(join(dir, 'edo/cluster', f), 'utf8')) as unknown as Array<{
        errors: unknown[];
      }>;
      expect(
        docs.every((d) => d.errors.length === 0),
        f,
      ).to.equal(true);
    }
    const { stdout } = await run('git', ['-C', dir, 'log', '-1', '--format=%an <%ae>']);
    expect(stdout.trim()).to.equal('Edge deployment operator <cm@acme.example>');
  });

  it('keeps sealing and commissioning across a restart of the core, whose new token stores refuse every old token', async () => {
    const cert = testCert('rsa');
    expect(
      (await cdb('PUT', `/v2/app/${u.app.edgeStatus}/object/${cluster}`, { kubeseal_cert: cert.certPem })).status,
    ).to.be.oneOf([201, 204]);
    // A seal first, so the manager holds tokens for the Config Store, Auth and the Git server.
    expect((await api('PUT', `/v1/cluster/${cluster}/secret/app/restart/before`, 'one')).status).to.equal(204);

    // The same services on the same ports and data, but every token they issued is gone.
    const port = (url: string) => new URL(url).port;
    const e = core.endpoints;
    await core.stop();
    core = await startCoreProcess(coreDir, {
      EMBEDDED_DIRECTORY_PORT: port(e.directory),
      EMBEDDED_CONFIGDB_PORT: port(e.configdb),
      EMBEDDED_AUTH_PORT: port(e.auth),
      EMBEDDED_GIT_PORT: port(e.git),
      EMBEDDED_MQTT_PORT: port(e.mqtt),
      EMBEDDED_CMDESC_PORT: port(e.cmdesc),
    });
    const sealed = await api('PUT', `/v1/cluster/${cluster}/secret/app/restart/after`, 'two');
    expect(sealed.status, await sealed.text()).to.equal(204);
    const text = readFileSync(join(await clone(cluster), 'edo/secrets/app/restart.yaml'), 'utf8');
    expect(text)
      .to.match(/\bbefore:/)
      .and.to.match(/\bafter:/);

    const second = (
      (await (await cdb('POST', '/v2/object', { class: u.class.edgeCluster })).json()) as { uuid: string }
    ).uuid;
    expect(
      (
        await cdb('PUT', `/v2/app/${u.app.clusterConfig}/object/${second}`, {
          name: 'Remote_2',
          namespace: 'edge-remote',
        })
      ).status,
    ).to.equal(201);
    await waitFor(
      async () => {
        const r = await api('GET', `/v1/cluster/${second}/status`);
        return r.status === 200 && ((await r.json()) as { ready?: boolean }).ready === true;
      },
      60_000,
      m,
      'the second cluster to be ready after the core restart',
    );
  });

  it('on SIGTERM during a burst of sealing requests keeps every acknowledged secret, sends NDEATH and exits 0', async () => {
    const cert = testCert('rsa');
    expect(
      (await cdb('PUT', `/v2/app/${u.app.edgeStatus}/object/${cluster}`, { kubeseal_cert: cert.certPem })).status,
    ).to.be.oneOf([201, 204]);
    sub = await subscribe(core.endpoints.mqtt, core.credentials.admin, 'spBv1.0/ACME-Service-Core/#');
    await sub
      .waitFor(
        (msg) => msg.topic === 'spBv1.0/ACME-Service-Core/NBIRTH/Clusters' || msg.topic.includes('/DDATA/Clusters/'),
        5000,
      )
      .catch(() => undefined);

    const acknowledged: string[] = [];
    const outcomes: string[] = [];
    const requests: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      requests.push(
        (async () => {
          const key = `k${i}`;
          const r = await api('PUT', `/v1/cluster/${cluster}/secret/app/burst/${key}`, `value-${i}`).catch(
            () => undefined,
          );
          if (r?.status === 204) acknowledged.push(key);
          else if (r && r.status !== 503) outcomes.push(`${r.status} ${await r.text()}`);
        })(),
      );
      if (i === 20) m!.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(requests);
    const code = await m!.exited;
    expect(code, m!.output().slice(-2000)).to.equal(0);
    await sub.waitFor((msg) => msg.topic === 'spBv1.0/ACME-Service-Core/NDEATH/Clusters', 5000);
    expect(outcomes, 'answers other than 204 or 503').to.deep.equal([]);
    expect(acknowledged.length, 'some requests were acknowledged before the shutdown').to.be.greaterThan(0);

    const dir = await clone(cluster);
    const file = join(dir, 'edo/secrets/app/burst.yaml');
    expect(existsSync(file)).to.equal(true);
    const text = readFileSync(file, 'utf8');
    for (const key of acknowledged) expect(text, `acknowledged ${key}`).to.match(new RegExp(`\\b${key}:`));
  });
});
