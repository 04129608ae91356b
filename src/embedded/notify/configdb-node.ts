/**
 * The embedded Config Store's Sparkplug node: change notification over MQTT
 * as the Factory+ ConfigDB does it ("Last_Changed", notify v0).
 *
 * - Will: NDEATH (QoS 1, not retained) carrying `bdSeq`. `bdSeq` increases
 *   by one (mod 256) for every MQTT connection attempt, so the NBIRTH of
 *   each session carries the same `bdSeq` as the will registered for that
 *   session. With `bdSeqStore` it continues across restarts, as a host
 *   application expects: a restarted core that began at 0 again could have
 *   its new NBIRTH taken for the session a late will of the old one ends.
 * - On every connect: subscribe to our NCMD, then NBIRTH (payload `uuid` =
 *   the Factory+ UUID, `seq` 0) with the service metrics.
 * - Every change reported through `onChange` while born: one NDATA with the
 *   single metric `Last_Changed/Application` (UUID = the application), `seq`
 *   continuing from the birth and wrapping 255 -> 0. Changes while
 *   disconnected are dropped; the NBIRTH after reconnecting tells consumers
 *   to resynchronise everything.
 * - NCMD `Node Control/Rebirth` = true: a new NBIRTH (seq 0, same bdSeq).
 *   Malformed NCMDs are logged and ignored.
 * - stop(): publishes NDEATH (QoS 1) before disconnecting cleanly.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { LAST_CHANGED_APPLICATION } from '../../factoryplus/configdb.js';
import { FACTORYPLUS_PAYLOAD_UUID, REBIRTH_METRIC, SERVICE_SCHEMA_UUID } from '../../sparkplug/model.js';
import { CONFIGDB_SERVICE } from '../configdb/load.js';
import type { Logger } from '../../lib/log.js';
import {
  decodePayload,
  encodePayload,
  topic,
  type SparkplugMetric,
  type SparkplugPayload,
} from '../../lib/sparkplug/index.js';

export interface ConfigDbNodeOptions {
  mqttUrl: string;
  username: string;
  password: string;
  /** Sparkplug group id, e.g. `AMRC-Service-Core`. */
  group: string;
  /** Sparkplug node id, e.g. `Config_DB`. */
  node: string;
  /** Published as `Instance_UUID`: the ConfigDB's device/account UUID. */
  instanceUuid: string;
  /** Registers a change listener and returns its unregister function. */
  onChange: (listener: (app: string, obj: string) => void) => () => void;
  log: Logger;
  /** MQTT protocol version: 4 (3.1.1, default; the embedded broker speaks only this) or 5. */
  protocolVersion?: 4 | 5;
  /** `Device_Information/*` metrics. */
  deviceInfo?: { manufacturer?: string; model?: string; serial?: string };
  /** MQTT client id; random by default. */
  clientId?: string;
  /** Delay between reconnection attempts (default 2000 ms). */
  reconnectPeriodMs?: number;
  /** How long start waits for the first connection (default 30000 ms). */
  connectTimeoutMs?: number;
  /**
   * Where the last used bdSeq is kept. Synchronous, because mqtt.js builds
   * the CONNECT (and its will) right after announcing a reconnection.
   */
  bdSeqStore?: { load(): number | undefined; save(bdSeq: number): void };
}

