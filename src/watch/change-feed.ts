/**
 * Change feed from the Config Store's Sparkplug node ("Last_Changed",
 * notify v0): turns its NBIRTH / NDATA / NDEATH messages into hints for the
 * reconciler.
 *
 * Events:
 * - `changed(app)`: an NDATA carried `Last_Changed/Application` (by name, or
 *   by the alias the NBIRTH declared for that name) equal to one of `apps`.
 *   Bursts for the same application are coalesced: the first notification
 *   opens a window of `debounceMs` and one `changed` is emitted when it
 *   closes, however many notifications arrived in it.
 * - `resync(reason)`: anything may have changed, re-read everything.
 *   - `start`: once, after the first connection and subscription, or as soon
 *     as the first connection attempt fails (the Config Store over HTTP
 *     remains the source of truth even without notifications);
 *   - `birth`: every Config Store NBIRTH (it rebirths on its own reconnect,
 *     and changes made while it was offline were never announced);
 *   - `reconnect`: every connection after the first (notifications may have
 *     been lost while disconnected), including the first successful one if
 *     the initial attempt failed;
 *   - `timer`: `resyncIntervalMs` after the most recent resync of any kind;
 *   - `gap`: an NDATA `seq` that does not follow the previous message from
 *     the node (a notification was missed), or an aliased metric that cannot
 *     be attributed because no NBIRTH has been seen.
 * - `state('connected' | 'disconnected')`: on each transition; `connected`
 *   means the MQTT session is up and the subscriptions were granted.
 * - `unavailable('refused' | 'unreachable')`: the broker refused a
 *   subscription (SUBACK failure code; mqtt.js rejects the subscribe), or the
 *   first connection attempt failed, or an established connection was lost.
 *   A refused subscription is asked for again every `resubscribeMs` while
 *   the session stays up (an installation's MQTT permissions may be fixed).
 *
 * Notifications are hints: malformed payloads are logged and ignored, and
 * errors thrown by listeners are logged rather than propagated into the MQTT
 * client. All timers are unref'd so the feed never keeps the process alive.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { LAST_CHANGED_APPLICATION } from '../factoryplus/configdb.js';
import type { Logger } from '../lib/log.js';
import { refusalText, subscribeChecked } from '../lib/mqtt-subscribe.js';
import {
  decodePayload,
  parseTopic,
  topic,
  type SparkplugMetric,
  type SparkplugPayload,
  type UInt64Like,
} from '../lib/sparkplug/index.js';
import { Feed, type FeedTiming } from './feed.js';

export interface ChangeFeedOptions extends FeedTiming {
  mqttUrl: string;
  /** Omitted (or empty) for brokers that allow anonymous access. */
  username?: string;
  password?: string;
  /** The Config Store's Sparkplug group id, e.g. `AMRC-Service-Core`. */
  group: string;
  /** The Config Store's Sparkplug node id, e.g. `Config_DB`. */
  node: string;
  /** Application UUIDs whose changes are reported. */
  apps: string[];
  /** MQTT protocol version: 4 (3.1.1, default; the embedded broker speaks only this) or 5. */
  protocolVersion?: 4 | 5;
  /** Delay between reconnection attempts (default 2000 ms). */
  reconnectPeriodMs?: number;
  /** How long a connection attempt may wait for CONNACK (default 10000 ms). */
  connectTimeoutMs?: number;
  /** MQTT client id; random by default. */
  clientId?: string;
  /** Delay before a refused subscription is asked for again (default 60000 ms). */
  resubscribeMs?: number;
  log: Logger;
}

const DEFAULT_RECONNECT_PERIOD_MS = 2000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10000;
const DEFAULT_RESUBSCRIBE_MS = 60000;

function toNumber(v: UInt64Like | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
  return undefined;
}

/** A Sparkplug `seq` (0..255), or undefined if absent or out of range. */
function sparkplugSeq(p: SparkplugPayload): number | undefined {
  const seq = toNumber(p.seq);
  return seq !== undefined && Number.isInteger(seq) && seq >= 0 && seq <= 255 ? seq : undefined;
}

function aliasKey(alias: UInt64Like): string {
  return BigInt(alias).toString();
}

