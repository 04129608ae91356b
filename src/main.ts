#!/usr/bin/env node
import { dirname, join, resolve } from 'node:path';
import { ConfigError, loadConfig, type Config } from './config/index.js';
import { startEmbeddedCore, type EmbeddedCore } from './embedded/core.js';
import { createApi } from './http/index.js';
import { metricsHandler } from './http/metrics-listener.js';
import { listen } from './lib/listen.js';
import type { Logger } from 'pino';
import { createLogger } from './lib/log.js';
import { formatChecks, runChecks } from './check/index.js';
import { startManager, type Manager } from './manager.js';
import { makePrivateDir, PRIVATE_UMASK, tightenTree } from './lib/private-files.js';
import { runCli, SERVER_COMMANDS, type ServerCommand } from './cli/commands.js';

/** What the service and its embedded core keep in the data directory. */
const SERVICE_ENTRIES = [
  'credentials.json',
  'endpoints.json',
  'core.sqlite',
  'core.sqlite-wal',
  'core.sqlite-shm',
  'git',
  'bootstrap-key',
  'sparkplug-bdseq',
  'checkouts',
];

async function checkConfig(config: Config): Promise<void> {
  const results = await runChecks(config);
  process.stdout.write(formatChecks(results));
  process.exitCode = results.some((r) => !r.ok && !r.skipped) ? 1 : 0;
}

function printEndpoints(core: EmbeddedCore, file: string): void {
  const e = core.endpoints;
  const lines = [
    '',
    // `core` runs no Cluster Manager: the title must not claim one.
    e.clusterManager
      ? 'Factory+ Cluster Manager with the embedded Factory+ core'
      : 'Embedded Factory+ core (no Cluster Manager)',
    ...(e.clusterManager ? [`  Cluster Manager  ${e.clusterManager}`] : []),
    `  Directory        ${e.directory}`,
    `  Config Store     ${e.configdb}`,
    `  Auth             ${e.auth}`,
    `  Git server       ${e.git}`,
    `  MQTT broker      ${e.mqtt}`,
    // The password goes to the terminal (and so to every log collector)
    // only on the start that made it; afterwards the banner says where it is.
    core.adminPassword === 'generated'
      ? `  Credential       ${e.username} / ${e.password}   (Basic auth, every service; shown only this once)`
      : `  Credential       ${e.username}, password ${core.adminPassword === 'given' ? 'from ADMIN_PASSWORD' : `in ${join(dirname(file), 'credentials.json')}`}   (Basic auth, every service)`,
    `  Written to       ${file}   (endpoints and credential, mode 0600)`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function startCore(config: Config, log: Logger): Promise<EmbeddedCore> {
  return startEmbeddedCore({
    dataDir: resolve(config.dataDir),
    host: config.embedded.host,
    ports: config.embedded.ports,
    uuids: config.uuids,
    organisation: config.factoryplus.organisation,
    realm: config.factoryplus.realm,
    domain: config.factoryplus.externalDomain,
    adminUsername: config.embedded.adminUsername,
    passwordLimits: config.passwordLimits,
    mqttLimits: config.embedded.mqttLimits,
    adminPassword: process.env.ADMIN_PASSWORD || undefined,
    log: log.child({ embedded: true }),
  });
}

function onSignals(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => process.exit(1), 10_000);
    timer.unref();
    await stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

async function core(config: Config): Promise<void> {
  const log = createLogger({ level: config.log.level, pretty: config.log.pretty, name: 'factoryplus-core' });
  const c = await startCore(config, log);
  printEndpoints(c, c.writeEndpointsFile());
  onSignals(log, () => c.stop());
}

async function serve(config: Config): Promise<void> {
  const log = createLogger({ level: config.log.level, pretty: config.log.pretty, name: 'cluster-manager' });
  const core = config.factoryplus.directoryUrl ? undefined : await startCore(config, log);

  const directoryUrl = core?.endpoints.directory ?? config.factoryplus.directoryUrl!;
  const credentials =
    core?.credentials.clusterManager ??
    (config.factoryplus.username && config.factoryplus.password
      ? { username: config.factoryplus.username, password: config.factoryplus.password }
      : undefined);
  if (!credentials) {
    throw new Error(
      'DIRECTORY_URL is set but SERVICE_USERNAME and SERVICE_PASSWORD are not: the Cluster Manager needs a service account',
    );
  }
  let manager: Manager;
  try {
    manager = await startManager({
      config,
      directoryUrl,
      credentials,
      mqttProtocol: core ? 4 : config.factoryplus.mqttProtocol,
      log,
    });
  } catch (e) {
    // Say which dependency is missing rather than leave a stack trace (or wait and retry in silence).
    const failed = (await runChecks(config, { credentials, directoryUrl })).filter((r) => !r.ok && !r.skipped);
    process.stderr.write(`cluster-manager: cannot start: ${(e as Error).message}\n${formatChecks(failed)}`);
    await core?.stop();
    process.exit(1);
  }

  let listening = '';
  const { app, deps } = createApi(manager, log, { externalUrl: () => listening });
  const http = await listen(app.callback(), config.http.host, config.http.port);
  listening = http.url;
  log.info({ url: http.url }, 'HTTP API listening');
  const metricsPort = config.http.metricsPort ?? null;
  const metricsHttp =
    metricsPort === null
      ? undefined
      : await listen(metricsHandler(deps.metrics.registry), config.http.host, metricsPort);
  if (metricsHttp) log.info({ url: `${metricsHttp.url}/metrics` }, 'Metrics listening, without authentication');
  if (core) {
    core.advertiseClusterManager(http.url);
    printEndpoints(core, core.writeEndpointsFile());
  }

  onSignals(log, async () => {
    // Event streams never go idle: ended first, they do not hold up the server's close.
    deps.events?.close();
    await Promise.all([http.close(8_000), metricsHttp?.close()]);
    await manager.stop();
    await core?.stop();
  });
}

/** The service's own commands: they run here, with the service's configuration. */
async function runServer(command: ServerCommand): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`cluster-manager: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw e;
  }
  if (command === 'check-config') return checkConfig(config);
  // Everything the service and the processes it starts (git, SQLite) write is
  // for this user only, whatever umask it was started with; what an earlier
  // run left looser is said and fixed.
  process.umask(PRIVATE_UMASK);
  const dataDir = resolve(config.dataDir);
  makePrivateDir(dataDir);
  const loose = tightenTree(dataDir, SERVICE_ENTRIES);
  if (loose.length) {
    process.stderr.write(
      `cluster-manager: ${loose.length} entries under ${dataDir} were readable by other users and were made private (e.g. ${loose.slice(0, 3).join(', ')})\n`,
    );
  }
  await (command === 'core' ? core(config) : serve(config));
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0] ?? 'serve';
  // The service's commands keep their own parsing (none): a deployment's
  // `serve` never depends on the client's options.
  if (Object.hasOwn(SERVER_COMMANDS, command)) return runServer(command as ServerCommand);
  process.exitCode = await runCli(
    argv,
    { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, now: Date.now },
    runServer,
  );
}

main(process.argv.slice(2)).catch((e: Error) => {
  process.stderr.write(`cluster-manager: ${e.message}\n`);
  process.exit(1);
});
