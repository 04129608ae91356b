import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/types.js';
import { AuthClient } from './factoryplus/auth.js';
import { ConfigDbClient } from './factoryplus/configdb.js';
import { DirectoryClient } from './factoryplus/directory.js';
import { FplusHttp } from './factoryplus/http.js';
import { Commissioner } from './reconcile/commission.js';
import { Controller } from './reconcile/controller.js';
import { EdgeMonitor } from './reconcile/edge-monitor.js';
import { StatusStore } from './reconcile/status.js';
import { TemplateCache } from './reconcile/templates.js';
import { RepoPool } from './repo/pool.js';
import { SparkplugNode } from './sparkplug/node.js';
import { bridgeStatus } from './sparkplug/status-bridge.js';
import { ChangeFeed } from './watch/change-feed.js';
import { LiveFeed } from './watch/live-feed.js';
import { NotifyFeed } from './watch/notify-feed.js';
import { EntryCache } from './factoryplus/entry-cache.js';

export interface ManagerOptions {
  config: Config;
  directoryUrl: string;
  credentials: { username: string; password: string };
  /** MQTT protocol level of the broker (the embedded one speaks 3.1.1 only). */
  mqttProtocol: 4 | 5;
  log: Logger;
  /** Publish commissioning state as a Sparkplug node (default true). */
  sparkplug?: boolean;
}

export interface Manager {
  config: Config;
  http: FplusHttp;
  dir: DirectoryClient;
  cdb: ConfigDbClient;
  auth: AuthClient;
  templates: TemplateCache;
  repos: RepoPool;
  controller: Controller;
  status: StatusStore;
  /** Config Store change notifications, over MQTT or notify/v2 (CHANGE_FEED). */
  feed: LiveFeed;
  /** Edge cluster status entries (the sealing certificates), kept while the feed is live. */
  edgeStatus: EntryCache<Record<string, unknown>>;
  /** Keeps each cluster's edge summary and EdgeReporting condition in step with those entries. */
  edge: EdgeMonitor;
  node: SparkplugNode | undefined;
  stop(): Promise<void>;
}

/** `group/node` from configuration, or a Factory+ service address beside the Config Store's. */
function sparkplugAddress(config: Config): { group: string; node: string } {
  const a = config.sparkplug.address;
  if (a) {
    const [group, node] = a.split('/');
    return { group: group!, node: node! };
  }
  return { group: `${config.factoryplus.organisation}-Service-Core`, node: 'Cluster_Manager' };
}

/**
 * Assembles the Cluster Manager from its parts: Factory+ clients found
 * through the Directory, the setup status, the commissioning steps, the
 * controller, the Config Store change feed and the Sparkplug node.
 */
/**
 * `Instance_UUID` of the node when none is configured: the service
 * account's own principal, as ACS services do. The ACS Directory indexes a
 * node by it, so the service UUID (shared by every Cluster Manager and the
 * service record) would collide. Auth being down at start is not fatal: the
 * service UUID stands in, with a warning.
 */
async function ownPrincipal(auth: AuthClient, fallback: string, log: Logger): Promise<string> {
  try {
    return await auth.whoami();
  } catch (err) {
    log.warn(
      { err: (err as Error).message },
      'Cannot ask Auth who this service is; Instance_UUID falls back to the service UUID',
    );
    return fallback;
  }
}

