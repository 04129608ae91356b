import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/types.js';
import { AuthClient } from './factoryplus/auth.js';
import { ConfigDbClient } from './factoryplus/configdb.js';
import { DirectoryClient } from './factoryplus/directory.js';
import { FplusHttp } from './factoryplus/http.js';
import { Commissioner } from './reconcile/commission.js';
import { Controller } from './reconcile/controller.js';
import { StatusStore } from './reconcile/status.js';
import { TemplateCache } from './reconcile/templates.js';
import { ChangeFeed } from './watch/change-feed.js';

export interface ManagerOptions {
  config: Config;
  directoryUrl: string;
  credentials: { username: string; password: string };
  /** MQTT protocol level of the broker (the embedded one speaks 3.1.1 only). */
  mqttProtocol: 4 | 5;
  log: Logger;
}

export interface Manager {
  controller: Controller;
  status: StatusStore;
  feed: ChangeFeed;
  stop(): Promise<void>;
}

/**
 * Assembles the Cluster Manager from its parts: Factory+ clients found
 * through the Directory, the setup status, the commissioning steps, the
 * controller and the Config Store change feed.
 */
export async function startManager(o: ManagerOptions): Promise<Manager> {
  const { config, log } = o;
  const u = config.uuids;
  const http = new FplusHttp(o.credentials, { log });
  const fp = config.factoryplus;
  const dir = new DirectoryClient(http, o.directoryUrl, {
    [u.service.configdb]: fp.configdbUrl, [u.service.auth]: fp.authUrl, [u.service.git]: fp.gitUrl,
  });
  const cdb = new ConfigDbClient(http, () => dir.serviceUrl(u.service.configdb));
  const auth = new AuthClient(http, () => dir.serviceUrl(u.service.auth));

  const templates = new TemplateCache(cdb, u);
  await templates.serviceConfig();

  const status = new StatusStore(cdb, u.app.setupStatus, { log });
  await status.load();
  const commissioner = new Commissioner({
    cdb, auth, http, gitBase: () => dir.serviceUrl(u.service.git), uuids: u,
    organisation: config.factoryplus.organisation, realm: config.factoryplus.realm, gitEmail: config.factoryplus.gitEmail,
    status, templates, checkoutsDir: join(resolve(config.dataDir), 'checkouts'), log,
  });
  const controller = new Controller({
    cdb, status, commissioner, templates, clusterConfigApp: u.app.clusterConfig, concurrency: config.reconcile.concurrency,
    backoffBaseMs: config.reconcile.backoffBaseMs, backoffMaxMs: config.reconcile.backoffMaxMs, log,
  });

  const { provider } = await dir.provider(u.service.configdb);
  const address = provider.device ? await dir.device(provider.device) : undefined;
  const mqttUrl = config.factoryplus.mqttUrl ?? await dir.serviceUrl(u.service.mqtt);
  const feed = new ChangeFeed({
    mqttUrl: mqttUrl.replace(/\/$/, ''), username: o.credentials.username, password: o.credentials.password,
    group: address?.group_id ?? `${config.factoryplus.organisation}-Service-Core`, node: address?.node_id ?? 'Config_DB',
    apps: [u.app.clusterConfig, u.app.edgeStatus, ...templates.apps], protocolVersion: o.mqttProtocol,
    resyncIntervalMs: config.reconcile.resyncSeconds * 1000, log: log.child({ part: 'change-feed' }),
  });
  const resync = (reason: string) => { controller.resync(reason).catch(() => undefined); };
  feed.on('resync', resync);
  feed.on('changed', (app) => {
    if (templates.apps.includes(app)) templates.invalidate(app);
    if (app === u.app.clusterConfig || templates.apps.includes(app)) resync('changed');
  });
  await feed.start();

  return {
    controller, status, feed,
    async stop() {
      await feed.stop();
      await controller.stop();
      await status.flush();
    },
  };
}
