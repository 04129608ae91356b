import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { MqttClient } from 'mqtt';
import { startBroker, type EmbeddedBroker } from '../../src/embedded/broker/index.js';
import { startConfigDbNode, type ConfigDbNode } from '../../src/embedded/notify/configdb-node.js';
import { LAST_CHANGED_APPLICATION } from '../../src/factoryplus/configdb.js';
import { encodePayload, type SparkplugPayload } from '../../src/lib/sparkplug/index.js';
import { silentLogger } from '../../src/lib/log.js';
import { ChangeFeed, type ChangeFeedOptions } from '../../src/watch/change-feed.js';
import { type FeedState, type ResyncReason } from '../../src/watch/feed.js';
import { ChangeEmitter, connectClient, subscribe, type Subscriber } from '../helpers/mqtt.js';

/** CI sets this to run against mosquitto (anonymous access); otherwise an embedded broker is started. */
const EXTERNAL_MQTT_URL = process.env.TEST_MQTT_URL || undefined;

const CONFIGDB = { username: 'configdb', password: 'configdb-secret' };
const WATCHER = { username: 'watcher', password: 'watcher-secret' };
const USERS = new Map([CONFIGDB, WATCHER].map((c) => [c.username, c.password]));
const NODE = 'Config_DB';
const INSTANCE = '36861e8d-9152-40c4-8f08-f51c2d7e3c25';

const APP_A = 'bdb13634-0b3d-4e38-a065-9d88c12ee78d';
const APP_B = 'f6c67e6f-a0b6-4be3-8b1c-2f1e5c6d7a80';
const APP_OTHER = '8e32801b-f35a-4cbf-a5c3-2af64d3debd7';

type Event =
  | { kind: 'changed'; value: string; at: number }
  | { kind: 'resync'; value: ResyncReason; at: number }
  | { kind: 'state'; value: FeedState; at: number };

