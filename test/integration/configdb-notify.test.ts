import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { pino } from 'pino';
// Namespace import: the package is CommonJS with __esModule set, so its default export is not reliable.
import * as spPayload from 'sparkplug-payload';
import { startBroker, type EmbeddedBroker } from '../../src/embedded/broker/index.js';
import { CONFIGDB_SERVICE as CONFIGDB_SERVICE_UUID } from '../../src/embedded/configdb/load.js';
import {
  startConfigDbNode,
  type ConfigDbNode,
  type ConfigDbNodeOptions,
} from '../../src/embedded/notify/configdb-node.js';
import { encodePayload, type SparkplugMetric } from '../../src/lib/sparkplug/index.js';
import { FACTORYPLUS_PAYLOAD_UUID, SERVICE_SCHEMA_UUID } from '../../src/sparkplug/model.js';
import { silentLogger } from '../../src/lib/log.js';
import { ChangeEmitter, connectClient, subscribe, type Received, type Subscriber } from '../helpers/mqtt.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

const CREDS = { username: 'configdb', password: 'configdb-secret' };
const WATCHER = { username: 'watcher', password: 'watcher-secret' };
const USERS = new Map([CREDS, WATCHER].map((c) => [c.username, c.password]));
const GROUP = 'Test-Service-Core';
const NODE = 'Config_DB';
const INSTANCE = '36861e8d-9152-40c4-8f08-f51c2d7e3c25';
const T = (type: string): string => `spBv1.0/${GROUP}/${type}/${NODE}`;

const APP_A = 'bdb13634-0b3d-4e38-a065-9d88c12ee78d';
const APP_B = '8e32801b-f35a-4cbf-a5c3-2af64d3debd7';

function metric(m: Received, name: string): SparkplugMetric | undefined {
  return m.payload?.metrics?.find((x) => x.name === name);
}

function rebirthCommand(value: boolean): Buffer {
  return Buffer.from(
    encodePayload({
      timestamp: Date.now(),
      metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value, timestamp: Date.now() }],
    }),
  );
}

const isType =
  (type: string) =>
  (m: Received): boolean =>
    m.topic === T(type);

