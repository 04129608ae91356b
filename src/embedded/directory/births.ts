/**
 * What the embedded Directory learns from Sparkplug births and deaths, as
 * the ACS Directory does: each node and device that has birthed, under the
 * UUID its birth names in `Instance_UUID`, with its `Schema_UUID`, whether
 * it is online and when that last changed. Kept in the core's database, so
 * a restart remembers who was seen (and marks nothing online until it is
 * born again).
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { decodePayload, parseTopic, type SparkplugPayload } from '../../lib/sparkplug/index.js';
import { isUuid } from '../../lib/uuid.js';
import type { Db } from '../db.js';
import type { DirectoryDevice } from './index.js';

interface Row {
  group_id: string;
  node_id: string;
  device_id: string;
  uuid: string | null;
  schema: string | null;
  online: number;
  bdseq: number | null;
  last_change: string;
}

function metric(p: SparkplugPayload, name: string): unknown {
  return p.metrics?.find((m) => m.name === name)?.value;
}

const uuidOf = (v: unknown): string | null => (typeof v === 'string' && isUuid(v) ? v.toLowerCase() : null);
const bdSeqOf = (v: unknown): number | null => (typeof v === 'bigint' || typeof v === 'number' ? Number(v) : null);

export class SparkplugSightings {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS sparkplug_sighting (
      group_id TEXT NOT NULL, node_id TEXT NOT NULL, device_id TEXT NOT NULL,
      uuid TEXT, schema TEXT, online INTEGER NOT NULL, bdseq INTEGER, last_change TEXT NOT NULL,
      PRIMARY KEY (group_id, node_id, device_id))`);
    // Nothing is online until it births again on this core's broker.
    db.prepare('UPDATE sparkplug_sighting SET online = 0').run();
  }

  /** Takes one MQTT message; anything but a decodable birth or death is ignored. */
  observe(topicName: string, raw: Buffer): void {
    const t = parseTopic(topicName);
    if (!t || !['NBIRTH', 'NDEATH', 'DBIRTH', 'DDEATH'].includes(t.type)) return;
    let p: SparkplugPayload;
    try {
      p = decodePayload(raw);
    } catch {
      return;
    }
    const at = this.now().toISOString();
    const key = [t.group, t.node, t.device ?? ''];
    switch (t.type) {
      case 'NBIRTH':
        this.db.transaction(() => {
          this.put(
            key,
            uuidOf(metric(p, 'Instance_UUID')),
            uuidOf(metric(p, 'Schema_UUID')),
            bdSeqOf(metric(p, 'bdSeq')),
            at,
          );
          // A new session: its devices are offline until their own DBIRTHs.
          this.db
            .prepare(
              "UPDATE sparkplug_sighting SET online = 0, last_change = ? WHERE group_id = ? AND node_id = ? AND device_id <> '' AND online = 1",
            )
            .run(at, t.group, t.node);
        })();
        break;
      case 'DBIRTH':
        this.put(key, uuidOf(metric(p, 'Instance_UUID')), uuidOf(metric(p, 'Schema_UUID')), null, at);
        break;
      case 'NDEATH': {
        // A will left over from an earlier session names another bdSeq: it ends nothing now.
        const row = this.db
          .prepare("SELECT bdseq FROM sparkplug_sighting WHERE group_id = ? AND node_id = ? AND device_id = ''")
          .get(t.group, t.node) as Pick<Row, 'bdseq'> | undefined;
        const bdSeq = bdSeqOf(metric(p, 'bdSeq'));
        if (!row || (row.bdseq !== null && bdSeq !== null && row.bdseq !== bdSeq)) return;
        this.db
          .prepare(
            'UPDATE sparkplug_sighting SET online = 0, last_change = ? WHERE group_id = ? AND node_id = ? AND online = 1',
          )
          .run(at, t.group, t.node);
        break;
      }
      case 'DDEATH':
        this.db
          .prepare(
            'UPDATE sparkplug_sighting SET online = 0, last_change = ? WHERE group_id = ? AND node_id = ? AND device_id = ?',
          )
          .run(at, ...key);
        break;
    }
  }

  private put(key: string[], uuid: string | null, schema: string | null, bdSeq: number | null, at: string): void {
    this.db
      .prepare(
        `INSERT INTO sparkplug_sighting (group_id, node_id, device_id, uuid, schema, online, bdseq, last_change)
      VALUES (?, ?, ?, ?, ?, 1, ?, ?)
      ON CONFLICT (group_id, node_id, device_id) DO UPDATE SET
        uuid = excluded.uuid, schema = excluded.schema, online = 1, bdseq = excluded.bdseq, last_change = excluded.last_change`,
      )
      .run(...key, uuid, schema, bdSeq, at);
  }

  /** Every node and device seen whose birth named an `Instance_UUID`. */
  devices(): DirectoryDevice[] {
    const rows = this.db
      .prepare('SELECT * FROM sparkplug_sighting WHERE uuid IS NOT NULL ORDER BY group_id, node_id, device_id')
      .all() as Row[];
    return rows.map((r) => ({
      uuid: r.uuid!,
      group_id: r.group_id,
      node_id: r.node_id,
      device_id: r.device_id === '' ? null : r.device_id,
      online: r.online === 1,
      last_change: r.last_change,
      top_schema: r.schema,
      schemas: r.schema ? [r.schema] : [],
    }));
  }
}

/** Feeds every Sparkplug birth and death on the broker to `sightings`. */
export function watchSparkplug(opts: {
  mqttUrl: string;
  username: string;
  password: string;
  sightings: SparkplugSightings;
  log: Logger;
}): { client: MqttClient; stop(): Promise<void> } {
  const client = mqtt.connect(opts.mqttUrl, {
    username: opts.username,
    password: opts.password,
    protocolVersion: 4,
    reconnectPeriod: 2000,
    resubscribe: true,
  });
  client.on('connect', () => {
    client.subscribe(
      ['spBv1.0/+/NBIRTH/+', 'spBv1.0/+/NDEATH/+', 'spBv1.0/+/DBIRTH/+/+', 'spBv1.0/+/DDEATH/+/+'],
      { qos: 0 },
      (err) => {
        if (err) opts.log.warn({ err: err.message }, 'cannot watch Sparkplug births');
      },
    );
  });
  client.on('error', (err) => opts.log.debug({ err: err.message }, 'Sparkplug watcher MQTT error'));
  client.on('message', (t, raw) => opts.sightings.observe(t, raw));
  return { client, stop: () => client.endAsync() };
}
