import { join, resolve } from 'node:path';
import type Koa from 'koa';
import type { Logger } from 'pino';
import type { EmbeddedPorts, Uuids } from '../config/types.js';
import { AuthModel } from './auth/model.js';
import { createAuthApp } from './auth/index.js';
import { authNotify } from './auth/notify.js';
import { startBroker, type EmbeddedBroker, type PacketLimits } from './broker/index.js';
import { topicAcl } from './broker/topic-acl.js';
import type { PasswordLimitConfig } from '../lib/failure-limit.js';
import type { Json } from '../lib/merge-patch.js';
import { ConfigStore } from './configdb/store.js';
import { createConfigDbApp } from './configdb/index.js';
import { configDbNotify } from './configdb/notify.js';
import { ObjectRegistry } from './configdb/objects.js';
import { loadCredentials, type AdminPasswordSource, type CoreCredentials } from './credentials.js';
import { makePrivate, tightenTree, writePrivateFile } from '../lib/private-files.js';
import { openDatabase, type Db } from './db.js';
import { createDirectoryApp } from './directory/index.js';
import { createGitApp, GitStorage } from './git/index.js';
import type { BackendProcess } from './git/backend-process.js';
import { listen, TokenStore, type Listening } from './http-kit.js';
import { startConfigDbNode, type ConfigDbNode } from './notify/configdb-node.js';
import { CMDESC_SERVICE, createCmdEscApp } from './cmdesc/index.js';
import { SparkplugSightings, watchSparkplug } from './directory/births.js';
import type { NotifyV2Server } from './notify/v2-server.js';
import { seedHelmRepo } from './seed/helm-repo.js';
import { applySeed } from './seed/apply.js';
import { Local } from './seed/local-uuids.js';
import { seedPlan } from './seed/plan.js';

/** A node's last bdSeq, kept in the core's database so it survives a restart. */
function sparkplugBdSeq(db: Db, node: string): { load(): number | undefined; save(bdSeq: number): void } {
  db.exec('CREATE TABLE IF NOT EXISTS sparkplug_bdseq (node TEXT PRIMARY KEY, bdseq INTEGER NOT NULL)');
  const get = db.prepare('SELECT bdseq FROM sparkplug_bdseq WHERE node = ?');
  const put = db.prepare(
    'INSERT INTO sparkplug_bdseq (node, bdseq) VALUES (?, ?) ON CONFLICT (node) DO UPDATE SET bdseq = excluded.bdseq',
  );
  return {
    load: () => (get.get(node) as { bdseq: number } | undefined)?.bdseq,
    save: (bdSeq) => {
      put.run(node, bdSeq);
    },
  };
}

/** What the embedded core keeps in the data directory. */
const CORE_ENTRIES = ['credentials.json', 'endpoints.json', 'core.sqlite', 'core.sqlite-wal', 'core.sqlite-shm', 'git'];

export interface EmbeddedCoreOptions {
  dataDir: string;
  host: string;
  ports: EmbeddedPorts;
  uuids: Uuids;
  organisation: string;
  realm: string;
  domain: string;
  adminUsername: string;
  /** Fixed admin password (otherwise one is generated on first start and kept). */
  adminPassword?: string;
  /** Failed password checks allowed per user name and client address (defaults in failure-limit.ts). */
  passwordLimits?: PasswordLimitConfig;
  /** MQTT packet size limits of the embedded broker (defaults in broker/index.ts). */
  mqttLimits?: PacketLimits;
  /** Use this broker instead of starting the embedded one (its credentials are not checked here). */
  externalMqttUrl?: string;
  log: Logger;
}

/** Base URLs of the embedded services and a credential every one of them accepts. */
export interface Endpoints {
  directory: string;
  configdb: string;
  auth: string;
  git: string;
  /** Command Escalation: asks Sparkplug nodes and devices for a rebirth (or another command). */
  cmdesc: string;
  clusterManager: string | null;
  mqtt: string;
  username: string;
  password: string;
}

export interface EmbeddedCore {
  endpoints: Endpoints;
  credentials: CoreCredentials;
  /** Whether the admin password was made on this start (and so shown once), kept from before, or given. */
  adminPassword: AdminPasswordSource;
  db: Db;
  objects: ObjectRegistry;
  store: ConfigStore;
  auth: AuthModel;
  git: GitStorage;
  /** Registers the Cluster Manager's URL with the Directory and the endpoints file. */
  advertiseClusterManager(url: string): void;
  writeEndpointsFile(): string;
  stop(): Promise<void>;
}

/**
 * Starts the embedded Factory+ core: Config Store, Directory, Auth, Git server
 * and MQTT broker, each on its own loopback port and speaking its real
 * service's protocol, backed by one SQLite file in the data directory.
 */
