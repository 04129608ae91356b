import net from 'node:net';
import { Aedes } from 'aedes';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/index.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { createApi } from '../../src/http/index.js';
import { listen, type Listening } from '../../src/lib/listen.js';
import { silentLogger } from '../../src/lib/log.js';
import type { Manager } from '../../src/manager.js';
import { ChangeFeed } from '../../src/watch/change-feed.js';
import { LiveFeed } from '../../src/watch/live-feed.js';
import { NotifyFeed } from '../../src/watch/notify-feed.js';
import { startTestManager } from '../helpers/api.js';
import { adminAuth, startTestCore, tempDir, type TestCore } from '../helpers/core.js';
import { serviceToken } from '../helpers/notify-v2.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const u = loadConfig({ env: {}, overrides: { profile: 'seed' } }).uuids;

async function until<T>(fn: () => T | Promise<T>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A real MQTT broker (aedes) that, like an installation whose MQTT ACLs do
 * not let an account read the Config Store's node, refuses that account's
 * subscriptions to Config_DB topics (SUBACK 0x80); everything else is allowed.
 */
async function refusingBroker(
  refusedUser: () => string,
): Promise<{ url: string; refusals: number; close(): Promise<void> }> {
  const users = new WeakMap<object, string>();
  const state = { refusals: 0 };
  const aedes = await Aedes.createBroker({
    authenticate: (client, username, _password, done) => {
      users.set(client, username ?? '');
      done(null, true);
    },
    authorizeSubscribe: (client, sub, done) => {
      if (client && refusedUser() !== '' && users.get(client) === refusedUser() && sub.topic.includes('/Config_DB')) {
        state.refusals++;
        done(null, null);
      } else done(null, sub);
    },
  });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    aedes.handle(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    get refusals() {
      return state.refusals;
    },
    async close() {
      await new Promise<void>((r) => aedes.close(() => r()));
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe("change feed over the Config Store's notify/v2", function () {
  this.timeout(30_000);
  let t: TestCore;
  let proxy: TcpProxy;
  const admin = () => t.core.credentials.admin;
  const put = async (app: string, obj: string, body: unknown) => {
    const r = await fetch(`${t.core.endpoints.configdb}/v2/app/${app}/object/${obj}`, {
      method: 'PUT',
      headers: { Authorization: adminAuth(t.core), 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(r.status).to.be.oneOf([201, 204]);
  };
  const object = () =>
    t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;

  before(async () => {
    t = await startTestCore();
    proxy = await startTcpProxy(t.core.endpoints.configdb);
  });
  after(async () => {
    await proxy?.close();
    await t?.stop();
  });

  const notifyFeed = (base: string, extra: Partial<ConstructorParameters<typeof NotifyFeed>[0]> = {}) =>
    new NotifyFeed({
      baseUrl: async () => base,
      token: (b) => serviceToken(b, admin().username, admin().password),
      apps: [u.app.clusterConfig, u.app.edgeStatus],
      resyncIntervalMs: 0,
      debounceMs: 0,
      backoffBaseMs: 50,
      backoffMaxMs: 200,
      log: silentLogger,
      ...extra,
    });

  it('reports changes of the watched applications only, and resyncs after a lost socket', async () => {
    const feed = notifyFeed(proxy.url);
    const events: string[] = [];
    feed.on('changed', (app) => events.push(`changed ${app}`));
    feed.on('resync', (r) => events.push(`resync ${r}`));
    feed.on('state', (s) => events.push(`state ${s}`));
    try {
      await feed.start();
      expect(feed.connected).to.equal(true);
      expect(events).to.deep.equal(['state connected', 'resync start']);
      await put(u.app.info, object(), { name: 'not watched' });
      await put(u.app.clusterConfig, object(), { name: 'Feed_1', namespace: 'edge' });
      await until(() => events.includes(`changed ${u.app.clusterConfig}`), 5000, 'changed');
      expect(events.filter((e) => e.startsWith('changed'))).to.deep.equal([`changed ${u.app.clusterConfig}`]);

      proxy.cutAll();
      await until(() => events.includes('resync reconnect'), 5000, 'resync after reconnect');
      expect(events.slice(-3)).to.deep.equal(['state disconnected', 'state connected', 'resync reconnect']);
      await put(u.app.edgeStatus, object(), { cert: 'x' });
      await until(() => events.includes(`changed ${u.app.edgeStatus}`), 5000, 'changed after reconnect');
    } finally {
      await feed.stop();
    }
  });

  it('does not hold start-up when the Config Store cannot be reached, and connects once it can', async () => {
    proxy.set('refuse');
    const feed = notifyFeed(proxy.url);
    const resyncs: string[] = [];
    feed.on('resync', (r) => resyncs.push(r));
    try {
      const started = Date.now();
      await feed.start();
      expect(Date.now() - started).to.be.below(3000);
      expect(resyncs).to.deep.equal(['start']);
      expect(feed.connected).to.equal(false);
      proxy.set('pass');
      await until(() => feed.connected, 5000, 'connected');
      await until(() => resyncs.includes('reconnect'), 2000, 'resync reconnect');
    } finally {
      proxy.set('pass');
      await feed.stop();
    }
  });

  it('auto: with the broker unreachable the notify/v2 source is live', async () => {
    const port = await closedPort();
    const feed = new LiveFeed({
      mode: 'auto',
      log: silentLogger,
      mqtt: () =>
        new ChangeFeed({
          mqttUrl: `mqtt://127.0.0.1:${port}`,
          group: 'AMRC-Service-Core',
          node: 'Config_DB',
          apps: [u.app.clusterConfig],
          resyncIntervalMs: 0,
          log: silentLogger,
        }),
      notify: () => notifyFeed(t.core.endpoints.configdb),
    });
    const events: string[] = [];
    feed.on('changed', (app) => events.push(`changed ${app}`));
    feed.on('resync', (r) => events.push(`resync ${r}`));
    try {
      await feed.start();
      expect(feed.live).to.equal('notify');
      expect(feed.connected).to.equal(true);
      expect(events).to.deep.equal(['resync start']);
      await put(u.app.clusterConfig, object(), { name: 'Feed_2', namespace: 'edge' });
      await until(() => events.includes(`changed ${u.app.clusterConfig}`), 5000, 'changed');
    } finally {
      await feed.stop();
    }
  });
});

describe('the Cluster Manager with its MQTT subscription refused', function () {
  this.timeout(60_000);
  let t: TestCore;
  let broker: Awaited<ReturnType<typeof refusingBroker>>;
  let refusing = true;
  const started: Array<{ m: Manager; server: Listening }> = [];

  before(async () => {
    broker = await refusingBroker(() => (refusing ? (t?.core.credentials.clusterManager.username ?? '') : ''));
    t = await startTestCore({ mqttUrl: broker.url });
  });
  after(async () => {
    for (const s of started) {
      await s.server.close();
      await s.m.stop();
    }
    await t?.stop();
    await broker?.close();
  });

  const start = async (changeFeed: string) => {
    const config = loadConfig({
      env: { CHANGE_FEED: changeFeed },
      overrides: { dataDir: tempDir('cm-feed-'), reconcile: { resyncSeconds: 600 } },
    });
    const begun = Date.now();
    const m = await startTestManager(t, config);
    const startMs = Date.now() - begun;
    const { app } = createApi(m, silentLogger, { externalUrl: () => 'http://127.0.0.1' });
    const server = await listen(app.callback(), '127.0.0.1', 0);
    started.push({ m, server });
    return { m, url: server.url, startMs };
  };

  it('auto: falls back to notify/v2, says so in /health and metrics, and commissions a new entry within seconds', async () => {
    const { m, url, startMs } = await start('auto');
    expect(startMs).to.be.below(10_000);
    expect(broker.refusals).to.be.greaterThan(0);
    await until(() => m.controller.ready, 10_000, 'first resync');
    const health = (await (await fetch(`${url}/health`)).json()) as {
      changeFeed: unknown;
      mqtt: { changeFeed: boolean };
    };
    expect(health.changeFeed).to.deep.equal({ mode: 'auto', live: 'notify', connected: true });
    expect(health.mqtt.changeFeed).to.equal(false);
    const metrics = await (await fetch(`${url}/metrics`, { headers: { Authorization: adminAuth(t.core) } })).text();
    expect(metrics).to.match(/^cluster_manager_change_feed_live\{source="notify"\} 1$/m);

    const uuid = t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
    const created = Date.now();
    const r = await fetch(`${t.core.endpoints.configdb}/v2/app/${u.app.clusterConfig}/object/${uuid}`, {
      method: 'PUT',
      headers: { Authorization: adminAuth(t.core), 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Refused_1', namespace: 'fplus-edge' }),
    });
    expect(r.status).to.equal(201);
    // resyncSeconds is 600: only a notification brings this entry in time.
    await until(() => m.status.get(uuid)?.ready === true, 10_000, 'cluster commissioned');
    expect(Date.now() - created).to.be.below(10_000);
  });

  it('mqtt: a refused subscription does not hold start-up; /health shows the feed down', async () => {
    const { m, url, startMs } = await start('mqtt');
    expect(startMs).to.be.below(10_000);
    await until(() => m.controller.ready, 10_000, 'first resync');
    const health = (await (await fetch(`${url}/health`)).json()) as { changeFeed: unknown };
    expect(health.changeFeed).to.deep.equal({ mode: 'mqtt', live: 'mqtt', connected: false });
  });

  it('notify: uses notify/v2 only, whatever MQTT allows', async () => {
    const { m, url } = await start('notify');
    await until(() => m.controller.ready, 10_000, 'first resync');
    const health = (await (await fetch(`${url}/health`)).json()) as { changeFeed: unknown };
    expect(health.changeFeed).to.deep.equal({ mode: 'notify', live: 'notify', connected: true });
  });

  it('auto: goes back to MQTT once the subscription is granted, with a resync', async () => {
    const creds = t.core.credentials.clusterManager;
    const feed = new LiveFeed({
      mode: 'auto',
      log: silentLogger,
      mqtt: () =>
        new ChangeFeed({
          mqttUrl: broker.url,
          username: creds.username,
          password: creds.password,
          group: 'AMRC-Service-Core',
          node: 'Config_DB',
          apps: [u.app.clusterConfig],
          resyncIntervalMs: 0,
          resubscribeMs: 300,
          debounceMs: 0,
          log: silentLogger,
        }),
      notify: () =>
        new NotifyFeed({
          baseUrl: async () => t.core.endpoints.configdb,
          token: (b) => serviceToken(b, creds.username, creds.password),
          apps: [u.app.clusterConfig],
          resyncIntervalMs: 0,
          log: silentLogger,
        }),
    });
    const events: string[] = [];
    feed.on('source', (s) => events.push(`source ${s}`));
    feed.on('resync', (r) => events.push(`resync ${r}`));
    try {
      await feed.start();
      expect(feed.live).to.equal('notify');
      refusing = false;
      await until(() => feed.live === 'mqtt', 5000, 'back on MQTT');
      expect(feed.connected).to.equal(true);
      await until(() => events.includes('resync reconnect'), 2000, 'resync after the switch');
      expect(events.filter((e) => e.startsWith('source'))).to.deep.equal(['source notify', 'source mqtt']);
      expect(events.filter((e) => e.startsWith('resync'))[0]).to.equal('resync start');
    } finally {
      refusing = true;
      await feed.stop();
    }
  });

  it('CHANGE_FEED accepts only mqtt, notify or auto, and says so', () => {
    expect(() => loadConfig({ env: { CHANGE_FEED: 'sparkplug' } })).to.throw(
      /changeFeed.*"mqtt", "notify", "auto".*CHANGE_FEED/,
    );
  });
});
