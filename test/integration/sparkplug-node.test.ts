/**
 * The Cluster Manager's Sparkplug node against real brokers, observed by a
 * test host that decodes everything with the independent `sparkplug-payload`
 * decoder (Tahu's, as Factory+ consumers use).
 *
 * Every test runs twice: against the embedded aedes broker (MQTT 3.1.1) and
 * against mosquitto over MQTT 5 (the CI one given by TEST_MQTT_URL, or one
 * spawned here). Tests that restart a broker always use a broker of their
 * own.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import mqtt, { type MqttClient } from 'mqtt';
// Namespace import: the package is CommonJS with __esModule set, so its default export is not reliable.
import * as spPayload from 'sparkplug-payload';
import { startBroker, type EmbeddedBroker } from '../../src/embedded/broker/index.js';
import { silentLogger } from '../../src/lib/log.js';
import { clusterState, DEVICE_METRICS } from '../helpers/sparkplug.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { freePort, spawnMosquitto, type RestartableBroker } from '../helpers/mosquitto.js';
import {
  CLUSTER_DEVICE_SCHEMA_UUID,
  CLUSTER_MANAGER_SERVICE_UUID,
  FACTORYPLUS_PAYLOAD_UUID,
  SERVICE_SCHEMA_UUID,
} from '../../src/sparkplug/model.js';
import { SparkplugNode, type SparkplugNodeOptions } from '../../src/sparkplug/node.js';

const tahu = spPayload.get('spBv1.0')!;
type TahuPayload = ReturnType<typeof tahu.decodePayload>;
type TahuMetric = NonNullable<TahuPayload['metrics']>[number];

const EXTERNAL_MQTT_URL = process.env.TEST_MQTT_URL || undefined;
const CREDS = { username: 'cluster-manager', password: 'cm-secret' };
const HOST_CREDS = { username: 'host', password: 'host-secret' };
const USERS = new Map([CREDS, HOST_CREDS].map((c) => [c.username, c.password]));
const NODE = 'Cluster_Manager';
const INSTANCE = 'c3a9b0f4-6e0e-4a53-9a36-1d2f1b8e0a11';
const CLUSTER_A = '0b9a7f38-2b6e-4a0c-9a57-7d0b2b3f5e01';
const CLUSTER_B = '5f3c1e2d-8a4b-4c6d-9e0f-1a2b3c4d5e02';
const CLUSTER_C = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c03';

const NODE_METRICS: [string, string][] = [
  ['Device_Information/Manufacturer', 'String'],
  ['Device_Information/Model', 'String'],
  ['Device_Information/Serial', 'String'],
  ['Schema_UUID', 'UUID'],
  ['Instance_UUID', 'UUID'],
  ['Service_UUID', 'UUID'],
  ['Clusters/pending', 'UInt64'],
  ['Clusters/address', 'UInt64'],
  ['Clusters/accounts', 'UInt64'],
  ['Clusters/repo', 'UInt64'],
  ['Clusters/ready', 'UInt64'],
  ['Clusters/deleting', 'UInt64'],
  ['Clusters/failed', 'UInt64'],
  ['Clusters/total', 'UInt64'],
  ['Last_Error', 'String'],
];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Brokers

interface Backend {
  name: string;
  protocolVersion: 4 | 5;
  /** Credentials for a given user; mosquitto runs anonymous. */
  creds(c: { username: string; password: string }): { username?: string; password?: string };
  url(): string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A broker of the test's own, on a fixed port, that can be restarted. */
  ownBroker(): Promise<RestartableBroker>;
}

async function embeddedBroker(port = 0): Promise<EmbeddedBroker> {
  return startBroker({ host: '127.0.0.1', port, authenticate: (u, p) => USERS.get(u) === p, log: silentLogger });
}

async function ownEmbeddedBroker(): Promise<RestartableBroker> {
  let broker = await embeddedBroker();
  const port = broker.port;
  return {
    url: broker.url,
    port,
    restart: async () => {
      await broker.close();
      broker = await embeddedBroker(port);
    },
    close: () => broker.close(),
  };
}

function embeddedBackend(): Backend {
  let broker: EmbeddedBroker | undefined;
  return {
    name: 'embedded broker (MQTT 3.1.1)',
    protocolVersion: 4,
    creds: (c) => c,
    url: () => broker!.url,
    setup: async () => {
      broker = await embeddedBroker();
    },
    teardown: async () => {
      await broker?.close();
    },
    ownBroker: ownEmbeddedBroker,
  };
}

function mosquittoBackend(): Backend {
  let own: RestartableBroker | undefined;
  return {
    name: `mosquitto (MQTT 5, ${EXTERNAL_MQTT_URL ? 'TEST_MQTT_URL' : 'spawned'})`,
    protocolVersion: 5,
    creds: () => ({}),
    url: () => EXTERNAL_MQTT_URL ?? own!.url,
    setup: async () => {
      if (!EXTERNAL_MQTT_URL) own = await spawnMosquitto();
    },
    teardown: async () => {
      await own?.close();
    },
    ownBroker: spawnMosquitto,
  };
}

// ---------------------------------------------------------------------------
// The test host

