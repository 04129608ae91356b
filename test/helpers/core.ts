import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.js';
import { startEmbeddedCore, type EmbeddedCore } from '../../src/embedded/core.js';
import { silentLogger } from '../../src/lib/log.js';

export interface TestCore {
  core: EmbeddedCore;
  dataDir: string;
  /**
   * Stops and starts the core on the same data; `samePorts` keeps every service's port, and
   * `whileStopped` runs between the two.
   */
  restart(opts?: { samePorts?: boolean; whileStopped?: () => Promise<void> }): Promise<EmbeddedCore>;
  stop(): Promise<void>;
}

export function tempDir(prefix = 'fplus-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * The embedded core on ephemeral loopback ports in a fresh data directory.
 * With TEST_MQTT_URL set (CI runs the suite again against mosquitto) the core
 * uses that broker instead of its own.
 */
export async function startTestCore(
  opts: {
    dataDir?: string;
    profile?: 'seed' | 'acs';
    /** A broker to use instead of the embedded one (TEST_MQTT_URL by default). */
    mqttUrl?: string;
    /** Its own broker even with TEST_MQTT_URL. */
    embeddedBroker?: boolean;
  } = {},
): Promise<TestCore> {
  const dataDir = opts.dataDir ?? tempDir();
  const config = loadConfig({ env: {}, overrides: { profile: opts.profile ?? 'seed' } });
  const anyPorts = { directory: 0, configdb: 0, auth: 0, git: 0, mqtt: 0, cmdesc: 0 };
  const start = (ports = anyPorts) =>
    startEmbeddedCore({
      dataDir,
      host: '127.0.0.1',
      ports,
      uuids: config.uuids,
      organisation: config.factoryplus.organisation,
      realm: config.factoryplus.realm,
      domain: config.factoryplus.externalDomain,
      adminUsername: 'admin',
      externalMqttUrl: opts.embeddedBroker ? undefined : (opts.mqttUrl ?? (process.env.TEST_MQTT_URL || undefined)),
      log: silentLogger,
    });
  const t: TestCore = {
    core: await start(),
    dataDir,
    async restart(o = {}) {
      const e = t.core.endpoints;
      const port = (url: string) => Number(new URL(url).port);
      // Another broker's port is not the core's to keep.
      const ownBroker = opts.embeddedBroker || !(opts.mqttUrl || process.env.TEST_MQTT_URL);
      const ports = o.samePorts
        ? {
            directory: port(e.directory),
            configdb: port(e.configdb),
            auth: port(e.auth),
            git: port(e.git),
            mqtt: ownBroker ? port(e.mqtt) : 0,
            cmdesc: port(e.cmdesc),
          }
        : anyPorts;
      await t.core.stop();
      await o.whileStopped?.();
      t.core = await start(ports);
      return t.core;
    },
    async stop() {
      await t.core.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return t;
}

export function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

export function adminAuth(core: EmbeddedCore): string {
  return basic(core.credentials.admin.username, core.credentials.admin.password);
}
