import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { expect } from 'chai';
import { formatChecks, runChecks, CHECK_NAMES, type CheckResult } from '../../src/check/index.js';
import { MqttProbeError, probeMqtt } from '../../src/check/probes.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import { Known } from '../../src/embedded/seed/local-uuids.js';
import { SparkplugNode } from '../../src/sparkplug/node.js';
import { silentLogger } from '../../src/lib/log.js';
import { adminAuth, startTestCore, tempDir, type TestCore } from '../helpers/core.js';
import { spawnMosquitto } from '../helpers/mosquitto.js';
import { subscribe } from '../helpers/mqtt.js';
import { startRefusingBroker, type RefusingBroker } from '../helpers/refusing-broker.js';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((res) => srv.close(() => res()));
  return port;
}

const byName = (results: CheckResult[], name: string) => {
  const r = results.find((x) => x.name === name);
  if (!r) throw new Error(`no result ${name}`);
  return r;
};
/** Checks that ran and failed (skipped ones are left out). */
const failed = (results: CheckResult[]) => results.filter((r) => !r.ok && !r.skipped).map((r) => r.name);
const skipped = (results: CheckResult[]) => results.filter((r) => r.skipped).map((r) => r.name);

describe('check-config', function () {
  this.timeout(60_000);
  let t: TestCore;
  const base = loadConfig({ env: {} });
  const u = base.uuids;
  const mqttProtocol = process.env.TEST_MQTT_URL ? '5' : '4';

  const configFor = (env: Record<string, string> = {}, overrides: Record<string, unknown> = {}): Config => {
    const cm = t.core.credentials.clusterManager;
    return loadConfig({
      env: {
        SERVICE_USERNAME: cm.username,
        SERVICE_PASSWORD: cm.password,
        MQTT_PROTOCOL: mqttProtocol,
        EXTERNAL_URL: 'https://clusters.example.test',
        ...env,
      },
      overrides: {
        dataDir: tempDir(),
        ...overrides,
        factoryplus: { directoryUrl: t.core.endpoints.directory, ...(overrides.factoryplus as object) },
      },
    });
  };
  const admin = (service: 'configdb' | 'auth', method: string, path: string, body?: unknown) =>
    fetch(`${t.core.endpoints[service]}${path}`, {
      method,
      headers: { Authorization: adminAuth(t.core), 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  /** Deletes a Config Store entry for the duration of `fn`, then puts it back. */
  const without = async <T>(app: string, obj: string, fn: () => Promise<T>): Promise<T> => {
    const res = await admin('configdb', 'GET', `/v2/app/${app}/object/${obj}`);
    expect(res.status).to.equal(200);
    const value = await res.json();
    expect((await admin('configdb', 'DELETE', `/v2/app/${app}/object/${obj}`)).status).to.equal(204);
    try {
      return await fn();
    } finally {
      expect((await admin('configdb', 'PUT', `/v2/app/${app}/object/${obj}`, value)).status).to.be.oneOf([201, 204]);
    }
  };
  /** Replaces a Config Store entry for the duration of `fn`. */
  const replaced = async <T>(
    app: string,
    obj: string,
    change: (v: Record<string, unknown>) => unknown,
    fn: () => Promise<T>,
  ): Promise<T> => {
    const value = await (await admin('configdb', 'GET', `/v2/app/${app}/object/${obj}`)).json();
    expect(
      (await admin('configdb', 'PUT', `/v2/app/${app}/object/${obj}`, change(structuredClone(value)))).status,
    ).to.equal(204);
    try {
      return await fn();
    } finally {
      expect((await admin('configdb', 'PUT', `/v2/app/${app}/object/${obj}`, value)).status).to.equal(204);
    }
  };
  const expectClean = (results: CheckResult[], ...secrets: string[]) => {
    const text = formatChecks(results);
    const lines = text.split('\n').filter((l) => l !== '');
    expect(lines).to.have.length(results.length);
    expect(text.endsWith('\n')).to.equal(true);
    for (const [i, r] of results.entries()) {
      expect(lines[i]).to.match(new RegExp(`^(ok  |FAIL|skip) ${r.name}`));
      if (!r.ok && !r.skipped) {
        expect(r.fix, `${r.name} has a fix`).to.be.a('string').and.not.equal('');
        expect(lines[i]).to.contain(' — fix: ');
      }
    }
    for (const s of secrets) {
      expect(text).not.to.contain(s);
      expect(JSON.stringify(results)).not.to.contain(s);
    }
    return lines;
  };

  before(async () => {
    t = await startTestCore();
  });
  after(async () => {
    await t?.stop();
  });

  it("passes every check with the Cluster Manager's credentials", async () => {
    const results = await runChecks(configFor());
    expect(results.map((r) => r.name)).to.deep.equal([...CHECK_NAMES]);
    for (const r of results) expect(r.ok, `${r.name}: ${r.detail} ${r.fix ?? ''}`).to.equal(true);
    expect(byName(results, 'Configuration').detail).to.contain('profile seed').and.contain('Factory+ mode');
    expect(byName(results, 'Directory').detail).to.equal(`${t.core.endpoints.directory} answered`);
    expect(byName(results, 'Config Store').detail)
      .to.contain(t.core.endpoints.configdb)
      .and.contain('from the Directory');
    expect(byName(results, 'Flux template').detail).to.contain('renders a sample cluster');
    expect(byName(results, 'App access').detail).to.contain('Edge cluster configuration');
    const lines = expectClean(results, t.core.credentials.clusterManager.password);
    expect(lines[2]).to.match(/^ok {3}Directory +http:\/\/127\.0\.0\.1:\d+\/? answered$/);
  });

  it('reports an unreachable Directory and skips everything that needs it', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const results = await runChecks(configFor({ DIRECTORY_URL: url }, { factoryplus: { directoryUrl: url } }));
    expect(results.map((r) => r.name)).to.deep.equal([...CHECK_NAMES]);
    expect(byName(results, 'Configuration').ok).to.equal(true);
    const d = byName(results, 'Directory');
    expect(d.ok).to.equal(false);
    expect(d.skipped).to.equal(undefined);
    expect(d.detail).to.match(/^cannot reach http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
    expect(d.fix).to.contain('DIRECTORY_URL');
    expect(failed(results)).to.deep.equal(['Directory']);
    expect(skipped(results)).to.deep.equal(CHECK_NAMES.slice(3));
    expect(byName(results, 'Credentials').detail).to.equal('skipped: needs Directory');
    expect(byName(results, 'Config Store').detail).to.equal('skipped: needs Credentials');
    expect(byName(results, 'Helm chart template').detail).to.equal('skipped: needs ServiceConfig');
    expectClean(results, t.core.credentials.clusterManager.password);
  });

  it('tells an HTTP error of the Directory from an unreachable one', async () => {
    const srv = createHttpServer((_req, res) => {
      res.statusCode = 503;
      res.end('down for maintenance');
    });
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/`;
    try {
      const results = await runChecks(configFor({}, { factoryplus: { directoryUrl: url } }));
      const d = byName(results, 'Directory');
      expect(d.ok).to.equal(false);
      expect(d.detail).to.equal(`${url} answered GET /ping with HTTP 503`);
      expect(failed(results)).to.deep.equal(['Directory']);
    } finally {
      await new Promise<void>((res) => srv.close(() => res()));
    }
  });

  it('fails a Directory URL that points at another service', async () => {
    // The Config Store answers /ping to anyone, naming itself.
    let results = await runChecks(configFor({}, { factoryplus: { directoryUrl: t.core.endpoints.configdb } }));
    const d = byName(results, 'Directory');
    expect(d.detail).to.contain(`answered /ping as service ${u.service.configdb}, not as the Directory`);
    expect(failed(results)).to.deep.equal(['Directory']);
    // The Git server asks for credentials at /ping like the Directory; with them it names itself.
    results = await runChecks(configFor({}, { factoryplus: { directoryUrl: t.core.endpoints.git } }));
    expect(byName(results, 'Directory').ok).to.equal(true);
    const c = byName(results, 'Credentials');
    expect(c.detail).to.contain(`is service ${u.service.git}, not the Directory`);
    expect(c.fix).to.contain('DIRECTORY_URL');
    expect(failed(results)).to.deep.equal(['Credentials']);
  });

  it('reports a wrong password as refused credentials, without showing it', async () => {
    const wrong = 'not-the-right-password-42';
    const results = await runChecks(configFor({ SERVICE_PASSWORD: wrong }));
    const c = byName(results, 'Credentials');
    expect(c.ok).to.equal(false);
    expect(c.detail).to.contain('the Directory refused SERVICE_USERNAME/SERVICE_PASSWORD');
    expect(c.detail).to.contain(t.core.credentials.clusterManager.username);
    expect(failed(results)).to.deep.equal(['Credentials']);
    expect(skipped(results)).to.deep.equal(CHECK_NAMES.slice(4));
    expectClean(results, wrong, t.core.credentials.clusterManager.password);
  });

  it('uses credentials given as an option over the configuration', async () => {
    const cm = t.core.credentials.clusterManager;
    const results = await runChecks(configFor({ SERVICE_PASSWORD: 'wrong-password-x' }), { credentials: cm });
    expect(failed(results)).to.deep.equal([]);
    expectClean(results, cm.password, 'wrong-password-x');
  });

  it('fails the configuration in Factory+ mode without credentials', async () => {
    const config = loadConfig({
      env: {
        DIRECTORY_URL: t.core.endpoints.directory,
        SERVICE_USERNAME: 'sv1clustermanager',
        EXTERNAL_URL: 'https://clusters.example.test',
      },
    });
    const results = await runChecks(config);
    const c = byName(results, 'Configuration');
    expect(c.ok).to.equal(false);
    expect(c.detail).to.contain('SERVICE_PASSWORD is not set');
    expect(byName(results, 'Directory').ok).to.equal(true);
    expect(byName(results, 'Credentials').detail).to.equal('skipped: needs Configuration');
    expect(failed(results)).to.deep.equal(['Configuration']);
  });

  it('in embedded mode without a Directory checks only the configuration', async () => {
    const results = await runChecks(loadConfig({ env: {} }));
    expect(byName(results, 'Configuration').ok).to.equal(true);
    expect(byName(results, 'Configuration').detail).to.contain('embedded mode');
    expect(failed(results)).to.deep.equal([]);
    expect(skipped(results)).to.deep.equal(CHECK_NAMES.slice(2));
    expect(byName(results, 'Directory').detail).to.match(/^skipped: needs DIRECTORY_URL/);
  });

  it('in embedded mode checks a running embedded core given by option', async () => {
    const results = await runChecks(loadConfig({ env: {} }), {
      directoryUrl: t.core.endpoints.directory,
      credentials: t.core.credentials.clusterManager,
    });
    expect(failed(results)).to.deep.equal([]);
    expect(byName(results, 'MQTT').detail).to.contain('MQTT 3.1.1');
    expect(byName(results, 'Configuration').detail).to.contain('embedded mode');
  });

  it('fails exactly the check of a missing template entry, naming it', async () => {
    const results = await without(u.app.fluxTemplate, u.app.fluxTemplate, () => runChecks(configFor()));
    expect(failed(results)).to.deep.equal(['Flux template']);
    expect(skipped(results)).to.deep.equal([]);
    const f = byName(results, 'Flux template');
    expect(f.detail).to.equal(`the Flux template entry ${u.app.fluxTemplate}/${u.app.fluxTemplate} does not exist`);
    expect(f.fix).to.contain(u.app.fluxTemplate).and.contain('create');
    expect(byName(results, 'HelmRelease template').detail).to.contain('a sample render needs the Flux template');
    expectClean(results, t.core.credentials.clusterManager.password);
  });

  it('fails the HelmRelease and Bootstrap template checks when those entries are missing', async () => {
    const results = await without(u.app.k8sTemplate, u.resource.helmRelease, () =>
      without(u.app.bootstrapTemplate, u.app.bootstrapTemplate, () => runChecks(configFor())),
    );
    expect(failed(results)).to.deep.equal(['HelmRelease template', 'Bootstrap template']);
    expect(byName(results, 'HelmRelease template').detail).to.contain(`${u.app.k8sTemplate}/${u.resource.helmRelease}`);
    expect(byName(results, 'Bootstrap template').detail).to.contain(
      `${u.app.bootstrapTemplate}/${u.app.bootstrapTemplate}`,
    );
  });

  it('fails a template entry that does not render, naming the entry', async () => {
    const results = await replaced(
      u.app.fluxTemplate,
      u.app.fluxTemplate,
      (v) => ({ ...v, 'extra.yaml': ['{{ no.such.value }}'] }),
      () => runChecks(configFor()),
    );
    expect(failed(results)).to.deep.equal(['Flux template']);
    const f = byName(results, 'Flux template');
    expect(f.detail)
      .to.contain(
        `the Flux template entry ${u.app.fluxTemplate}/${u.app.fluxTemplate} does not render a sample cluster`,
      )
      .and.contain('extra.yaml');
    expect(f.fix).to.contain('correct');
    expect(byName(results, 'HelmRelease template').detail).to.contain('a sample render needs the Flux template');
  });

  it('fails a Bootstrap template whose wrapper has no {{files}}', async () => {
    const results = await replaced(
      u.app.bootstrapTemplate,
      u.app.bootstrapTemplate,
      (v) => ({ ...v, wrapper: '#!/bin/sh\necho hi\n' }),
      () => runChecks(configFor()),
    );
    expect(failed(results)).to.deep.equal(['Bootstrap template']);
    expect(byName(results, 'Bootstrap template').detail).to.contain('{{files}}');
  });

  it('fails a Bootstrap template the bootstrap script could not be made from: a file name that is not plain', async () => {
    const results = await replaced(
      u.app.bootstrapTemplate,
      u.app.bootstrapTemplate,
      (v) => ({ ...v, files: { ...(v.files as object), '../escape.sh': 'echo out\n' } }),
      () => runChecks(configFor()),
    );
    expect(failed(results)).to.deep.equal(['Bootstrap template']);
    expect(byName(results, 'Bootstrap template').detail)
      .to.contain('cannot be used')
      .and.contain('"../escape.sh" is not a plain file name');
  });

  it('reports a missing ServiceConfig entry and skips the chart that needs it', async () => {
    const results = await without(u.app.serviceConfig, u.service.clusterManager, () => runChecks(configFor()));
    expect(failed(results)).to.deep.equal(['ServiceConfig']);
    expect(skipped(results)).to.deep.equal(['Helm chart template']);
    const s = byName(results, 'ServiceConfig');
    expect(s.detail).to.contain(`${u.app.serviceConfig}/${u.service.clusterManager}`).and.contain('does not exist');
    expect(s.fix).to.contain('helm.cluster');
    expect(byName(results, 'Helm chart template').detail).to.equal('skipped: needs ServiceConfig');
    expectClean(results, t.core.credentials.clusterManager.password);
  });

  it('names the ServiceConfig fields that are missing', async () => {
    const results = await replaced(
      u.app.serviceConfig,
      u.service.clusterManager,
      (v) => {
        delete (v.group as Record<string, unknown>).krbkeys;
        delete (v.repo as Record<string, unknown>).helm;
        return v;
      },
      () => runChecks(configFor()),
    );
    expect(failed(results)).to.deep.equal(['ServiceConfig']);
    expect(byName(results, 'ServiceConfig').detail)
      .to.contain('group.krbkeys.uuid')
      .and.contain('repo.helm.uuid')
      .and.not.contain('group.flux.uuid');
  });

  it('fails the chart check when the ServiceConfig names an unknown chart', async () => {
    const chart = '11111111-2222-4333-8444-555555555555';
    const results = await replaced(
      u.app.serviceConfig,
      u.service.clusterManager,
      (v) => ({ ...v, helm: { cluster: chart } }),
      () => runChecks(configFor()),
    );
    expect(failed(results)).to.deep.equal(['Helm chart template']);
    expect(byName(results, 'Helm chart template').detail).to.contain(`${u.app.helmChartTemplate}/${chart}`);
  });

  it('reports an unreachable MQTT broker and nothing else', async () => {
    const port = await closedPort();
    const results = await runChecks(configFor({}, { factoryplus: { mqttUrl: `mqtt://127.0.0.1:${port}` } }), {
      timeoutMs: 3000,
    });
    expect(failed(results)).to.deep.equal(['MQTT']);
    expect(skipped(results)).to.deep.equal(['Notifications', 'Sparkplug node']);
    const m = byName(results, 'MQTT');
    expect(m.detail).to.contain(`mqtt://127.0.0.1:${port} (MQTT_URL)`);
    expect(m.fix).to.contain('MQTT_URL');
    expectClean(results, t.core.credentials.clusterManager.password);
  });

  // Only the embedded broker lacks MQTT 5 and checks credentials; against the
  // CI's anonymous mosquitto these two cases do not exist.
  const embeddedBroker = process.env.TEST_MQTT_URL ? () => undefined : it;

  embeddedBroker('tells a broker that does not speak the configured MQTT protocol', async function () {
    const results = await runChecks(configFor({ MQTT_PROTOCOL: '5' }));
    expect(failed(results)).to.deep.equal(['MQTT']);
    expect(byName(results, 'MQTT').detail).to.contain('does not speak MQTT 5');
    expect(byName(results, 'MQTT').fix).to.contain('MQTT_PROTOCOL=4');
  });

  embeddedBroker('tells refused MQTT credentials from an unreachable broker', async function () {
    const cm = t.core.credentials.clusterManager;
    const err = await probeMqtt(
      t.core.endpoints.mqtt,
      { username: cm.username, password: 'wrong-mqtt-password' },
      4,
      3000,
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(MqttProbeError);
    expect((err as MqttProbeError).refused).to.equal(true);
    await probeMqtt(t.core.endpoints.mqtt, cm, 4, 3000);
  });

  it('reports an unreachable Config Store override and skips what reads from it', async () => {
    const port = await closedPort();
    const results = await runChecks(configFor({ CONFIGDB_URL: `http://127.0.0.1:${port}` }));
    expect(failed(results)).to.deep.equal(['Config Store']);
    expect(skipped(results)).to.deep.equal([
      'ServiceConfig',
      'Flux template',
      'HelmRelease template',
      'Helm chart template',
      'Bootstrap template',
      'App access',
      'UUID profile',
    ]);
    const c = byName(results, 'Config Store');
    expect(c.detail).to.match(/^cannot reach http:\/\/127\.0\.0\.1:\d+\/ \(CONFIGDB_URL\): /);
    expect(c.fix).to.contain('CONFIGDB_URL');
  });

  it('asks for ReadConfig on the cluster configuration app when the account lacks it', async () => {
    const grant = {
      principal: Known.role.clusterManager,
      permission: Known.perm.readConfig,
      target: u.app.clusterConfig,
    };
    const found = (await (await admin('auth', 'POST', '/v2/grant/find', grant)).json()) as string[];
    expect(found).to.have.length(1);
    expect((await admin('auth', 'DELETE', `/v2/grant/${found[0]}`)).status).to.equal(204);
    let results: CheckResult[];
    try {
      results = await runChecks(configFor());
    } finally {
      expect((await admin('auth', 'POST', '/v2/grant', { ...grant, plural: false })).status).to.be.oneOf([200, 201]);
    }
    expect(failed(results)).to.deep.equal(['App access']);
    const a = byName(results, 'App access');
    expect(a.detail).to.contain('Edge cluster configuration').and.contain(u.app.clusterConfig);
    expect(a.fix).to.equal(
      `grant ReadConfig on the Edge cluster configuration app (${u.app.clusterConfig}) to the Cluster Manager's account (${t.core.credentials.clusterManager.username})`,
    );
    expectClean(results, t.core.credentials.clusterManager.password);
  });

  describe('MQTT permissions, EXTERNAL_URL and the UUID profile', () => {
    const GROUP = 'AMRC-Service-Core';
    const NDEATH = `spBv1.0/${GROUP}/NDEATH/Cluster_Manager`;
    const NCMD = `spBv1.0/${GROUP}/NCMD/Cluster_Manager`;
    let broker: RefusingBroker | undefined;
    afterEach(async () => {
      await broker?.close();
      broker = undefined;
    });
    /** The checks against a broker of the test's own, with the Directory and Config Store of the core. */
    const againstBroker = async (rules: Parameters<typeof startRefusingBroker>[0]) => {
      broker = await startRefusingBroker(rules);
      return runChecks(configFor({ MQTT_PROTOCOL: '4' }, { factoryplus: { mqttUrl: broker.url } }), {
        timeoutMs: 3000,
      });
    };

    it('probes publishing with an NDEATH whose bdSeq no birth has, which the Directory ignores', async () => {
      const cm = t.core.credentials.clusterManager;
      const watcher = await subscribe(t.core.endpoints.mqtt, cm, NDEATH);
      const get = (path: string) =>
        fetch(`${t.core.endpoints.directory}${path}`, { headers: { Authorization: adminAuth(t.core) } });
      /** The Directory's record of the node (its address and online state, with the time of the last change). */
      const record = async () => {
        const res = await get(`/v1/address/${GROUP}/Cluster_Manager`);
        if (res.status !== 200) return { status: res.status };
        const { uuid } = (await res.json()) as { uuid: string };
        return { status: res.status, device: await (await get(`/v1/device/${uuid}`)).json() };
      };
      const before = await record();
      try {
        const results = await runChecks(configFor());
        expect(failed(results)).to.deep.equal([]);
        const n = byName(results, 'Notifications').detail;
        expect(n)
          .to.contain(
            `spBv1.0/${GROUP}/NBIRTH/Config_DB, spBv1.0/${GROUP}/NDATA/Config_DB, spBv1.0/${GROUP}/NDEATH/Config_DB`,
          )
          .and.contain('from the Directory');
        expect(byName(results, 'Sparkplug node').detail)
          .to.contain(`may subscribe to ${NCMD}, spBv1.0/${GROUP}/DCMD/Cluster_Manager/+`)
          .and.contain(`a publish to ${NDEATH}`);
        const probe = await watcher.waitFor((m) => m.topic === NDEATH, 5000);
        expect(probe.payload!.seq).to.equal(undefined);
        expect(probe.payload!.metrics!.map((m) => [m.name, m.type, BigInt(m.value as bigint)])).to.deep.equal([
          ['bdSeq', 'Int64', 256n],
        ]);
      } finally {
        await watcher.close();
      }
      // The Directory's view of the node is what it was.
      expect(await record()).to.deep.equal(before);
    });

    it('does not publish on the topics of a node that is online', async () => {
      const cm = t.core.credentials.clusterManager;
      const dir = tempDir();
      const node = new SparkplugNode({
        mqttUrl: t.core.endpoints.mqtt,
        ...cm,
        protocolVersion: 4,
        group: GROUP,
        node: 'Cluster_Manager',
        bdSeqFile: `${dir}/bdseq`,
        instanceUuid: '0f1e2d3c-4b5a-4697-8877-665544332211',
        serviceUuid: u.service.clusterManager,
        log: silentLogger,
      });
      const born = new Promise((r) => node.once('born', r));
      await node.start();
      await born;
      const watcher = await subscribe(t.core.endpoints.mqtt, cm, NDEATH);
      try {
        let results: CheckResult[] = [];
        for (let i = 0; i < 50; i++) {
          // until the Directory has seen the birth
          results = await runChecks(configFor());
          if (byName(results, 'Sparkplug node').detail.includes('online')) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(failed(results)).to.deep.equal([]);
        expect(byName(results, 'Sparkplug node').detail).to.contain(
          `publishing not probed: the Directory shows ${GROUP}/Cluster_Manager online`,
        );
        await new Promise((r) => setTimeout(r, 200));
        expect(watcher.messages.filter((m) => m.topic === NDEATH)).to.deep.equal([]);
      } finally {
        await watcher.close();
        await node.stop();
      }
    });

    it("fails Notifications when the broker refuses the Config Store's topics, naming the grant", async () => {
      const results = await againstBroker({ refuseSubscribe: (topic) => topic.endsWith('/Config_DB') });
      expect(failed(results)).to.deep.equal(['Notifications']);
      const n = byName(results, 'Notifications');
      expect(n.detail)
        .to.contain(
          `refused ${t.core.credentials.clusterManager.username} the subscription to spBv1.0/${GROUP}/NBIRTH/Config_DB (refused, code 0x80)`,
        )
        .and.contain('NDATA/Config_DB')
        .and.contain('RESYNC_SECONDS');
      expect(n.fix).to.contain('Read Node (046d6603-fa62-4208-9400-65d61f8b1ec4)').and.contain(`${GROUP}/Config_DB`);
      expectClean(results, t.core.credentials.clusterManager.password);
    });

    it('fails the Sparkplug node check when the broker refuses its command subscription', async () => {
      const results = await againstBroker({ refuseSubscribe: (topic) => topic === NCMD });
      expect(failed(results)).to.deep.equal(['Sparkplug node']);
      const s = byName(results, 'Sparkplug node');
      expect(s.detail)
        .to.contain(`the subscription to ${NCMD} (refused, code 0x80)`)
        .and.contain('does not start without it');
      expect(s.fix)
        .to.contain('Participate as Node (a1314953-8226-44f4-8a3e-e87b09310579)')
        .and.not.contain('Represent Devices');
      expect(broker!.publishAttempts).to.deep.equal([]);
    });

    it('fails the Sparkplug node check when an MQTT 3.1.1 broker drops the connection on the publish', async () => {
      const results = await againstBroker({ refusePublish: (topic) => topic === NDEATH });
      expect(failed(results)).to.deep.equal(['Sparkplug node']);
      const s = byName(results, 'Sparkplug node');
      expect(s.detail).to.contain(
        `refused ${t.core.credentials.clusterManager.username} a publish to ${NDEATH}: the broker closed the connection after the publish`,
      );
      expect(s.fix).to.contain('Participate as Node');
      expect(broker!.publishAttempts).to.deep.equal([NDEATH]);
    });

    it('fails the Sparkplug node check on an MQTT 5 PUBACK that refuses the publish', async () => {
      const mosquitto = await spawnMosquitto({ acl: `pattern deny ${NDEATH}\npattern readwrite #` });
      try {
        const results = await runChecks(
          configFor({ MQTT_PROTOCOL: '5' }, { factoryplus: { mqttUrl: mosquitto.url } }),
          { timeoutMs: 3000 },
        );
        expect(failed(results)).to.deep.equal(['Sparkplug node']);
        expect(byName(results, 'Sparkplug node').detail).to.contain(
          `a publish to ${NDEATH}: PUBACK reason code 0x87 (not authorized)`,
        );
      } finally {
        await mosquitto.close();
      }
      // The same broker without the denial: MQTT 5 says for certain that it took the publish.
      const open = await spawnMosquitto();
      try {
        const results = await runChecks(configFor({ MQTT_PROTOCOL: '5' }, { factoryplus: { mqttUrl: open.url } }), {
          timeoutMs: 3000,
        });
        expect(failed(results)).to.deep.equal([]);
        expect(byName(results, 'Sparkplug node').detail)
          .to.contain(`the broker accepted a publish to ${NDEATH}`)
          .and.not.contain('cannot tell');
      } finally {
        await open.close();
      }
    });

    it('fails External URL in Factory+ mode when EXTERNAL_URL is not set', async () => {
      const results = await runChecks(configFor({}, { http: { externalUrl: null } }));
      expect(failed(results)).to.deep.equal(['External URL']);
      const e = byName(results, 'External URL');
      expect(e.detail).to.contain('EXTERNAL_URL is not set');
      expect(e.fix).to.contain('set EXTERNAL_URL to the URL edge clusters reach this service by');
      expect(byName(results, 'Directory').ok).to.equal(true);
      const embedded = await runChecks(loadConfig({ env: {} }));
      expect(byName(embedded, 'External URL').ok).to.equal(true);
    });

    /** Puts entries for the duration of `fn`, then deletes them. */
    const withEntries = async <T>(
      entries: Array<[app: string, obj: string, value: unknown]>,
      fn: () => Promise<T>,
    ): Promise<T> => {
      for (const [, obj] of entries)
        expect(
          (await admin('configdb', 'POST', '/v2/object', { class: u.class.edgeCluster, uuid: obj })).status,
        ).to.be.oneOf([200, 201]);
      for (const [app, obj, value] of entries)
        expect((await admin('configdb', 'PUT', `/v2/app/${app}/object/${obj}`, value)).status).to.be.oneOf([201, 204]);
      try {
        return await fn();
      } finally {
        for (const [app, obj] of entries) await admin('configdb', 'DELETE', `/v2/app/${app}/object/${obj}`);
      }
    };
    const CLUSTER = '7b0c5d2e-1f3a-4b6c-8d9e-0a1b2c3d4e5f';
    const setupEntry = {
      spec: { name: 'edge-1', namespace: 'fplus-edge' },
      phase: 'ready',
      ready: true,
      fluxVersion: '2.7.5',
    };
    const edgeEntry = { hosts: [{ hostname: 'n1', ready: true }], kubeseal_cert: '-----BEGIN CERTIFICATE-----\n' };

    it('passes the UUID profile when each kind of entry is under its app', async () => {
      const results = await withEntries(
        [
          [u.app.setupStatus, CLUSTER, setupEntry],
          [u.app.edgeStatus, CLUSTER, edgeEntry],
        ],
        () => runChecks(configFor()),
      );
      const p = byName(results, 'UUID profile');
      expect(p.ok, p.detail).to.equal(true);
      expect(p.detail).to.equal(
        `profile seed: 1 setup status entry under ${u.app.setupStatus}, 1 Edge cluster status under ${u.app.edgeStatus}`,
      );
    });

    it("fails the UUID profile when setup status entries are under the other profile's app, naming UUID_PROFILE", async () => {
      // Written by a Cluster Manager of profile acs: the setup status under f6c67e6f, Edge Sync's status under 747a62c9.
      const acs = loadConfig({ env: {}, overrides: { profile: 'acs' } }).uuids.app;
      expect(acs.setupStatus).to.equal(u.app.edgeStatus);
      await withEntries(
        [
          [acs.setupStatus, CLUSTER, setupEntry],
          [acs.edgeStatus, CLUSTER, edgeEntry],
        ],
        async () => {
          const results = await runChecks(configFor());
          expect(failed(results)).to.deep.equal(['UUID profile']);
          const p = byName(results, 'UUID profile');
          expect(p.detail)
            .to.contain(`1 setup status entry is under ${acs.setupStatus}, the setup status app of profile acs`)
            .and.contain(`1 Edge cluster status entry (hosts, kubeseal_cert) is under ${acs.edgeStatus}`);
          expect(p.fix).to.equal("set UUID_PROFILE=acs, the profile the installation's entries were written with");
          expectClean(results, t.core.credentials.clusterManager.password);
          // With the profile it names, the check passes.
          const right = await runChecks(configFor({ UUID_PROFILE: 'acs' }));
          expect(byName(right, 'UUID profile').ok, byName(right, 'UUID profile').detail).to.equal(true);
        },
      );
    });
  });

  it('formats one line per result', () => {
    const text = formatChecks([
      { name: 'Directory', ok: true, detail: 'http://x/ answered' },
      { name: 'Config Store', ok: false, detail: 'cannot reach http://y/:\nECONNREFUSED', fix: 'start it' },
      { name: 'MQTT', ok: false, skipped: true, detail: 'skipped: needs Config Store' },
    ]);
    expect(text).to.equal(
      [
        'ok   Directory     http://x/ answered',
        'FAIL Config Store  cannot reach http://y/: ECONNREFUSED — fix: start it',
        'skip MQTT          skipped: needs Config Store',
        '',
      ].join('\n'),
    );
    expect(formatChecks([])).to.equal('');
  });
});