interface Msg {
  topic: string;
  type: string;
  device: string | undefined;
  payload: TahuPayload;
  raw: Buffer;
}

/** Long/number/bigint from the Tahu decoder as a bigint. */
function big(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  if (v !== null && typeof v === 'object' && 'low' in v) return BigInt(String(v));
  throw new Error(`not an integer: ${String(v)}`);
}

const seqOf = (m: Msg): number | undefined =>
  m.payload.seq === undefined || m.payload.seq === null ? undefined : Number(big(m.payload.seq));
const metric = (m: Msg, name: string): TahuMetric | undefined => m.payload.metrics?.find((x) => x.name === name);
const bdSeqOf = (m: Msg): bigint => big(metric(m, 'bdSeq')!.value);

class Host {
  readonly messages: Msg[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly client: MqttClient,
    private readonly group: string,
  ) {}

  /** Subscribes to `spBv1.0/#` and keeps the messages of `group`, in arrival order. */
  static async connect(backend: Backend, url: string, group: string): Promise<Host> {
    const client = await mqtt.connectAsync(url, {
      protocolVersion: backend.protocolVersion,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...backend.creds(HOST_CREDS),
    });
    const host = new Host(client, group);
    const prefix = `spBv1.0/${group}/`;
    client.on('message', (t, raw) => {
      if (!t.startsWith(prefix)) return;
      const [, , type, , device] = t.split('/');
      if (type === 'NCMD' || type === 'DCMD') return; // the host's own commands
      host.messages.push({ topic: t, type, device, payload: tahu.decodePayload(raw), raw });
      for (const w of [...host.waiters]) w();
    });
    await client.subscribeAsync('spBv1.0/#', { qos: 1 });
    return host;
  }

  mark(): number {
    return this.messages.length;
  }

  since(from: number): Msg[] {
    return this.messages.slice(from);
  }