export class ChangeFeed extends Feed {
  private readonly opts: ChangeFeedOptions;
  private readonly topics: { birth: string; data: string; death: string };
  /** Lower-cased application UUID -> the caller's spelling. */
  private readonly apps: Map<string, string>;

  private client: MqttClient | undefined;
  /** Whether an MQTT error has been logged at warn level since the last connection. */
  private errorLogged = false;

  /** State learned from the Config Store's latest NBIRTH. */
  private aliases: Map<string, string> | undefined;
  private birthBdSeq: number | undefined;
  private lastSeq: number | undefined;

  constructor(opts: ChangeFeedOptions) {
    super(opts, opts.log.child({ component: 'change-feed', sparkplug: `${opts.group}/${opts.node}` }));
    this.opts = opts;
    this.topics = {
      birth: topic(opts.group, 'NBIRTH', opts.node),
      data: topic(opts.group, 'NDATA', opts.node),
      death: topic(opts.group, 'NDEATH', opts.node),
    };
    this.apps = new Map(opts.apps.map((a) => [a.toLowerCase(), a]));
  }

  protected async end(): Promise<void> {
    const client = this.client;
    if (!client) return;
    try {
      await client.endAsync(!client.connected);
    } catch (err) {
      this.log.debug({ err }, 'Error closing MQTT connection');
    }
  }

  // -------------------------------------------------------------------------
  // Connection

  protected begin(): void {
    const o = this.opts;
    const clientOpts: IClientOptions = {
      protocolVersion: o.protocolVersion ?? 4,
      clean: true,
      // Subscriptions are made explicitly on every connect.
      resubscribe: false,
      reconnectPeriod: o.reconnectPeriodMs ?? DEFAULT_RECONNECT_PERIOD_MS,
      connectTimeout: o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      queueQoSZero: false,
    };
    if (o.username) clientOpts.username = o.username;
    if (o.password) clientOpts.password = o.password;
    if (o.clientId !== undefined) clientOpts.clientId = o.clientId;

    this.log.info({ url: o.mqttUrl }, 'Connecting change feed');
    const client = mqtt.connect(o.mqttUrl, clientOpts);
    this.client = client;

    client.on('connect', () => {
      const gen = ++this.generation;
      this.onConnect(client, gen).catch((err: unknown) => {
        if (gen === this.generation && !this.stopped) this.log.warn({ err }, 'Change feed subscription failed');
      });
    });
    client.on('close', () => this.onClose());
    client.on('error', (err) => {
      // Reconnection repeats the same error every period: warn once per outage.
      const level = this.errorLogged ? 'debug' : 'warn';
      this.errorLogged = true;
      this.log[level]({ err: err.message }, 'Change feed MQTT error');
    });
    client.on('message', (t, payload) => {
      try {
        this.onMessage(t, payload);
      } catch (err) {
        this.log.warn({ err, topic: t }, 'Error handling Config Store notification');
      }
    });
  }

  private async onConnect(client: MqttClient, gen: number): Promise<void> {
    const refused = await subscribeChecked(client, [this.topics.birth, this.topics.data, this.topics.death], 1);
    if (gen !== this.generation || this.stopped) return;
    if (refused.length > 0) {
      this.log.error({ refused: refused.map(refusalText) }, 'Config Store notification subscriptions refused');
      this.safeEmit('unavailable', 'refused');
      this.firstAttemptDone();
      this.retryIn(this.opts.resubscribeMs ?? DEFAULT_RESUBSCRIBE_MS, () => {
        if (gen !== this.generation) return;
        this.onConnect(client, gen).catch((e: unknown) => this.log.warn({ err: e }, 'Change feed subscription failed'));
      });
      return;
    }
    // Sequence tracking only holds within one session.
    this.lastSeq = undefined;
    this.errorLogged = false;
    this.log.info('Change feed connected');
    this.connectedNow();
  }

  private onClose(): void {
    if (this.stopped) return;
    this.generation++;
    this.lastSeq = undefined;
    if (this.disconnectedNow()) {
      this.log.warn('Change feed disconnected');
      this.safeEmit('unavailable', 'unreachable');
    } else if (!this.started) {
      this.log.warn({ url: this.opts.mqttUrl }, 'Change feed cannot connect; resyncing without notifications');
      this.safeEmit('unavailable', 'unreachable');
    }
    this.firstAttemptDone();
  }