export async function startManager(o: ManagerOptions): Promise<Manager> {
  const { config, log } = o;
  const u = config.uuids;
  const fp = config.factoryplus;
  const http = new FplusHttp(o.credentials, { log });
  const dir = new DirectoryClient(http, o.directoryUrl, {
    [u.service.configdb]: fp.configdbUrl,
    [u.service.auth]: fp.authUrl,
    [u.service.git]: fp.gitUrl,
  });
  const cdb = new ConfigDbClient(http, () => dir.serviceUrl(u.service.configdb));
  const auth = new AuthClient(http, () => dir.serviceUrl(u.service.auth));
  const dataDir = resolve(config.dataDir);

  const templates = new TemplateCache(cdb, u);
  await templates.serviceConfig();

  const status = new StatusStore(cdb, u.app.setupStatus, { log });
  await status.load();
  const repos = new RepoPool({
    storeRoot: join(dataDir, 'repos'),
    gitBase: () => dir.serviceUrl(u.service.git),
    token: (origin, fresh) => http.token(origin, fresh),
    author: { name: 'Edge deployment operator', email: fp.gitEmail },
    log,
  });
  const commissioner = new Commissioner({
    cdb,
    auth,
    gitBase: () => dir.serviceUrl(u.service.git),
    uuids: u,
    organisation: fp.organisation,
    realm: fp.realm,
    status,
    templates,
    repos,
    log,
    limits: { valuesDepth: config.reconcile.maxValuesDepth, valuesBytes: config.reconcile.maxValuesBytes },
  });
  const controller = new Controller({
    cdb,
    status,
    commissioner,
    templates,
    repos,
    clusterConfigApp: u.app.clusterConfig,
    driftCheckMs: config.reconcile.driftCheckSeconds * 1000,
    concurrency: config.reconcile.concurrency,
    backoffBaseMs: config.reconcile.backoffBaseMs,
    backoffMaxMs: config.reconcile.backoffMaxMs,
    log,
  });

  const mqttUrl = (fp.mqttUrl ?? (await dir.serviceUrl(u.service.mqtt))).replace(/\/$/, '');
  let node: SparkplugNode | undefined;
  let unbridge = () => {};
  if (o.sparkplug !== false) {
    node = new SparkplugNode({
      mqttUrl,
      username: o.credentials.username,
      password: o.credentials.password,
      protocolVersion: o.mqttProtocol,
      ...sparkplugAddress(config),
      bdSeqFile: join(dataDir, 'sparkplug-bdseq'),
      instanceUuid: config.sparkplug.instanceUuid ?? (await ownPrincipal(auth, u.service.clusterManager, log)),
      serviceUuid: u.service.clusterManager,
      serviceUrl: config.http.externalUrl ?? undefined,
      primaryHostId: config.sparkplug.primaryHost ?? undefined,
      log: log.child({ part: 'sparkplug' }),
    });
    unbridge = bridgeStatus(node, status, () => controller.lastFailure ?? '');
    await node.start();
  }

  const apps = [u.app.clusterConfig, u.app.edgeStatus, ...templates.apps];
  const resyncIntervalMs = config.reconcile.resyncSeconds * 1000;
  const feedLog = log.child({ part: 'change-feed' });
  // The Config Store's Sparkplug address is only needed by the MQTT source.
  const address =
    config.changeFeed === 'notify'
      ? undefined
      : await (async () => {
          const { provider } = await dir.provider(u.service.configdb);
          return provider.device ? await dir.device(provider.device) : undefined;
        })();
  const feed = new LiveFeed({
    mode: config.changeFeed,
    log: feedLog,
    mqtt: () =>
      new ChangeFeed({
        mqttUrl,
        username: o.credentials.username,
        password: o.credentials.password,
        group: address?.group_id ?? `${fp.organisation}-Service-Core`,
        node: address?.node_id ?? 'Config_DB',
        apps,
        protocolVersion: o.mqttProtocol,
        resyncIntervalMs,
        log: feedLog,
      }),
    notify: () =>
      new NotifyFeed({
        baseUrl: () => dir.serviceUrl(u.service.configdb),
        token: (base, fresh) => http.token(new URL(base).origin, fresh),
        apps,
        resyncIntervalMs,
        log: feedLog,
      }),
  });
  const edgeStatus = new EntryCache<Record<string, unknown>>(cdb, u.app.edgeStatus, () => feed.connected);
  const edge = new EdgeMonitor({ cdb, app: u.app.edgeStatus, status, log: log.child({ part: 'edge-health' }) });
  const resync = (reason: string) => {
    edgeStatus.invalidate();
    controller.resync(reason).catch(() => undefined);
  };
  feed.on('resync', (reason) => {
    resync(reason);
    edge.refresh().catch(() => undefined);
  });
  feed.on('state', () => edgeStatus.invalidate());
  feed.on('changed', (app) => {
    if (app === u.app.edgeStatus) {
      edgeStatus.invalidate();
      edge.changed();
    }
    if (templates.apps.includes(app)) templates.invalidate(app);
    if (app === u.app.clusterConfig || templates.apps.includes(app)) resync('changed');
  });
  await feed.start();

  return {
    config,
    http,
    dir,
    cdb,
    auth,
    templates,
    repos,
    controller,
    status,
    feed,
    edgeStatus,
    edge,
    node,
    async stop() {
      await feed.stop();
      edge.stop();
      await controller.stop();
      await status.flush();
      unbridge();
      await node?.stop();
    },
  };
}