  /** Resolves once `count` messages from index `from` on match. */
  waitFor(pred: (m: Msg) => boolean, opts: { from?: number; count?: number; timeoutMs?: number } = {}): Promise<Msg[]> {
    const { from = 0, count = 1, timeoutMs = 8000 } = opts;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.messages.slice(from).filter(pred);
        if (found.length < count) return;
        done();
        resolve(found.slice(0, count));
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `Fewer than ${count} matching messages within ${timeoutMs} ms; got ${
              this.messages
                .slice(from)
                .map((m) => `${m.type}${m.device ? `/${m.device.slice(0, 8)}` : ''}#${seqOf(m)}`)
                .join(', ') || 'nothing'
            }`,
          ),
        );
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  async waitOne(pred: (m: Msg) => boolean, from = 0, timeoutMs?: number): Promise<Msg> {
    return (await this.waitFor(pred, { from, timeoutMs }))[0];
  }

  async publish(t: string, payload: Buffer | string, retain = false): Promise<void> {
    await this.client.publishAsync(t, payload, { qos: 1, retain });
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}

const is =
  (type: string, device?: string) =>
  (m: Msg): boolean =>
    m.type === type && (device === undefined || m.device === device);

/**
 * Checks the Sparkplug rules a host relies on over a whole observed stream:
 * NBIRTH first; seq 0 on NBIRTH and +1 (mod 256) on every other message
 * except NDEATH, which has none; births name, alias and type every metric
 * (bdSeq and Node Control/Rebirth without alias) with aliases unique across
 * node and devices; DATA by alias only; a device's DDATA/DDEATH only after
 * its DBIRTH in the same node session. NDEATHs whose bdSeq is not the
 * current birth's are stale wills and are skipped, as a host does.
 */
function checkStream(msgs: Msg[]): void {
  let expectSeq: number | undefined;
  let bdSeq: bigint | undefined;
  let aliases = new Map<string, string>();
  let bornDevices = new Set<string>();
  msgs.forEach((m, i) => {
    const at = `message ${i} ${m.type}${m.device ? `/${m.device}` : ''}`;
    if (i === 0) expect(m.type, at).to.equal('NBIRTH');
    if (m.type === 'NDEATH') {
      expect(seqOf(m), `${at} seq`).to.equal(undefined);
      expect(
        m.payload.metrics!.map((x) => [x.name, x.type]),
        at,
      ).to.deep.equal([['bdSeq', 'Int64']]);
      if (bdSeqOf(m) === bdSeq) {
        expectSeq = undefined;
        bornDevices = new Set();
      }
      return;
    }
    if (m.type === 'NBIRTH') {
      expect(seqOf(m), `${at} seq`).to.equal(0);
      bdSeq = bdSeqOf(m);
      aliases = new Map();
      bornDevices = new Set();
    } else {
      expect(expectSeq, `${at}: not preceded by an NBIRTH of this session`).to.not.equal(undefined);
      expect(seqOf(m), `${at} seq`).to.equal(expectSeq);
    }
    expectSeq = (seqOf(m)! + 1) % 256;
    if (m.type === 'NBIRTH' || m.type === 'DBIRTH') {
      if (m.type === 'DBIRTH') bornDevices.add(m.device!);
      for (const x of m.payload.metrics ?? []) {
        expect(x.name, `${at} metric name`).to.be.a('string');
        expect(x.type, `${at} ${x.name} type`).to.be.a('string');
        if (x.name === 'bdSeq' || x.name === 'Node Control/Rebirth' || x.name === 'Device Control/Rebirth') {
          expect(x.alias, `${at} ${x.name} alias`).to.equal(undefined);
          continue;
        }
        const a = String(big(x.alias));
        // A device reborn on request (DCMD) declares its own aliases again; nobody else's.
        const owner = `${m.device ?? ''}:${x.name}`;
        expect(aliases.has(a) && aliases.get(a) !== owner, `${at} alias ${a} of ${x.name} reused`).to.equal(false);
        aliases.set(a, owner);
      }
    }
    if (m.type === 'DDATA' || m.type === 'DDEATH') {
      expect(bornDevices.has(m.device!), `${at} before its DBIRTH`).to.equal(true);
      if (m.type === 'DDEATH') bornDevices.delete(m.device!);
    }
    if (m.type === 'NDATA' || m.type === 'DDATA') {
      expect(m.payload.metrics!.length, `${at} is empty`).to.be.greaterThan(0);
      for (const x of m.payload.metrics!) {
        expect(x.name, `${at} carries a name`).to.equal(undefined);
        const owner = aliases.get(String(big(x.alias)));
        expect(owner, `${at} alias ${String(x.alias)}`).to.be.a('string');
        expect(owner!.startsWith(`${m.device ?? ''}:`), `${at} alias belongs to ${owner}`).to.equal(true);
      }
    }
  });
}

/** Metric name -> value (bigints for 64-bit integers) as the host decoded them, resolving aliases through `birth`. */
function values(m: Msg, birth?: Msg): Record<string, unknown> {
  const byAlias = new Map(
    (birth?.payload.metrics ?? []).filter((x) => x.alias != null).map((x) => [String(big(x.alias)), x.name!]),
  );
  const out: Record<string, unknown> = {};
  for (const x of m.payload.metrics ?? []) {
    const name = x.name ?? byAlias.get(String(big(x.alias)))!;
    out[name] = x.type === 'UInt64' || x.type === 'Int64' ? big(x.value) : x.value;
  }
  return out;
}

function rebirthCommand(value: boolean): Buffer {
  return Buffer.from(
    tahu.encodePayload({
      timestamp: Date.now(),
      metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value, timestamp: Date.now() }],
    }),
  );
}

function state(online: boolean, timestamp = Date.now()): string {
  return JSON.stringify({ online, timestamp });
}

// ---------------------------------------------------------------------------

for (const backend of [embeddedBackend(), mosquittoBackend()]) {
  describe(`Cluster Manager Sparkplug node: ${backend.name}`, function () {
    let group: string;
    let dir: string;
    let host: Host;
    const nodes: SparkplugNode[] = [];
    const cleanups: (() => Promise<void>)[] = [];

    const T = (type: string, device?: string): string =>
      `spBv1.0/${group}/${type}/${NODE}${device ? `/${device}` : ''}`;

    const makeNode = (extra: Partial<SparkplugNodeOptions> = {}): SparkplugNode => {
      const node = new SparkplugNode({
        mqttUrl: backend.url(),
        ...backend.creds(CREDS),
        protocolVersion: backend.protocolVersion,
        group,
        node: NODE,
        bdSeqFile: join(dir, 'bdseq'),
        instanceUuid: INSTANCE,
        serviceUuid: CLUSTER_MANAGER_SERVICE_UUID,
        deviceInfo: { manufacturer: 'AMRC', model: 'Test Cluster Manager', serial: 'sn-1' },
        reconnectPeriodMs: 100,
        log: silentLogger,
        ...extra,
      });
      nodes.push(node);
      return node;
    };

    const started = async (extra: Partial<SparkplugNodeOptions> = {}): Promise<SparkplugNode> => {
      const node = makeNode(extra);
      await node.start();
      return node;
    };

    before(async () => {
      await backend.setup();
    });

    after(async () => {
      await backend.teardown();
    });

    beforeEach(async () => {
      group = `CM-Test-${randomBytes(4).toString('hex')}`;
      dir = mkdtempSync(join(tmpdir(), 'sp-node-'));
      host = await Host.connect(backend, backend.url(), group);
    });

    afterEach(async () => {
      for (const n of nodes.splice(0)) await n.stop();
      for (const c of cleanups.splice(0).reverse()) await c();
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('publishes NBIRTH first (seq 0, every metric named, aliased and typed) then a DBIRTH per device', async () => {
      const node = makeNode();
      node.setDevice(
        CLUSTER_A,
        clusterState({
          phase: 'ready',
          ready: true,
          repoHead: 'abc123',
          sealedSecrets: 3,
          bootstrapFetches: 2,
          edgeReported: true,
          edgeHosts: 3,
          edgeReadyHosts: 2,
          edgeKubernetesVersions: ['v1.30.6+k3s1', 'v1.31.4+k3s1'],
        }),
      );
      node.setDevice(CLUSTER_B, clusterState({ name: 'Other', conditions: [{ type: 'Ready', status: 'False' }] }));
      node.setNodeMetrics({ clusters: { ready: 1, pending: 1, total: 2 }, lastError: 'boom' });
      await node.start();

      const [birth, dA, dB] = await host.waitFor(() => true, { count: 3 });
      expect([birth.type, dA.type, dB.type]).to.deep.equal(['NBIRTH', 'DBIRTH', 'DBIRTH']);
      expect([dA.device, dB.device]).to.deep.equal([CLUSTER_A, CLUSTER_B]);
      expect([seqOf(birth), seqOf(dA), seqOf(dB)]).to.deep.equal([0, 1, 2]);
      checkStream(host.messages);

      const p = birth.payload;
      expect(p.uuid).to.equal(FACTORYPLUS_PAYLOAD_UUID);
      expect(Number(big(p.timestamp))).to.be.closeTo(Date.now(), 10_000);
      expect(p.metrics!.map((m) => [m.name, m.type])).to.deep.equal([
        ['bdSeq', 'Int64'],
        ['Node Control/Rebirth', 'Boolean'],
        ...NODE_METRICS,
      ]);
      expect(metric(birth, 'Node Control/Rebirth')!.value).to.equal(false);
      expect(bdSeqOf(birth)).to.equal(0n);
      expect(values(birth)).to.deep.include({
        'Device_Information/Manufacturer': 'AMRC',
        'Device_Information/Model': 'Test Cluster Manager',
        'Device_Information/Serial': 'sn-1',
        Schema_UUID: SERVICE_SCHEMA_UUID,
        Instance_UUID: INSTANCE,
        Service_UUID: CLUSTER_MANAGER_SERVICE_UUID,
        'Clusters/pending': 1n,
        'Clusters/ready': 1n,
        'Clusters/failed': 0n,
        'Clusters/total': 2n,
        Last_Error: 'boom',
      });
      expect(SERVICE_SCHEMA_UUID).to.equal('05688a03-730e-4cda-9932-172e2c62e45c');
      expect(CLUSTER_MANAGER_SERVICE_UUID).to.equal('2706aa43-a826-441e-9cec-cd3d4ce623c2');

      expect(dA.payload.metrics!.map((m) => [m.name, m.type])).to.deep.equal(DEVICE_METRICS);
      expect(values(dA)).to.deep.equal({
        'Device Control/Rebirth': false,
        Schema_UUID: CLUSTER_DEVICE_SCHEMA_UUID,
        Instance_UUID: CLUSTER_A,
        Name: 'Line 1/Cell #2',
        Cluster_UUID: CLUSTER_A,
        Phase: 'ready',
        Ready: true,
        Conditions: '[]',
        Repo_Head: 'abc123',
        Sealed_Secrets: 3n,
        Bootstrap_Fetches: 2n,
        Failure_Reason: '',
        Failure_Message: '',
        'Edge/Reported': true,
        'Edge/Hosts': 3n,
        'Edge/Ready_Hosts': 2n,
        'Edge/Kubernetes_Versions': 'v1.30.6+k3s1, v1.31.4+k3s1',
      });
      expect(values(dB)).to.deep.include({
        Name: 'Other',
        Repo_Head: '',
        Conditions: '[{"type":"Ready","status":"False"}]',
      });
      expect(node.status()).to.deep.equal({ connected: true, born: true, bdSeq: 0 });
    });

    it('names its Service_URL in NBIRTH when it has one, so the ACS Directory advertises the service with it', async () => {
      await started({ serviceUrl: 'https://clusters.factoryplus.example.com' });
      const birth = await host.waitOne(is('NBIRTH'));
      const names = birth.payload.metrics!.map((m) => m.name);
      expect(names.slice(names.indexOf('Service_UUID'), names.indexOf('Service_UUID') + 2)).to.deep.equal([
        'Service_UUID',
        'Service_URL',
      ]);
      expect(values(birth).Service_URL).to.equal('https://clusters.factoryplus.example.com');
      checkStream(host.messages);
    });

    it('publishes DBIRTH before DDATA, DDATA/NDATA with only changed metrics by alias, and DDEATH with seq', async () => {
      const node = await started();
      await host.waitOne(is('NBIRTH'));

      node.setDevice(CLUSTER_A, clusterState());
      const dbirth = await host.waitOne(is('DBIRTH', CLUSTER_A));
      node.setDevice(CLUSTER_A, clusterState()); // unchanged: nothing
      node.setDevice(CLUSTER_A, clusterState({ phase: 'address' }));
      const [d1] = await host.waitFor(is('DDATA', CLUSTER_A));
      expect(values(d1, dbirth)).to.deep.equal({ Phase: 'address' });

      node.setDevice(CLUSTER_A, clusterState({ phase: 'ready', ready: true, repoHead: 'f00d', bootstrapFetches: 5 }));
      const [, d2] = await host.waitFor(is('DDATA', CLUSTER_A), { count: 2 });
      expect(values(d2, dbirth)).to.deep.equal({
        Phase: 'ready',
        Ready: true,
        Repo_Head: 'f00d',
        Bootstrap_Fetches: 5n,
      });
      for (const x of d2.payload.metrics!) {
        expect(x.name).to.equal(undefined);
        expect(x.alias).to.not.equal(undefined);
        expect(x.timestamp).to.not.equal(undefined);
      }

      node.setNodeMetrics({ clusters: { ready: 1, total: 1 }, lastError: '' }); // lastError unchanged
      const birth = host.messages[0];
      const [nd] = await host.waitFor(is('NDATA'));
      expect(values(nd, birth)).to.deep.equal({ 'Clusters/ready': 1n, 'Clusters/total': 1n });
      node.setNodeMetrics({ lastError: 'it broke' });
      const [, nd2] = await host.waitFor(is('NDATA'), { count: 2 });
      expect(values(nd2, birth)).to.deep.equal({ Last_Error: 'it broke' });

      node.removeDevice(CLUSTER_A);
      node.removeDevice(CLUSTER_B); // unknown: nothing
      const death = await host.waitOne(is('DDEATH', CLUSTER_A));
      expect(death.payload.metrics ?? []).to.have.length(0);
      node.setDevice(CLUSTER_A, clusterState({ phase: 'repo' }));
      node.setDevice(CLUSTER_C, clusterState());
      const [, reborn] = await host.waitFor(is('DBIRTH', CLUSTER_A), { count: 2 });
      await host.waitOne(is('DBIRTH', CLUSTER_C));
      expect(values(reborn).Phase).to.equal('repo');
      await sleep(100);
      expect(host.messages.map((m) => m.type)).to.deep.equal([
        'NBIRTH',
        'DBIRTH',
        'DDATA',
        'DDATA',
        'NDATA',
        'NDATA',
        'DDEATH',
        'DBIRTH',
        'DBIRTH',
      ]);
      checkStream(host.messages);
    });

    it('keeps seq continuous through many interleaved messages, wrapping 255 -> 0', async () => {
      const node = await started();
      node.setDevice(CLUSTER_A, clusterState());
      node.setDevice(CLUSTER_B, clusterState());
      await host.waitFor(is('DBIRTH'), { count: 2 });
      for (let i = 1; i <= 150; i++) {
        node.setDevice(CLUSTER_A, clusterState({ bootstrapFetches: i }));
        await sleep(0);
        node.setNodeMetrics({ clusters: { total: i } });
        node.setDevice(CLUSTER_B, clusterState({ sealedSecrets: i }));
        if (i % 10 === 0) await sleep(1);
      }
      await host.waitOne(
        (m) =>
          m.type === 'DDATA' &&
          m.device === CLUSTER_B &&
          values(m, host.messages.find(is('DBIRTH', CLUSTER_B))).Sealed_Secrets === 150n,
        0,
        15_000,
      );
      await sleep(100);
      expect(host.messages.length).to.be.greaterThan(256);
      expect(host.messages.map(seqOf)).to.include(255);
      checkStream(host.messages);
      // Updates may be coalesced, never lost or reordered: the last values win.
      const finalA = host.messages.filter(is('DDATA', CLUSTER_A)).at(-1)!;
      expect(values(finalA, host.messages.find(is('DBIRTH', CLUSTER_A))).Bootstrap_Fetches).to.equal(150n);
    });

    it('answers NCMD Node Control/Rebirth (and rebirth()) with NBIRTH and all DBIRTHs, same bdSeq', async () => {
      const node = await started();
      node.setDevice(CLUSTER_A, clusterState());
      node.setDevice(CLUSTER_B, clusterState());
      const first = await host.waitOne(is('NBIRTH'));
      await host.waitFor(is('DBIRTH'), { count: 2 });
      node.setDevice(CLUSTER_A, clusterState({ phase: 'address' }));
      await host.waitOne(is('DDATA'));

      let from = host.mark();
      await host.publish(T('NCMD'), rebirthCommand(false)); // not a request
      await host.publish(T('NCMD'), rebirthCommand(true));
      const rb = await host.waitFor(() => true, { from, count: 3 });
      expect(rb.map((m) => [m.type, m.device, seqOf(m)])).to.deep.equal([
        ['NBIRTH', undefined, 0],
        ['DBIRTH', CLUSTER_A, 1],
        ['DBIRTH', CLUSTER_B, 2],
      ]);
      expect(bdSeqOf(rb[0])).to.equal(bdSeqOf(first));
      expect(values(rb[1]).Phase).to.equal('address');

      node.setDevice(CLUSTER_B, clusterState({ ready: true }));
      expect(seqOf(await host.waitOne(is('DDATA', CLUSTER_B), from))).to.equal(3);

      from = host.mark();
      node.rebirth();
      const rb2 = await host.waitFor(() => true, { from, count: 3 });
      expect(rb2.map((m) => m.type)).to.deep.equal(['NBIRTH', 'DBIRTH', 'DBIRTH']);
      expect(bdSeqOf(rb2[0])).to.equal(bdSeqOf(first));
      await sleep(100);
      expect(host.messages.filter(is('NBIRTH'))).to.have.length(3);
      expect(host.messages.filter(is('NDEATH'))).to.have.length(0);
      checkStream(host.messages);
    });

    it('ignores malformed NCMDs and DCMDs', async () => {
      await started();
      await host.waitOne(is('NBIRTH'));
      const from = host.mark();
      await host.publish(T('NCMD'), Buffer.from('not protobuf at all'));
      await host.publish(T('DCMD', CLUSTER_A), rebirthCommand(true));
      await host.publish(T('NCMD'), rebirthCommand(true));
      const [nb] = await host.waitFor(is('NBIRTH'), { from });
      expect(seqOf(nb)).to.equal(0);
      await sleep(100);
      expect(host.since(from).map((m) => m.type)).to.deep.equal(['NBIRTH']);
    });

    it("answers DCMD Device Control/Rebirth with that device's DBIRTH only, and ignores it for unknown devices", async () => {
      const node = await started();
      node.setDevice(CLUSTER_A, clusterState({ phase: 'repo' }));
      node.setDevice(CLUSTER_B, clusterState());
      await host.waitFor(is('DBIRTH'), { count: 2 });
      const from = host.mark();
      const cmd = (value: boolean): Buffer =>
        Buffer.from(
          tahu.encodePayload({
            timestamp: Date.now(),
            metrics: [{ name: 'Device Control/Rebirth', type: 'Boolean', value, timestamp: Date.now() }],
          }),
        );
      await host.publish(T('DCMD', CLUSTER_C), cmd(true)); // not a device of this node
      await host.publish(T('DCMD', CLUSTER_A), cmd(false)); // not a request
      await host.publish(T('DCMD', CLUSTER_A), cmd(true));
      const [again] = await host.waitFor(is('DBIRTH', CLUSTER_A), { from });
      expect(values(again)).to.deep.include({ Phase: 'repo', Instance_UUID: CLUSTER_A, Cluster_UUID: CLUSTER_A });
      node.setDevice(CLUSTER_A, clusterState({ phase: 'ready' }));
      const [dd] = await host.waitFor(is('DDATA', CLUSTER_A), { from });
      expect(values(dd, again)).to.deep.equal({ Phase: 'ready' });
      await sleep(100);
      expect(host.since(from).map((m) => `${m.type}/${m.device}`)).to.deep.equal([
        `DBIRTH/${CLUSTER_A}`,
        `DDATA/${CLUSTER_A}`,
      ]);
      checkStream(host.messages);
      expect(node.born).to.equal(true);
    });

    it('registers a will with the birth bdSeq; after an abrupt disconnect rebirths with the next bdSeq and current state', async () => {
      const relay = await startTcpProxy(`mqtt://127.0.0.1:${new URL(backend.url()).port}`);
      cleanups.push(() => relay.close());
      // start() returns after the first connection: listen before it.
      const node = makeNode({ mqttUrl: relay.url });
      const events: string[] = [];
      node.on('connected', (b) => events.push(`connected ${b}`));
      node.on('disconnected', () => events.push('disconnected'));
      await node.start();
      node.setDevice(CLUSTER_A, clusterState());
      const birth0 = await host.waitOne(is('NBIRTH'));
      await host.waitOne(is('DBIRTH'));
      expect(bdSeqOf(birth0)).to.equal(0n);