  // -------------------------------------------------------------------------
  // Messages

  private onMessage(t: string, raw: Buffer): void {
    if (this.stopped) return;
    const parsed = parseTopic(t);
    if (!parsed || parsed.group !== this.opts.group || parsed.node !== this.opts.node || parsed.device !== undefined) {
      this.log.debug({ topic: t }, 'Ignoring message on unexpected topic');
      return;
    }
    let payload: SparkplugPayload;
    try {
      payload = decodePayload(raw);
    } catch (err) {
      this.log.warn({ topic: t, err: (err as Error).message }, 'Ignoring malformed Sparkplug payload');
      return;
    }
    switch (parsed.type) {
      case 'NBIRTH':
        this.onBirth(payload);
        break;
      case 'NDATA':
        this.onData(payload);
        break;
      case 'NDEATH':
        this.onDeath(payload);
        break;
      default:
        break;
    }
  }

  private onBirth(p: SparkplugPayload): void {
    const aliases = new Map<string, string>();
    let bdSeq: number | undefined;
    for (const m of p.metrics ?? []) {
      if (m.name === undefined) continue;
      if (m.alias !== undefined) aliases.set(aliasKey(m.alias), m.name);
      if (m.name === 'bdSeq') bdSeq = toNumber(m.value as UInt64Like | undefined);
    }
    this.aliases = aliases;
    this.birthBdSeq = bdSeq;
    this.lastSeq = sparkplugSeq(p);
    this.log.info({ bdSeq }, 'Config Store NBIRTH');
    this.resync('birth');
  }

  private onData(p: SparkplugPayload): void {
    const seq = sparkplugSeq(p);
    if (seq === undefined) {
      this.log.warn({ seq: String(p.seq) }, 'NDATA without a valid seq; gap detection suspended until the next one');
    } else if (this.lastSeq !== undefined && seq !== (this.lastSeq + 1) % 256) {
      this.log.warn({ expected: (this.lastSeq + 1) % 256, seq }, 'Config Store NDATA sequence gap');
      this.resync('gap');
    }
    this.lastSeq = seq;

    let unattributable = false;
    for (const m of p.metrics ?? []) {
      const name = this.metricName(m);
      if (name === undefined) {
        unattributable = true;
        continue;
      }
      if (name !== LAST_CHANGED_APPLICATION) continue;
      if (typeof m.value !== 'string' || m.isNull === true) {
        this.log.warn({ type: m.type }, `Ignoring ${LAST_CHANGED_APPLICATION} without a string value`);
        continue;
      }
      const app = this.apps.get(m.value.toLowerCase());
      if (app !== undefined) this.notify(app);
    }
    if (unattributable) {
      this.log.warn('NDATA metric with an unknown alias and no NBIRTH seen; resyncing');
      this.resync('gap');
    }
  }

  private onDeath(p: SparkplugPayload): void {
    const bdSeqMetric = p.metrics?.find((m) => m.name === 'bdSeq');
    const bdSeq = toNumber(bdSeqMetric?.value as UInt64Like | undefined);
    if (bdSeq !== undefined && this.birthBdSeq !== undefined && bdSeq !== this.birthBdSeq) {
      this.log.debug({ bdSeq, birthBdSeq: this.birthBdSeq }, 'Ignoring NDEATH of an earlier session');
      return;
    }
    this.log.info({ bdSeq }, 'Config Store NDEATH');
    this.aliases = undefined;
    this.birthBdSeq = undefined;
    this.lastSeq = undefined;
  }

  /**
   * The metric's name, from the metric itself or the alias the NBIRTH
   * declared. Undefined only if it has an alias that cannot be resolved
   * because no NBIRTH has been seen; '' for an alias the NBIRTH did not
   * declare (not ours to interpret).
   */
  private metricName(m: SparkplugMetric): string | undefined {
    if (m.name !== undefined) return m.name;
    if (m.alias === undefined) return '';
    if (this.aliases === undefined) return undefined;
    return this.aliases.get(aliasKey(m.alias)) ?? '';
  }
}
