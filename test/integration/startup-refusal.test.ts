/**
 * A broker that refuses a subscription the service needs ends start-up with
 * a message naming the topic and the permission, instead of a start-up that
 * waits or a node that reconnects in silence. The broker is a real one
 * (aedes) whose ACL refuses chosen topics.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/lib/log.js';
import { SparkplugNode, SubscriptionRefusedError, type SparkplugNodeOptions } from '../../src/sparkplug/node.js';
import { startTestManager } from '../helpers/api.js';
import { startTestCore, tempDir, type TestCore } from '../helpers/core.js';
import { runMain } from '../helpers/processes.js';
import { startRefusingBroker, type RefusingBroker } from '../helpers/refusing-broker.js';

const GROUP = 'AMRC-Service-Core';
const NODE = 'Cluster_Manager';
const NCMD = `spBv1.0/${GROUP}/NCMD/${NODE}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('start-up with a refused MQTT subscription', function () {
  this.timeout(60_000);
  let broker: RefusingBroker;
  let dir: string;
  const nodes: SparkplugNode[] = [];
  const newNode = (o: Partial<SparkplugNodeOptions> = {}) => {
    const n = new SparkplugNode({
      mqttUrl: broker.url,
      username: 'sv1clustermanager',
      password: 'pw',
      protocolVersion: 4,
      group: GROUP,
      node: NODE,
      bdSeqFile: join(dir, `bdseq-${nodes.length}`),
      instanceUuid: 'c3a9b0f4-6e0e-4a53-9a36-1d2f1b8e0a11',
      serviceUuid: '2706aa43-a826-441e-9cec-cd3d4ce623c2',
      reconnectPeriodMs: 100,
      log: silentLogger,
      ...o,
    });
    nodes.push(n);
    return n;
  };

  beforeEach(async () => {
    dir = tempDir('sp-refused-');
    broker = await startRefusingBroker({ refuseSubscribe: (t) => t === NCMD });
  });
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await broker.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the Sparkplug node fails start() naming the topic and the grant, and does not reconnect', async () => {
    const node = newNode();
    const started = Date.now();
    const err = await node.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    expect(err).to.be.instanceOf(SubscriptionRefusedError);
    const msg = (err as Error).message;
    expect(msg).to.contain(`refused the account sv1clustermanager the subscription to ${NCMD} (refused, code 0x80)`);
    expect(msg).to.contain('Participate as Node (a1314953-8226-44f4-8a3e-e87b09310579)');
    expect(msg).not.to.contain('DCMD');
    expect(elapsed).to.be.below(10_000);
    // Ten reconnection periods later, still the one connection and no birth.
    await sleep(1000);
    expect(broker.connections).to.equal(1);
    expect(broker.publishAttempts.filter((t) => t.includes('BIRTH'))).to.deep.equal([]);
    expect(node.status().failure).to.equal(msg);
  });

  it('names Read all STATEs when the primary host STATE subscription is refused', async () => {
    broker.refuseSubscribe = (t) => t.startsWith('spBv1.0/STATE/');
    const err = await newNode({ primaryHostId: 'scada' })
      .start()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((err as Error).message)
      .to.contain('spBv1.0/STATE/scada')
      .and.contain('Read all STATEs')
      .and.not.contain(NCMD);
  });

  it('after start-up, a refusal is a visible failure that clears once the broker grants the subscription', async () => {
    broker.refuseSubscribe = () => false;
    const node = newNode();
    const born = new Promise((r) => node.once('born', r));
    await node.start();
    await born;
    expect(node.status().failure).to.equal(undefined);

    const refused = new Promise<SubscriptionRefusedError>((r) => node.once('refused', r));
    broker.refuseSubscribe = (t) => t === NCMD;
    broker.dropClients();
    const err = await refused;
    expect(err.message).to.contain(NCMD);
    expect(node.status()).to.include({ connected: true, born: false, failure: err.message });
    // It keeps trying, so a fixed ACL is picked up without a restart.
    const before = broker.connections;
    await sleep(500);
    expect(broker.connections).to.be.above(before);

    const reborn = new Promise((r) => node.once('born', r));
    broker.refuseSubscribe = () => false;
    await reborn;
    expect(node.status().failure).to.equal(undefined);
  });

  it('an unreachable broker still does not fail start()', async () => {
    const url = broker.url;
    await broker.close();
    const node = newNode({ mqttUrl: url });
    await node.start();
    expect(node.connected).to.equal(false);
    broker = await startRefusingBroker();
  });
});

describe('serve in Factory+ mode with a broker that refuses the command subscription', function () {
  this.timeout(60_000);
  let broker: RefusingBroker;
  let t: TestCore;

  before(async () => {
    broker = await startRefusingBroker({ refuseSubscribe: (topic) => topic === NCMD });
    t = await startTestCore({ mqttUrl: broker.url });
  });
  after(async () => {
    await t?.stop();
    await broker?.close();
  });

  it('startManager rejects within 10 s naming the topic', async () => {
    const config = loadConfig({ env: { MQTT_PROTOCOL: '4' }, overrides: { dataDir: tempDir() } });
    const started = Date.now();
    const err = await startTestManager(t, config).then(
      (m) => m.stop().then(() => undefined),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(SubscriptionRefusedError);
    expect((err as Error).message)
      .to.contain(NCMD)
      .and.contain('Participate as Node');
    expect(Date.now() - started).to.be.below(10_000);
    rmSync(config.dataDir, { recursive: true, force: true });
  });

  it('the process exits with status 1 within 10 s, printing the topic and the permission', async () => {
    const cm = t.core.credentials.clusterManager;
    const dataDir = tempDir();
    const started = Date.now();
    const p = runMain('serve', {
      DIRECTORY_URL: t.core.endpoints.directory,
      SERVICE_USERNAME: cm.username,
      SERVICE_PASSWORD: cm.password,
      MQTT_PROTOCOL: '4',
      DATA_DIR: dataDir,
      PORT: '0',
      EXTERNAL_URL: 'http://127.0.0.1:7080',
      LOG_LEVEL: 'silent',
    });
    const timer = setTimeout(() => void p.kill(), 20_000);
    const code = await p.exited;
    clearTimeout(timer);
    const elapsed = Date.now() - started;
    rmSync(dataDir, { recursive: true, force: true });
    expect(code, p.output()).to.equal(1);
    expect(p.output())
      .to.contain(
        `cluster-manager: cannot start: the MQTT broker at ${broker.url} refused the account ${cm.username} the subscription to ${NCMD}`,
      )
      .and.contain('Participate as Node');
    console.log(`      serve exited ${elapsed} ms after it was started`);
    expect(elapsed).to.be.below(10_000);
  });
});