describe('ConfigDB Sparkplug node', () => {
  let broker: EmbeddedBroker;
  let sub: Subscriber;
  let changes: ChangeEmitter;
  const nodes: ConfigDbNode[] = [];

  const start = async (extra: Partial<ConfigDbNodeOptions> = {}): Promise<ConfigDbNode> => {
    const node = await startConfigDbNode({
      mqttUrl: broker.url,
      ...CREDS,
      group: GROUP,
      node: NODE,
      instanceUuid: INSTANCE,
      onChange: changes.onChange,
      log: silentLogger,
      deviceInfo: { manufacturer: 'AMRC', model: 'Test ConfigDB', serial: 'abc123' },
      reconnectPeriodMs: 100,
      ...extra,
    });
    nodes.push(node);
    return node;
  };

  /** Index of the first message after those already received. */
  const mark = (): number => sub.messages.length;
  const after =
    (from: number, pred: (m: Received) => boolean) =>
    (m: Received, i: number): boolean =>
      i >= from && pred(m);

  beforeEach(async () => {
    broker = await startBroker({
      host: '127.0.0.1',
      port: 0,
      authenticate: (u, p) => USERS.get(u) === p,
      log: silentLogger,
    });
    sub = await subscribe(broker.url, WATCHER, `spBv1.0/${GROUP}/+/${NODE}`);
    changes = new ChangeEmitter();
  });

  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.stop();
    await sub.close();
    await broker.close();
  });

  it('publishes NBIRTH first with seq 0 and the Factory+ service metrics', async () => {
    await start();
    const birth = await sub.waitFor(isType('NBIRTH'));
    expect(sub.messages[0]).to.equal(birth);
    const p = birth.payload!;
    expect(p.seq).to.equal(0);
    expect(p.uuid).to.equal(FACTORYPLUS_PAYLOAD_UUID);
    expect(p.timestamp).to.be.a('number').and.be.closeTo(Date.now(), 10_000);
    expect(p.metrics!.map(({ name, type, value }) => ({ name, type, value }))).to.deep.equal([
      { name: 'bdSeq', type: 'UInt64', value: 0n },
      { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
      { name: 'Device_Information/Manufacturer', type: 'String', value: 'AMRC' },
      { name: 'Device_Information/Model', type: 'String', value: 'Test ConfigDB' },
      { name: 'Device_Information/Serial', type: 'String', value: 'abc123' },
      { name: 'Schema_UUID', type: 'UUID', value: SERVICE_SCHEMA_UUID },
      { name: 'Instance_UUID', type: 'UUID', value: INSTANCE },
      { name: 'Service_UUID', type: 'UUID', value: CONFIGDB_SERVICE_UUID },
      { name: 'Last_Changed/Application', type: 'UUID', value: '' },
      { name: 'Last_Changed/Device', type: 'UUID', value: '' },
      { name: 'Last_Changed/Schema', type: 'UUID', value: '' },
    ]);
    expect(SERVICE_SCHEMA_UUID).to.equal('05688a03-730e-4cda-9932-172e2c62e45c');
    expect(CONFIGDB_SERVICE_UUID).to.equal('af15f175-78a0-4e05-97c0-2a0bb82b9f3b');
    for (const m of p.metrics!) expect(m.timestamp, m.name).to.equal(p.timestamp);

    // A consumer using the independent decoder reads the same certificate.
    const theirs = spPayload.get('spBv1.0')!.decodePayload(birth.raw);
    expect(theirs.uuid).to.equal(FACTORYPLUS_PAYLOAD_UUID);
    expect(theirs.metrics!.find((m) => m.name === 'Service_UUID')).to.include({
      type: 'UUID',
      value: CONFIGDB_SERVICE_UUID,
    });
  });

  it('publishes one NDATA Last_Changed/Application per change, seq continuing from the birth', async () => {
    await start();
    await sub.waitFor(isType('NBIRTH'));
    changes.change(APP_A);
    changes.change(APP_B);
    changes.change(APP_A);
    const data = await sub.waitForCount(isType('NDATA'), 3);
    expect(data.map((m) => m.payload!.seq)).to.deep.equal([1, 2, 3]);
    expect(data.map((m) => m.payload!.metrics!.map(({ name, type, value }) => ({ name, type, value })))).to.deep.equal(
      [APP_A, APP_B, APP_A].map((app) => [{ name: 'Last_Changed/Application', type: 'UUID', value: app }]),
    );
    for (const m of data) {
      expect(m.payload!.uuid).to.equal(undefined);
      expect(m.payload!.timestamp).to.be.a('number');
    }
  });

  it('wraps seq from 255 to 0', async () => {
    await start();
    await sub.waitFor(isType('NBIRTH'));
    for (let i = 0; i < 300; i++) changes.change(APP_A);
    const data = await sub.waitForCount(isType('NDATA'), 300, 10_000);
    const seqs = data.map((m) => m.payload!.seq);
    expect(seqs).to.deep.equal(Array.from({ length: 300 }, (_, i) => (i + 1) % 256));
  });

  it('rebirths on NCMD Node Control/Rebirth = true, restarting seq with the same bdSeq', async () => {
    await start();
    const first = await sub.waitFor(isType('NBIRTH'));
    changes.change(APP_A);
    await sub.waitFor(isType('NDATA'));

    const cmd = await connectClient(broker.url, WATCHER);
    try {
      const from = mark();
      await cmd.publishAsync(T('NCMD'), rebirthCommand(true), { qos: 1 });
      const rebirth = await sub.waitFor(after(from, isType('NBIRTH')));
      expect(rebirth.payload!.seq).to.equal(0);
      expect(rebirth.payload!.uuid).to.equal(FACTORYPLUS_PAYLOAD_UUID);
      expect(metric(rebirth, 'bdSeq')!.value).to.equal(metric(first, 'bdSeq')!.value);

      changes.change(APP_B);
      const next = await sub.waitFor(after(from, isType('NDATA')));
      expect(next.payload!.seq).to.equal(1);

      // Rebirth = false is not a request. NCMDs are handled in order, so once
      // the NBIRTH answering the following valid request is out, an NBIRTH
      // for the false one would already have been published before it.
      const from2 = mark();
      await cmd.publishAsync(T('NCMD'), rebirthCommand(false), { qos: 1 });
      await cmd.publishAsync(T('NCMD'), rebirthCommand(true), { qos: 1 });
      await sub.waitFor(after(from2, isType('NBIRTH')));
      changes.change(APP_A);
      const data = await sub.waitFor(after(from2, isType('NDATA')));
      expect(data.payload!.seq).to.equal(1);
      expect(sub.messages.slice(from2).filter(isType('NBIRTH'))).to.have.length(1);
    } finally {
      await cmd.endAsync();
    }
  });

  it('ignores malformed NCMDs and keeps working', async () => {
    const lines: { level: number; msg: string; err?: string }[] = [];
    const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    await start({ log });
    await sub.waitFor(isType('NBIRTH'));
    const cmd = await connectClient(broker.url, WATCHER);
    try {
      const from = mark();
      await cmd.publishAsync(T('NCMD'), Buffer.from('definitely not protobuf'), { qos: 1 });
      await cmd.publishAsync(T('NCMD'), randomBytes(64), { qos: 1 });
      await cmd.publishAsync(T('NCMD'), Buffer.from([0x12, 0x05, 0x0a, 0x01]), { qos: 1 });
      await cmd.publishAsync(T('NCMD'), Buffer.alloc(0), { qos: 1 });
      // A rebirth request of the wrong type is ignored too.
      await cmd.publishAsync(
        T('NCMD'),
        Buffer.from(
          encodePayload({
            metrics: [{ name: 'Node Control/Rebirth', type: 'String', value: 'true' }],
          }),
        ),
        { qos: 1 },
      );
      // The node still answers commands: handled in order, after all of the above.
      await cmd.publishAsync(T('NCMD'), rebirthCommand(true), { qos: 1 });
      const rebirth = await sub.waitFor(after(from, isType('NBIRTH')));
      expect(rebirth.payload!.seq).to.equal(0);

      changes.change(APP_B);
      const data = await sub.waitFor(isType('NDATA'));
      expect(data.payload!.seq).to.equal(1);
      expect(data.payload!.metrics![0].value).to.equal(APP_B);
      expect(sub.messages.slice(from).filter(isType('NBIRTH'))).to.have.length(1);
      expect(sub.messages.filter(isType('NDEATH'))).to.have.length(0);

      const malformed = lines.filter((l) => l.msg === 'Ignoring malformed NCMD');
      expect(malformed.length).to.be.at.least(2);
      expect(malformed[0].err).to.match(/Invalid Sparkplug B payload/);
      expect(lines.some((l) => /not Boolean true/.test(l.msg))).to.equal(true);
    } finally {
      await cmd.endAsync();
    }
  });

  it('publishes NDEATH with the birth bdSeq on stop and stops listening for changes', async () => {
    const node = await start();
    const birth = await sub.waitFor(isType('NBIRTH'));
    expect(changes.listenerCount('change')).to.equal(1);

    await node.stop();
    const death = await sub.waitFor(isType('NDEATH'));
    expect(death.payload!.metrics!.map(({ name, type, value }) => ({ name, type, value }))).to.deep.equal([
      { name: 'bdSeq', type: 'UInt64', value: metric(birth, 'bdSeq')!.value },
    ]);
    expect(death.payload!.seq).to.equal(undefined);
    expect(changes.listenerCount('change')).to.equal(0);

    changes.change(APP_A);
    await new Promise((r) => setTimeout(r, 100));
    expect(sub.messages.filter(isType('NDATA'))).to.have.length(0);
    await node.stop();
  });

  it('registers a will whose bdSeq matches the NBIRTH, and rebirths with the next bdSeq after reconnecting', async () => {
    const relay = await startTcpProxy(`mqtt://127.0.0.1:${broker.port}`);
    try {
      await start({ mqttUrl: `mqtt://127.0.0.1:${relay.port}` });
      const birth0 = await sub.waitFor(isType('NBIRTH'));
      expect(metric(birth0, 'bdSeq')!.value).to.equal(0n);

      const from = mark();
      relay.cutAll();
      // The broker publishes the will on the unclean disconnect.
      const will = await sub.waitFor(after(from, isType('NDEATH')));
      expect(metric(will, 'bdSeq')).to.deep.include({ type: 'UInt64', value: 0n });

      const birth1 = await sub.waitFor(after(from, isType('NBIRTH')));
      expect(birth1.payload!.seq).to.equal(0);
      expect(metric(birth1, 'bdSeq')!.value).to.equal(1n);

      const from2 = mark();
      relay.cutAll();
      expect(metric(await sub.waitFor(after(from2, isType('NDEATH'))), 'bdSeq')!.value).to.equal(1n);
      expect(metric(await sub.waitFor(after(from2, isType('NBIRTH'))), 'bdSeq')!.value).to.equal(2n);

      // Changes after the reconnect continue from the new birth.
      changes.change(APP_A);
      expect((await sub.waitFor(after(from2, isType('NDATA')))).payload!.seq).to.equal(1);
    } finally {
      for (const n of nodes.splice(0)) await n.stop();
      await relay.close();
    }
  });

  it('rebirths after the broker restarts on the same port', async () => {
    await start();
    await sub.waitFor(isType('NBIRTH'));
    const port = broker.port;
    await sub.close();
    await broker.close();

    // The node is refused until the watcher has subscribed, so its NBIRTH cannot be missed.
    let watching = false;
    broker = await startBroker({
      host: '127.0.0.1',
      port,
      authenticate: (u, p) => USERS.get(u) === p && (u === WATCHER.username || watching),
      log: silentLogger,
    });
    sub = await subscribe(broker.url, WATCHER, `spBv1.0/${GROUP}/+/${NODE}`);
    watching = true;
    const birth = await sub.waitFor(isType('NBIRTH'), 10_000);
    expect(birth.payload!.seq).to.equal(0);
    expect((metric(birth, 'bdSeq')!.value as bigint) > 0n, 'bdSeq increased').to.equal(true);
    changes.change(APP_B);
    expect((await sub.waitFor(isType('NDATA'))).payload!.seq).to.equal(1);
  });

  it('fails to start when the broker refuses its credentials', async () => {
    let error: Error | undefined;
    try {
      await start({ password: 'wrong' });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/refused.*not authorized/i);
    expect(changes.listenerCount('change')).to.equal(0);
  });
});