      let from = host.mark();
      relay.set('refuse');
      const will = await host.waitOne(is('NDEATH'), from);
      expect(seqOf(will)).to.equal(undefined);
      expect(will.payload.metrics!.map((m) => [m.name, m.type, big(m.value)])).to.deep.equal([['bdSeq', 'Int64', 0n]]);

      // Changes while disconnected only update the model...
      node.setDevice(CLUSTER_A, clusterState({ phase: 'failed' }));
      node.setDevice(CLUSTER_B, clusterState({ name: 'new' }));
      node.removeDevice(CLUSTER_A);
      node.setNodeMetrics({ lastError: 'offline error' });
      await sleep(300);
      expect(node.connected).to.equal(false);
      expect(host.since(from).map((m) => m.type)).to.deep.equal(['NDEATH']);

      // ...and the births after reconnecting carry the current state.
      relay.set('pass');
      const [birth1, dbirth] = await host.waitFor(() => true, { from: from + 1, count: 2 });
      expect([birth1.type, dbirth.type, dbirth.device]).to.deep.equal(['NBIRTH', 'DBIRTH', CLUSTER_B]);
      expect(bdSeqOf(birth1) > bdSeqOf(birth0)).to.equal(true);
      expect(values(birth1).Last_Error).to.equal('offline error');
      expect(node.bdSeq).to.equal(Number(bdSeqOf(birth1)));