export async function startEmbeddedCore(opts: EmbeddedCoreOptions): Promise<EmbeddedCore> {
  const log = opts.log;
  const dataDir = resolve(opts.dataDir);
  const { credentials: creds, admin: adminPassword } = loadCredentials(dataDir, opts.adminUsername, opts.adminPassword);
  // Files left readable by others (an older version, a copy, a umask) are
  // said and fixed before anything is served from them.
  const loose = tightenTree(dataDir, CORE_ENTRIES);
  if (loose.length)
    log.warn(
      { count: loose.length, paths: loose.slice(0, 10) },
      'data directory entries were readable by other users; made private',
    );
  const dbFile = join(dataDir, 'core.sqlite');
  const db = openDatabase(dbFile);
  // SQLite makes its files with the process umask; the database holds password hashes.
  for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) makePrivate(f);
  const objects = new ObjectRegistry(db);
  const auth = new AuthModel(db, objects, {
    realm: opts.realm,
    roots: new Set([Local.account.admin]),
    passwordLimits: opts.passwordLimits,
  });
  const store = new ConfigStore(db, objects, { log: log.child({ svc: 'configdb' }) });
  const git = new GitStorage(join(dataDir, 'git'));
  const { uuids: u } = opts;
  /** What `derive` makes of one application's entries, made again after a change to one of them. */
  const fromEntries = <T>(app: string, derive: (entries: Array<[string, Json]>) => T): (() => T) => {
    let value: { of: T } | undefined;
    store.onChange((changed) => {
      if (changed === app) value = undefined;
    });
    return () => (value ??= { of: derive(store.entries(app)) }).of;
  };

  const servers: Listening[] = [];
  let broker: EmbeddedBroker | undefined;
  let node: ConfigDbNode | undefined;
  let watcher: ReturnType<typeof watchSparkplug> | undefined;
  const sightings = new SparkplugSightings(db);
  let gitBackend: BackendProcess | undefined;
  const notifiers: Array<NotifyV2Server<unknown>> = [];
  const stop = async () => {
    for (const n of notifiers) n.close();
    await node?.stop().catch(() => undefined);
    await watcher?.stop().catch(() => undefined);
    await broker?.close().catch(() => undefined);
    await Promise.all(servers.map((s) => s.close()));
    await gitBackend?.stop();
    auth.dispose();
    db.close();
  };

  try {
    const serve = async (app: Koa, port: number, name: string, env: string, notify?: NotifyV2Server<unknown>) => {
      // Closed by stop() even when listening fails: it already listens to the stores.
      if (notify) notifiers.push(notify);
      const l = await listen(app.callback(), opts.host, port).catch((e: NodeJS.ErrnoException) => {
        throw e.code === 'EADDRINUSE'
          ? new Error(
              `port ${port} for the embedded ${name} is in use on ${opts.host}; stop what uses it or set ${env}`,
            )
          : e;
      });
      servers.push(l);
      notify?.attach(l.server);
      return l.url;
    };
    const adverts = new Map<string, { url: string | null; device: string | null }>();
    const directoryUrl = await serve(
      createDirectoryApp({
        auth,
        db,
        tokens: new TokenStore(),
        log: log.child({ svc: 'directory' }),
        adverts: () => [...adverts].map(([service, a]) => ({ service, ...a })),
        // Devices are what has birthed (by its Instance_UUID), and the objects
        // whose Sparkplug address names a node, not yet seen online.
        devices: () => {
          const seen = sightings.devices();
          const known = new Set(seen.map((d) => d.uuid));
          return [
            ...seen,
            ...store.entries(u.app.sparkplugAddress).flatMap(([uuid, a]) => {
              const addr = a as { group_id?: string; node_id?: string; device_id?: string } | null;
              return addr?.group_id && addr.node_id && !known.has(uuid)
                ? [{ uuid, group_id: addr.group_id, node_id: addr.node_id, device_id: addr.device_id ?? null }]
                : [];
            }),
          ];
        },
      }),
      opts.ports.directory,
      'Directory',
      'EMBEDDED_DIRECTORY_PORT',
    );

    applySeed(
      { store, objects, auth },
      seedPlan({
        uuids: u,
        organisation: opts.organisation,
        realm: opts.realm,
        domain: opts.domain,
        directoryUrl,
      }),
      creds,
      log,
    );
    for (const f of [dbFile, `${dbFile}-wal`, `${dbFile}-shm`]) makePrivate(f);

    // notify/v2 sockets authenticate with the tokens of their own service's /token.
    const byToken = (tokens: TokenStore) => (token: string) => {
      const uuid = tokens.lookup(token);
      return uuid ? auth.principal(uuid) : undefined;
    };
    const configdbTokens = new TokenStore();
    const configdbLog = log.child({ svc: 'configdb' });
    const configdbUrl = await serve(
      createConfigDbApp({ db, objects, store, auth, tokens: configdbTokens, log: configdbLog }),
      opts.ports.configdb,
      'Config Store',
      'EMBEDDED_CONFIGDB_PORT',
      configDbNotify({
        store,
        objects,
        auth,
        authenticate: byToken(configdbTokens),
        log: configdbLog,
      }) as NotifyV2Server<unknown>,
    );
    const authTokens = new TokenStore();
    const authLog = log.child({ svc: 'auth' });
    const authUrl = await serve(
      createAuthApp({ auth, objects, tokens: authTokens, log: authLog }),
      opts.ports.auth,
      'Auth service',
      'EMBEDDED_AUTH_PORT',
      authNotify({ auth, authenticate: byToken(authTokens), log: authLog }) as NotifyV2Server<unknown>,
    );
    // Repos by their `group/name` path, read at every Git request made by path.
    const repoPaths = fromEntries(u.app.gitRepoConfig, (entries) => {
      const byPath = new Map<string, string | null>();
      for (const [uuid, v] of entries) {
        const path = (v as { path?: unknown } | null)?.path;
        if (typeof path === 'string') byPath.set(path, byPath.has(path) ? null : uuid);
      }
      return byPath;
    });
    const gitApp = createGitApp({
      storage: git,
      auth,
      tokens: new TokenStore(),
      log: log.child({ svc: 'git' }),
      repoConfig: (uuid) => {
        const e = store.get(u.app.gitRepoConfig, uuid)?.json as { path?: unknown } | undefined;
        return e && typeof e.path === 'string' ? { path: e.path } : undefined;
      },
      // A path two repos claim names neither (null).
      resolvePath: (path) => repoPaths().get(path) ?? undefined,
    });
    gitBackend = gitApp.backend;
    const gitUrl = await serve(gitApp.app, opts.ports.git, 'Git server', 'EMBEDDED_GIT_PORT');
    await seedHelmRepo(git, Local.repo.helmCharts);

    let mqttUrl = opts.externalMqttUrl;
    if (!mqttUrl) {
      // Node addresses by group and node id, from the Sparkplug address entries.
      const addressOwners = fromEntries(
        u.app.sparkplugAddress,
        (entries) =>
          new Map(
            entries.flatMap(([uuid, a]) => {
              const addr = a as { group_id?: unknown; node_id?: unknown } | null;
              return typeof addr?.group_id === 'string' && typeof addr.node_id === 'string'
                ? [[`${addr.group_id}/${addr.node_id}`, uuid] as [string, string]]
                : [];
            }),
          ),
      );
      broker = await startBroker({
        host: opts.host,
        port: opts.ports.mqtt,
        log: log.child({ svc: 'mqtt' }),
        limits: opts.mqttLimits,
        authenticate: (username, password, address) => auth.verifyPassword(username, password, address),
        topics: topicAcl(
          auth,
          (group, node) => addressOwners().get(`${group}/${node}`),
          (p) => [...addressOwners().values()].includes(p),
        ),
      });
      mqttUrl = broker.url;
    }
    // The Directory learns who is online from Sparkplug births and deaths, and
    // Command Escalation publishes commands, as in ACS; one client serves both.
    watcher = watchSparkplug({
      mqttUrl,
      username: creds.admin.username,
      password: creds.admin.password,
      sightings,
      log: log.child({ svc: 'directory-sparkplug' }),
    });
    const cmdescUrl = await serve(
      createCmdEscApp({
        auth,
        store,
        tokens: new TokenStore(),
        log: log.child({ svc: 'cmdesc' }),
        sparkplugAddressApp: u.app.sparkplugAddress,
        mqtt: () => watcher?.client,
      }),
      opts.ports.cmdesc,
      'Command Escalation',
      'EMBEDDED_CMDESC_PORT',
    );
    node = await startConfigDbNode({
      mqttUrl,
      username: creds.configdb.username,
      password: creds.configdb.password,
      group: `${opts.organisation}-Service-Core`,
      node: 'Config_DB',
      instanceUuid: u.special.configdbDevice,
      onChange: (listener) => store.onChange(listener),
      log: log.child({ svc: 'configdb-sparkplug' }),
      bdSeqStore: sparkplugBdSeq(db, 'Config_DB'),
    });

    adverts.set(u.service.directory, { url: directoryUrl, device: null });
    adverts.set(u.service.configdb, { url: configdbUrl, device: u.special.configdbDevice });
    adverts.set(u.service.auth, { url: authUrl, device: null });
    adverts.set(u.service.git, { url: gitUrl, device: null });
    adverts.set(u.service.mqtt, { url: mqttUrl, device: null });
    adverts.set(CMDESC_SERVICE, { url: cmdescUrl, device: null });

    const endpoints: Endpoints = {
      directory: directoryUrl,
      configdb: configdbUrl,
      auth: authUrl,
      git: gitUrl,
      cmdesc: cmdescUrl,
      clusterManager: null,
      mqtt: mqttUrl,
      username: creds.admin.username,
      password: creds.admin.password,
    };
    const writeEndpointsFile = () => {
      const file = join(dataDir, 'endpoints.json');
      writePrivateFile(file, `${JSON.stringify(endpoints, null, 2)}\n`);
      return file;
    };
    return {
      endpoints,
      credentials: creds,
      adminPassword,
      db,
      objects,
      store,
      auth,
      git,
      stop,
      writeEndpointsFile,
      advertiseClusterManager(url: string) {
        endpoints.clusterManager = url;
        adverts.set(u.service.clusterManager, { url, device: null });
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