/** Records everything a feed emits and lets a test wait for it. */
class Recorder {
  readonly events: Event[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(feed: ChangeFeed) {
    feed.on('changed', (value) => this.push({ kind: 'changed', value, at: Date.now() }));
    feed.on('resync', (value) => this.push({ kind: 'resync', value, at: Date.now() }));
    feed.on('state', (value) => this.push({ kind: 'state', value, at: Date.now() }));
  }

  private push(e: Event): void {
    this.events.push(e);
    for (const w of [...this.waiters]) w();
  }

  of(kind: Event['kind']): string[] {
    return this.events.filter((e) => e.kind === kind).map((e) => e.value);
  }

  get changed(): string[] {
    return this.of('changed');
  }

  get resyncs(): string[] {
    return this.of('resync');
  }

  get states(): string[] {
    return this.of('state');
  }

  /** Resolves once `count` events of this kind and value have been recorded (in total). */
  waitFor(kind: Event['kind'], value: string, count = 1, timeoutMs = 5000): Promise<Event[]> {
    const matching = (): Event[] => this.events.filter((e) => e.kind === kind && e.value === value);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = matching();
        if (found.length < count) return;
        cleanup();
        resolve(found);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `Expected ${count} x ${kind}(${value}) within ${timeoutMs} ms; got ${JSON.stringify(this.events.map((e) => `${e.kind}(${e.value})`))}`,
          ),
        );
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A loopback port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function startOwnBroker(port = 0): Promise<EmbeddedBroker> {
  return startBroker({ host: '127.0.0.1', port, authenticate: (u, p) => USERS.get(u) === p, log: silentLogger });
}

function sparkplug(p: SparkplugPayload): Buffer {
  return Buffer.from(encodePayload({ timestamp: Date.now(), ...p }));
}

describe('Config Store change feed', function () {
  this.timeout(20000);

  let broker: EmbeddedBroker | undefined;
  let url: string;
  let group: string;
  let changes: ChangeEmitter;
  let node: ConfigDbNode | undefined;
  const feeds: ChangeFeed[] = [];
  const nodes: ConfigDbNode[] = [];
  const clients: MqttClient[] = [];
  const subscribers: Subscriber[] = [];
  const brokers: EmbeddedBroker[] = [];

  const T = (type: string, n = NODE): string => `spBv1.0/${group}/${type}/${n}`;

  const startNode = async (mqttUrl = url): Promise<ConfigDbNode> => {
    const n = await startConfigDbNode({
      mqttUrl,
      ...CONFIGDB,
      group,
      node: NODE,
      instanceUuid: INSTANCE,
      onChange: changes.onChange,
      log: silentLogger,
      reconnectPeriodMs: 100,
    });
    nodes.push(n);
    return n;
  };

  const makeFeed = (extra: Partial<ChangeFeedOptions> = {}): { feed: ChangeFeed; rec: Recorder } => {
    const feed = new ChangeFeed({
      mqttUrl: url,
      ...WATCHER,
      group,
      node: NODE,
      apps: [APP_A, APP_B],
      resyncIntervalMs: 60000,
      reconnectPeriodMs: 100,
      connectTimeoutMs: 2000,
      log: silentLogger,
      ...extra,
    });
    feeds.push(feed);
    return { feed, rec: new Recorder(feed) };
  };

  const publisher = async (mqttUrl = url): Promise<MqttClient> => {
    const c = await connectClient(mqttUrl, WATCHER);
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    group = `Test-Watch-${randomBytes(4).toString('hex')}`;
    changes = new ChangeEmitter();
    if (EXTERNAL_MQTT_URL) {
      broker = undefined;
      url = EXTERNAL_MQTT_URL;
    } else {
      broker = await startOwnBroker();
      brokers.push(broker);
      url = broker.url;
    }
    node = await startNode();
  });

  afterEach(async () => {
    for (const f of feeds.splice(0)) await f.stop();
    for (const s of subscribers.splice(0)) await s.close();
    for (const c of clients.splice(0)) await c.endAsync(true);
    for (const n of nodes.splice(0)) await n.stop();
    for (const b of brokers.splice(0)) await b.close();
    node = undefined;
  });

  it('emits resync(start) once connected and reports the connected state', async () => {
    const { feed, rec } = makeFeed();
    expect(feed.connected).to.equal(false);
    await feed.start();
    expect(rec.resyncs).to.deep.equal(['start']);
    expect(rec.states).to.deep.equal(['connected']);
    expect(feed.connected).to.equal(true);
    // The state event comes before the resync, so a resync handler sees a healthy feed.
    expect(rec.events.map((e) => e.kind)).to.deep.equal(['state', 'resync']);
  });

  it('emits resync(start) at once when it cannot connect, and resync(reconnect) when the broker appears', async () => {
    const port = await freePort();
    const { feed, rec } = makeFeed({ mqttUrl: `mqtt://127.0.0.1:${port}` });
    await feed.start();
    expect(rec.resyncs).to.deep.equal(['start']);
    expect(feed.connected).to.equal(false);
    expect(rec.states).to.deep.equal([]);

    brokers.push(await startOwnBroker(port));
    await rec.waitFor('resync', 'reconnect');
    expect(rec.states).to.deep.equal(['connected']);
    expect(feed.connected).to.equal(true);
    expect(rec.resyncs).to.deep.equal(['start', 'reconnect']);
  });

  it('emits changed(app) for watched applications and nothing for others', async () => {
    const { feed, rec } = makeFeed();
    await feed.start();
    changes.change(APP_OTHER);
    changes.change(APP_A);
    changes.change(APP_OTHER);
    changes.change(APP_B);
    await rec.waitFor('changed', APP_B);
    // Messages from one publisher arrive in order, so APP_OTHER has been seen by now.
    expect(rec.changed).to.deep.equal([APP_A, APP_B]);
    expect(rec.resyncs).to.deep.equal(['start']);
  });

  it('coalesces a burst of notifications for one application into one changed', async () => {
    const { feed, rec } = makeFeed({ debounceMs: 100 });
    await feed.start();
    for (let i = 0; i < 10; i++) changes.change(APP_A);
    changes.change(APP_B);
    await rec.waitFor('changed', APP_B);
    expect(rec.changed).to.deep.equal([APP_A, APP_B]);

    // A notification after the window closed is reported again.
    changes.change(APP_A);
    await rec.waitFor('changed', APP_A, 2);
    expect(rec.changed).to.deep.equal([APP_A, APP_B, APP_A]);
    // Consecutive NDATA seq numbers: no gap was seen.
    expect(rec.resyncs).to.deep.equal(['start']);
  });

  it('emits resync(birth) on a Config Store rebirth and on its restart', async () => {
    const { feed, rec } = makeFeed();
    await feed.start();

    const cmd = await publisher();
    await cmd.publishAsync(
      T('NCMD'),
      sparkplug({
        metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }],
      }),
      { qos: 1 },
    );
    await rec.waitFor('resync', 'birth');

    await node!.stop();
    node = await startNode();
    await rec.waitFor('resync', 'birth', 2);

    // Sequence tracking restarts with each birth: the next NDATA is not a gap.
    changes.change(APP_A);
    await rec.waitFor('changed', APP_A);
    expect(rec.resyncs).to.deep.equal(['start', 'birth', 'birth']);
    expect(feed.connected).to.equal(true);
  });

  it('reports disconnected then connected and emits resync(reconnect) when its broker restarts', async () => {
    // Always an embedded broker, whatever TEST_MQTT_URL says: this test restarts it.
    const own = await startOwnBroker();
    brokers.push(own);
    const ownNode = await startNode(own.url);
    const { feed, rec } = makeFeed({ mqttUrl: own.url });
    await feed.start();
    expect(rec.states).to.deep.equal(['connected']);

    await own.close();
    await rec.waitFor('state', 'disconnected');
    expect(feed.connected).to.equal(false);

    brokers.push(await startOwnBroker(own.port));
    await rec.waitFor('resync', 'reconnect');
    expect(rec.states).to.deep.equal(['connected', 'disconnected', 'connected']);
    expect(feed.connected).to.equal(true);
    expect(rec.resyncs.slice(0, 2)).to.deep.equal(['start', 'reconnect']);

    // Subscriptions were renewed on the new session.
    await rec.waitFor('resync', 'birth');
    changes.change(APP_A);
    await rec.waitFor('changed', APP_A);
    expect(rec.changed).to.deep.equal([APP_A]);
    await ownNode.stop();
  });

  it('emits resync(timer) every resyncIntervalMs', async () => {
    const { feed, rec } = makeFeed({ resyncIntervalMs: 150 });
    const started = Date.now();
    await feed.start();
    const timers = await rec.waitFor('resync', 'timer', 2, 3000);
    expect(timers[0].at - started).to.be.at.least(140);
    expect(timers[1].at - timers[0].at).to.be.at.least(140);
    expect(rec.resyncs.slice(0, 3)).to.deep.equal(['start', 'timer', 'timer']);
  });

  it('ignores malformed payloads', async () => {
    const { feed, rec } = makeFeed();
    await feed.start();
    changes.change(APP_A);
    await rec.waitFor('changed', APP_A);

    const junk = await publisher();
    const garbage = Buffer.from('not a sparkplug payload');
    for (const type of ['NBIRTH', 'NDATA', 'NDEATH']) await junk.publishAsync(T(type), garbage, { qos: 1 });
    // Well-formed Sparkplug, but the metric is not a UUID string (and there is no seq to check).
    await junk.publishAsync(
      T('NDATA'),
      sparkplug({
        metrics: [{ name: LAST_CHANGED_APPLICATION, type: 'Boolean', value: true }],
      }),
      { qos: 1 },
    );

    // None of that was a birth, a gap or a change.
    changes.change(APP_B);
    await rec.waitFor('changed', APP_B);
    expect(rec.changed).to.deep.equal([APP_A, APP_B]);
    expect(rec.resyncs).to.deep.equal(['start']);
    expect(feed.connected).to.equal(true);
  });

  it('learns aliases from NBIRTH and emits resync(gap) on a missed NDATA seq', async () => {
    const manual = 'Manual_Node';
    const { feed, rec } = makeFeed({ node: manual });
    await feed.start();
    const pub = await publisher();
    const send = (type: string, p: SparkplugPayload): Promise<unknown> =>
      pub.publishAsync(T(type, manual), sparkplug(p), { qos: 1 });
    const lastChanged = (seq: number, app: string): SparkplugPayload => ({
      seq,
      metrics: [{ alias: 7, type: 'UUID', value: app }],
    });

    await send('NBIRTH', {
      seq: 0,
      metrics: [
        { name: 'bdSeq', type: 'UInt64', value: 3 },
        { name: LAST_CHANGED_APPLICATION, alias: 7, type: 'UUID', value: '' },
        { name: 'Last_Changed/Device', alias: 8, type: 'UUID', value: '' },
      ],
    });
    await rec.waitFor('resync', 'birth');

    await send('NDATA', lastChanged(1, APP_A));
    await rec.waitFor('changed', APP_A);
    // Alias 8 is another metric: not an application change.
    await send('NDATA', { seq: 2, metrics: [{ alias: 8, type: 'UUID', value: APP_B }] });
    // seq 3 is missing.
    await send('NDATA', lastChanged(4, APP_B));
    await rec.waitFor('changed', APP_B);
    expect(rec.resyncs).to.deep.equal(['start', 'birth', 'gap']);
    expect(rec.changed).to.deep.equal([APP_A, APP_B]);

    // Across the 255 -> 0 wrap there is no gap.
    for (let seq = 5; seq <= 255; seq++) await send('NDATA', lastChanged(seq, APP_OTHER));
    await send('NDATA', lastChanged(0, APP_OTHER));
    await send('NDATA', lastChanged(1, APP_A));
    await rec.waitFor('changed', APP_A, 2);
    expect(rec.resyncs).to.deep.equal(['start', 'birth', 'gap']);

    // After an NDEATH of the current session, aliased NDATA cannot be attributed until the next birth.
    await send('NDEATH', { metrics: [{ name: 'bdSeq', type: 'UInt64', value: 3 }] });
    await send('NDATA', lastChanged(9, APP_A));
    await rec.waitFor('resync', 'gap', 2);
    expect(rec.changed).to.deep.equal([APP_A, APP_B, APP_A]);
  });

  it('stops emitting after stop()', async () => {
    const { feed, rec } = makeFeed({ debounceMs: 0 });
    await feed.start();
    const watcher = await subscribe(url, WATCHER, T('NDATA'));
    subscribers.push(watcher);

    await feed.stop();
    expect(feed.connected).to.equal(false);
    expect(rec.states).to.deep.equal(['connected', 'disconnected']);

    changes.change(APP_A);
    await watcher.waitFor((m) => m.topic === T('NDATA'));
    await sleep(100);
    expect(rec.changed).to.deep.equal([]);
    expect(rec.resyncs).to.deep.equal(['start']);
    expect(rec.states).to.deep.equal(['connected', 'disconnected']);
  });
});