      // The will of the new connection carries the new bdSeq.
      from = host.mark();
      relay.cutAll();
      const will1 = await host.waitOne(is('NDEATH'), from);
      expect(big(metric(will1, 'bdSeq')!.value)).to.equal(bdSeqOf(birth1));
      const birth2 = await host.waitOne(is('NBIRTH'), from);
      expect(bdSeqOf(birth2)).to.equal(bdSeqOf(birth1) + 1n);
      await host.waitOne(is('DBIRTH'), from);
      expect(events.slice(0, 4)).to.deep.equal([
        'connected 0',
        'disconnected',
        `connected ${bdSeqOf(birth1)}`,
        'disconnected',
      ]);
      checkStream(host.messages);
    });

    it('publishes NDEATH (with the birth bdSeq, no seq) on stop, then disconnects cleanly', async () => {
      const node = await started();
      node.setDevice(CLUSTER_A, clusterState());
      const birth = await host.waitOne(is('NBIRTH'));
      await host.waitOne(is('DBIRTH'));
      let disconnected = false;
      node.on('disconnected', () => {
        disconnected = true;
      });
      node.setDevice(CLUSTER_A, clusterState({ phase: 'deleting' }));
      await node.stop(); // the DDATA queued before stop still goes out first
      const death = await host.waitOne(is('NDEATH'));
      expect(seqOf(death)).to.equal(undefined);
      expect(big(metric(death, 'bdSeq')!.value)).to.equal(bdSeqOf(birth));
      expect(node.status()).to.deep.equal({ connected: false, born: false, bdSeq: 0 });
      expect(disconnected).to.equal(true);
      await node.stop();
      await sleep(200);
      // MQTT 3.1.1: the clean DISCONNECT discards the will. MQTT 5: the DISCONNECT carries
      // reason code 0x04 (Disconnect with Will Message), so the broker publishes the will
      // too, with the same bdSeq (Sparkplug 3.0 payloads-ndeath-will-message-publisher-disconnect-mqtt50).
      // Nothing is published after stop.
      node.setDevice(CLUSTER_B, clusterState());
      await sleep(100);
      const deaths = backend.protocolVersion === 5 ? ['NDEATH', 'NDEATH'] : ['NDEATH'];
      expect(host.messages.map((m) => m.type)).to.deep.equal(['NBIRTH', 'DBIRTH', 'DDATA', ...deaths]);
      for (const d of host.messages.filter(is('NDEATH')))
        expect(big(metric(d, 'bdSeq')!.value)).to.equal(bdSeqOf(birth));
      checkStream(host.messages);
    });

    it('sends DISCONNECT with reason code 0x04 under MQTT 5 and none under MQTT 3.1.1 when stopping', async () => {
      const node = await started();
      await host.waitOne(is('NBIRTH'));
      const sent: { cmd: string; reasonCode?: number }[] = [];
      // The node's own client, as the broker sees its packets.
      const client = (node as unknown as { session: { client: MqttClient } }).session.client;
      client.on('packetsend', (p) => sent.push({ cmd: p.cmd, reasonCode: (p as { reasonCode?: number }).reasonCode }));
      await node.stop();
      const disconnect = sent.find((p) => p.cmd === 'disconnect');
      expect(disconnect, 'a DISCONNECT was sent').to.not.equal(undefined);
      if (backend.protocolVersion === 5) expect(disconnect!.reasonCode).to.equal(0x04);
      else expect(disconnect!.reasonCode ?? 0).to.equal(0);
    });

    it('continues bdSeq from the file after a process restart, wrapping 255 -> 0', async () => {
      const first = await started();
      const b0 = bdSeqOf(await host.waitOne(is('NBIRTH')));
      await first.stop();
      const from = host.mark();
      await started();
      const b1 = bdSeqOf(await host.waitOne(is('NBIRTH'), from));
      expect(b1).to.equal(b0 + 1n);
      expect(readFileSync(join(dir, 'bdseq'), 'utf8').trim()).to.equal(String(b1));

      for (const n of nodes.splice(0)) await n.stop();
      writeFileSync(join(dir, 'bdseq'), '255\n');
      const from2 = host.mark();
      await started();
      expect(bdSeqOf(await host.waitOne(is('NBIRTH'), from2))).to.equal(0n);
    });

    it('keeps retrying while the broker is unreachable without spending a bdSeq on attempts that sent no CONNECT', async () => {
      const dead = await freePort();
      const attempts: number[] = [];
      // Accepts, reads whatever the client sends (its CONNECT), then hangs up without CONNACK.
      const probe = net.createServer((c) => {
        c.on('data', () => undefined);
        setTimeout(() => c.destroy(), 50);
      });
      const node = await started({ mqttUrl: `mqtt://127.0.0.1:${dead}` });
      node.setDevice(CLUSTER_A, clusterState());
      const file = join(dir, 'bdseq');
      const written = statSync(file).mtimeMs;
      await sleep(450);
      expect(node.status().connected).to.equal(false);
      // Several TCP attempts were refused; none sent a CONNECT, so bdSeq 0 is still unspent and the file untouched.
      expect(node.bdSeq).to.equal(0);
      expect(readFileSync(file, 'utf8').trim()).to.equal('0');
      expect(statSync(file).mtimeMs).to.equal(written);
      // Once something listens, the first CONNECT carries that same bdSeq 0.
      await new Promise<void>((r) => probe.listen(dead, '127.0.0.1', r));
      probe.on('connection', () => attempts.push(Date.now()));
      await sleep(300);
      probe.close();
      expect(attempts.length, 'TCP connections accepted').to.be.greaterThan(0);
      // Those connections did carry a CONNECT (closed before CONNACK), so each spent a bdSeq.
      expect(node.bdSeq).to.be.at.least(1);
      await node.stop();
      expect(() => node.setDevice('bad/id', clusterState())).to.throw(/Invalid Sparkplug device id/);
      expect(() => node.setDevice(CLUSTER_A, clusterState({ sealedSecrets: -1 }))).to.throw(TypeError);
      expect(host.messages).to.have.length(0);
    });

    it('waits for the primary host to be online before birth, and dies and reconnects when it goes offline', async () => {
      const hostId = `cm-test-host-${randomBytes(3).toString('hex')}`;
      const stateTopic = `spBv1.0/STATE/${hostId}`;
      cleanups.push(() => host.publish(stateTopic, '', true)); // clear the retained STATE
      await host.publish(stateTopic, state(false), true);
      const node = makeNode({ primaryHostId: hostId });
      const connected = new Promise<void>((resolve) => node.once('connected', () => resolve()));
      await node.start();
      node.setDevice(CLUSTER_A, clusterState());
      await connected;
      await sleep(300);
      expect(host.messages).to.have.length(0);
      expect(node.status()).to.deep.include({ connected: true, born: false });

      await host.publish(stateTopic, 'not json', true);
      await host.publish(stateTopic, state(true), true);
      const [birth0, dbirth] = await host.waitFor(() => true, { count: 2 });
      expect([birth0.type, dbirth.type]).to.deep.equal(['NBIRTH', 'DBIRTH']);
      const b0 = bdSeqOf(birth0);

      // A stale STATE (older timestamp) is ignored.
      await host.publish(stateTopic, state(false, Date.now() - 60_000));
      await sleep(200);
      expect(host.messages.filter(is('NDEATH'))).to.have.length(0);

      let from = host.mark();
      const reconnected = new Promise<void>((resolve) => node.once('connected', () => resolve()));
      await host.publish(stateTopic, state(false), true);
      const death = await host.waitOne(is('NDEATH'), from);
      expect(big(metric(death, 'bdSeq')!.value)).to.equal(b0);
      // Reconnected (new bdSeq) but waiting for the host again.
      await reconnected;
      expect(node.bdSeq).to.equal(Number(b0) + 1);
      node.setDevice(CLUSTER_A, clusterState({ phase: 'ready' }));
      await sleep(300);
      // Under MQTT 5 the DISCONNECT (reason 0x04) makes the broker publish the will as well.
      const deaths = host.since(from);
      expect(deaths.map((m) => m.type)).to.deep.equal(
        backend.protocolVersion === 5 ? ['NDEATH', 'NDEATH'] : ['NDEATH'],
      );
      for (const d of deaths) expect(big(metric(d, 'bdSeq')!.value)).to.equal(b0);

      from = host.mark();
      await host.publish(stateTopic, state(true), true);
      const [birth1, dbirth1] = await host.waitFor(() => true, { from, count: 2 });
      expect([birth1.type, dbirth1.type]).to.deep.equal(['NBIRTH', 'DBIRTH']);
      expect(bdSeqOf(birth1)).to.equal(b0 + 1n);
      expect(values(dbirth1).Phase).to.equal('ready');
      checkStream(host.messages);
    });

    it('reconnects after a broker restart with a higher bdSeq, fresh NBIRTH, all DBIRTHs and new subscriptions', async function () {
      this.timeout(30_000);
      const broker = await backend.ownBroker();
      cleanups.push(() => broker.close());
      // The node goes through a relay so it can be kept away until the host has resubscribed.
      const relay = await startTcpProxy(`mqtt://127.0.0.1:${broker.port}`);
      cleanups.push(() => relay.close());
      let h = await Host.connect(backend, broker.url, group);
      cleanups.push(() => h.close().catch(() => undefined));
      const node = await started({ mqttUrl: relay.url });
      node.setDevice(CLUSTER_A, clusterState());
      node.setDevice(CLUSTER_B, clusterState());
      const birth0 = await h.waitOne(is('NBIRTH'));
      await h.waitFor(is('DBIRTH'), { count: 2 });
      const disconnected = new Promise<void>((resolve) => node.once('disconnected', () => resolve()));

      relay.set('refuse');
      await h.close().catch(() => undefined);
      await broker.restart();
      await disconnected;
      expect(node.connected).to.equal(false);
      node.setDevice(CLUSTER_B, clusterState({ phase: 'accounts' }));

      h = await Host.connect(backend, broker.url, group);
      relay.set('pass');
      const [birth1, ...dbirths] = await h.waitFor(() => true, { count: 3, timeoutMs: 10_000 });
      expect([birth1.type, ...dbirths.map((m) => m.type)]).to.deep.equal(['NBIRTH', 'DBIRTH', 'DBIRTH']);
      expect(bdSeqOf(birth1) > bdSeqOf(birth0)).to.equal(true);
      expect(values(dbirths[1]).Phase).to.equal('accounts');

      // Subscriptions were renewed on the new broker.
      const from = h.mark();
      await h.publish(T('NCMD'), rebirthCommand(true));
      const rb = await h.waitOne(is('NBIRTH'), from);
      expect(bdSeqOf(rb)).to.equal(bdSeqOf(birth1));
      checkStream(h.messages);
    });
  });
}
