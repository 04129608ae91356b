import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../src/config/index.js';
import type { Config } from '../../src/config/types.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { createApi } from '../../src/http/index.js';
import type { ApiDeps } from '../../src/http/deps.js';
import { listen } from '../../src/lib/listen.js';
import { silentLogger, type Logger } from '../../src/lib/log.js';
import { startManager, type Manager } from '../../src/manager.js';
import { adminAuth, startTestCore, tempDir, type TestCore } from './core.js';
import { waitFor } from './processes.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

export interface ApiStack {
  t: TestCore;
  m: Manager;
  deps: ApiDeps;
  config: Config;
  /** Base URL of the Cluster Manager's HTTP API, without a trailing slash. */
  url: string;
  /** Basic credential of the embedded core's administrator (wildcard ACL on clusters and secrets). */
  admin: string;
  /** Creates a cluster through the Config Store and waits until it is ready. */
  createCluster(name: string, spec?: Record<string, unknown>): Promise<string>;
  /** A new principal holding Manage clusters on the one cluster `target`; returns its UUID. */
  operatorOf(target: string): string;
  /** Stops the manager and its API and starts them again on the same core and data dir (`m`, `deps`, `url` change). */
  restartManager(): Promise<void>;
  stop(): Promise<void>;
}

export interface ApiStackOptions {
  now?: () => number;
  config?: Record<string, unknown>;
  /** Service URLs the manager should use instead of the Directory's (e.g. a proxy's), given the core's endpoints. */
  serviceUrls?: (
    core: TestCore['core']['endpoints'],
  ) => Promise<{ configdbUrl?: string; gitUrl?: string; authUrl?: string }>;
  /** An MQTT 5 broker to use instead of the embedded one (TEST_MQTT_URL by default). */
  mqttUrl?: string;
  /** The manager's logger (silent by default). */
  log?: Logger;
  /** Timings of GET /v1/events (heartbeat, ACL recheck, coalescing). */
  eventStream?: ApiDeps['eventStream'];
}

/** The manager on the test core's services, as its cluster manager account; MQTT 3.1.1 unless told. */
export function startTestManager(
  t: TestCore,
  config: Config,
  opts: { mqttProtocol?: 4 | 5; log?: Logger } = {},
): Promise<Manager> {
  return startManager({
    config,
    directoryUrl: t.core.endpoints.directory,
    credentials: t.core.credentials.clusterManager,
    mqttProtocol: opts.mqttProtocol ?? 4,
    log: opts.log ?? silentLogger,
  });
}

/**
 * The embedded core, the manager and its HTTP API on loopback, in this
 * process. `now` replaces the clock of tokens and bootstrap URLs.
 */
export async function startApiStack(opts: ApiStackOptions = {}): Promise<ApiStack> {
  const t = await startTestCore({ mqttUrl: opts.mqttUrl });
  const factoryplus = opts.serviceUrls ? { factoryplus: await opts.serviceUrls(t.core.endpoints) } : {};
  const config = loadConfig({
    env: {},
    overrides: { dataDir: tempDir('cm-api-'), reconcile: { resyncSeconds: 600 }, ...factoryplus, ...opts.config },
  });
  const u = config.uuids;
  const start = async () => {
    const m = await startTestManager(t, config, {
      mqttProtocol: opts.mqttUrl || process.env.TEST_MQTT_URL ? 5 : 4,
      log: opts.log,
    });
    let base = '';
    const { app, deps } = createApi(m, silentLogger, {
      externalUrl: () => base,
      now: opts.now,
      eventStream: opts.eventStream,
    });
    const server = await listen(app.callback(), '127.0.0.1', 0);
    base = server.url.replace(/\/$/, '');
    await waitFor(() => m.controller.ready, 10_000, undefined, 'first resync');
    return { m, deps, server, url: base };
  };
  let running = await start();
  const admin = adminAuth(t.core);
  return {
    t,
    m: running.m,
    deps: running.deps,
    config,
    url: running.url,
    admin,
    async restartManager() {
      await running.server.close();
      await running.m.stop();
      running = await start();
      Object.assign(this, { m: running.m, deps: running.deps, url: running.url });
    },
    async createCluster(name, spec = {}) {
      const uuid = t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
      const r = await fetch(`${t.core.endpoints.configdb}/v2/app/${u.app.clusterConfig}/object/${uuid}`, {
        method: 'PUT',
        headers: { Authorization: admin, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name, namespace: 'fplus-edge', ...spec }),
      });
      if (r.status !== 201) throw new Error(`creating cluster ${name}: ${r.status}`);
      await waitFor(() => running.m.status.get(uuid)?.ready === true, 30_000, undefined, `cluster ${name} ready`);
      return uuid;
    },
    operatorOf(target) {
      const principal = randomUUID();
      t.core.auth.ensurePrincipal(principal);
      t.core.auth.addGrant({ principal, permission: u.perm.manageClusters, target, plural: false });
      return principal;
    },
    async stop() {
      await running.server.close();
      await running.m.stop();
      await t.stop();
    },
  };
}

/** Retries after 200 ms to 1 s, so a failing step shows its attempts within seconds; no timer resync. */
export const FAST_RETRIES = {
  reconcile: { resyncSeconds: 600, backoffBaseMs: 200, backoffMaxMs: 1000, concurrency: 8 },
};

/**
 * A stack whose manager reaches the Git server through a TCP relay, so Git
 * can be made unreachable for the manager alone (`git.set('refuse')`).
 */
export async function startApiStackWithGitRelay(
  opts: Omit<ApiStackOptions, 'serviceUrls'> = {},
): Promise<{ s: ApiStack; git: TcpProxy }> {
  let git!: TcpProxy;
  const s = await startApiStack({
    ...opts,
    serviceUrls: async (e) => {
      git = await startTcpProxy(e.git);
      return { gitUrl: git.url };
    },
  });
  return { s, git };
}