export interface ConfigDbNode {
  /** Publishes NDEATH, disconnects and stops listening for changes. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_DEVICE_INFO = {
  manufacturer: 'AMRC',
  model: 'Factory+ Cluster Manager embedded ConfigDB',
  serial: 'unknown',
};

/**
 * Connects and publishes the first NBIRTH before resolving. Rejects if the
 * broker refuses the connection (e.g. bad credentials) or no connection is
 * made within `connectTimeoutMs`; after that, reconnection is automatic.
 */
export async function startConfigDbNode(opts: ConfigDbNodeOptions): Promise<ConfigDbNode> {
  const log = opts.log.child({ sparkplug: `${opts.group}/${opts.node}` });
  const info = { ...DEFAULT_DEVICE_INFO, ...opts.deviceInfo };
  const topics = {
    birth: topic(opts.group, 'NBIRTH', opts.node),
    death: topic(opts.group, 'NDEATH', opts.node),
    data: topic(opts.group, 'NDATA', opts.node),
    cmd: topic(opts.group, 'NCMD', opts.node),
  };

  const last = opts.bdSeqStore?.load();
  let bdSeq = last === undefined ? 0 : (last + 1) % 256;
  opts.bdSeqStore?.save(bdSeq);
  let seq = 0;
  let born = false;
  let stopped = false;

  const deathPayload = (): Buffer =>
    Buffer.from(
      encodePayload({
        timestamp: Date.now(),
        metrics: [{ name: 'bdSeq', type: 'UInt64', value: bdSeq }],
      }),
    );

  const will = { topic: topics.death, payload: deathPayload(), qos: 1 as const, retain: false };
  const clientOpts: IClientOptions = {
    username: opts.username,
    password: opts.password,
    protocolVersion: opts.protocolVersion ?? 4,
    clean: true,
    reconnectPeriod: opts.reconnectPeriodMs ?? 2000,
    connectTimeout: opts.connectTimeoutMs ?? 30000,
    resubscribe: false,
    queueQoSZero: false,
    will,
  };
  if (opts.clientId !== undefined) clientOpts.clientId = opts.clientId;

  const client: MqttClient = mqtt.connect(opts.mqttUrl, clientOpts);

  // Each new connection attempt gets a new bdSeq in its will; mqtt.js builds
  // the CONNECT packet from client.options right after emitting 'reconnect'.
  client.on('reconnect', () => {
    bdSeq = (bdSeq + 1) % 256;
    opts.bdSeqStore?.save(bdSeq);
    will.payload = deathPayload();
    if (client.options.will) client.options.will.payload = will.payload;
    log.debug({ bdSeq }, 'Reconnecting to MQTT');
  });

  const birthMetrics = (now: number): SparkplugMetric[] =>
    [
      { name: 'bdSeq', type: 'UInt64', value: bdSeq },
      { name: REBIRTH_METRIC, type: 'Boolean', value: false },
      { name: 'Device_Information/Manufacturer', type: 'String', value: info.manufacturer },
      { name: 'Device_Information/Model', type: 'String', value: info.model },
      { name: 'Device_Information/Serial', type: 'String', value: info.serial },
      { name: 'Schema_UUID', type: 'UUID', value: SERVICE_SCHEMA_UUID },
      { name: 'Instance_UUID', type: 'UUID', value: opts.instanceUuid },
      { name: 'Service_UUID', type: 'UUID', value: CONFIGDB_SERVICE },
      { name: LAST_CHANGED_APPLICATION, type: 'UUID', value: '' },
      { name: 'Last_Changed/Device', type: 'UUID', value: '' },
      { name: 'Last_Changed/Schema', type: 'UUID', value: '' },
    ].map((m) => ({ ...m, timestamp: now }) as SparkplugMetric);

  const publish = (t: string, p: SparkplugPayload, qos: 0 | 1 = 0): Promise<unknown> =>
    client.publishAsync(t, Buffer.from(encodePayload(p)), { qos, retain: false });

  const birth = async (): Promise<void> => {
    const now = Date.now();
    // The NBIRTH is written to the socket synchronously, so any NDATA
    // published from here on follows it.
    const sent = publish(topics.birth, {
      timestamp: now,
      seq: 0,
      uuid: FACTORYPLUS_PAYLOAD_UUID,
      metrics: birthMetrics(now),
    });
    seq = 1;
    born = true;
    await sent;
    log.info({ bdSeq }, 'Published NBIRTH');
  };

  const onConnect = async (): Promise<void> => {
    const granted = await client.subscribeAsync(topics.cmd, { qos: 1 });
    if (granted.some((g) => g.qos === 128)) throw new Error(`Subscription to ${topics.cmd} refused`);
    await birth();
  };

  const handleCommand = (payload: Buffer): void => {
    let cmd: SparkplugPayload;
    try {
      cmd = decodePayload(payload);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'Ignoring malformed NCMD');
      return;
    }
    for (const m of cmd.metrics ?? []) {
      if (m.name === REBIRTH_METRIC) {
        if (m.type === 'Boolean' && m.value === true) {
          log.info('Rebirth requested');
          if (born) birth().catch((err: unknown) => log.warn({ err }, 'Rebirth failed'));
        } else {
          log.warn({ type: m.type, value: String(m.value) }, 'Ignoring Node Control/Rebirth that is not Boolean true');
        }
      } else {
        log.debug({ metric: m.name ?? m.alias?.toString() }, 'Ignoring unsupported NCMD metric');
      }
    }
  };

  client.on('message', (t, payload) => {
    if (t !== topics.cmd) return;
    try {
      handleCommand(payload);
    } catch (err) {
      log.warn({ err }, 'Error handling NCMD');
    }
  });
  client.on('close', () => {
    if (born) log.info('Disconnected from MQTT');
    born = false;
  });
  client.on('error', (err) => log.warn({ err: err.message }, 'MQTT error'));

  // First connection: resolve after the first NBIRTH, reject on refusal or timeout.
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => {
      cleanup();
      client.end(true);
      reject(err);
    };
    const onFirstConnect = (): void => {
      cleanup();
      onConnect().then(resolve, (err: unknown) => {
        client.end(true);
        reject(err instanceof Error ? err : new Error(String(err)));
      });
    };
    const onError = (err: Error & { code?: unknown }): void => {
      // CONNACK refusals carry a numeric code; socket errors (string codes) are retried.
      if (typeof err.code === 'number') fail(new Error(`MQTT connection to ${opts.mqttUrl} refused: ${err.message}`));
    };
    const timer = setTimeout(
      () => fail(new Error(`No MQTT connection to ${opts.mqttUrl} within ${opts.connectTimeoutMs ?? 30000} ms`)),
      opts.connectTimeoutMs ?? 30000,
    );
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off('connect', onFirstConnect);
      client.off('error', onError);
    };
    client.once('connect', onFirstConnect);
    client.on('error', onError);
  });

  // Later (re)connections.
  client.on('connect', () => {
    onConnect().catch((err: unknown) => log.warn({ err }, 'Birth after reconnect failed'));
  });

  const unlisten = opts.onChange((app) => {
    if (!born || stopped) {
      log.debug({ app }, 'Not connected; change notification dropped');
      return;
    }
    const now = Date.now();
    const thisSeq = seq;
    seq = (seq + 1) % 256;
    publish(topics.data, {
      timestamp: now,
      seq: thisSeq,
      metrics: [{ name: LAST_CHANGED_APPLICATION, type: 'UUID', value: app, timestamp: now }],
    }).catch((err: unknown) => log.warn({ err }, 'Failed to publish NDATA'));
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      stopped = true;
      unlisten();
      if (client.connected) {
        try {
          await client.publishAsync(topics.death, deathPayload(), { qos: 1, retain: false });
          log.info({ bdSeq }, 'Published NDEATH');
        } catch (err) {
          log.warn({ err }, 'Failed to publish NDEATH');
        }
        born = false;
        await client.endAsync();
      } else {
        born = false;
        await client.endAsync(true);
      }
    })();
    return stopping;
  };

  return { stop };
}
