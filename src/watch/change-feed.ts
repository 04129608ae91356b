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
import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { LAST_CHANGED_APPLICATION } from '../factoryplus/configdb.js';
import type { Logger } from '../lib/log.js';
import {
  decodePayload,
  parseTopic,
  topic,
  type SparkplugMetric,
  type SparkplugPayload,
  type UInt64Like,
} from '../lib/sparkplug/index.js';

export type ResyncReason = 'start' | 'birth' | 'reconnect' | 'timer' | 'gap';
export type FeedState = 'connected' | 'disconnected';

export type UnavailableReason = 'refused' | 'unreachable';

export interface ChangeFeedEvents {
  changed: [app: string];
  resync: [reason: ResyncReason];
  state: [state: FeedState];
  unavailable: [reason: UnavailableReason];
}

export interface ChangeFeedOptions {
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
  /** Periodic full resync; 0 disables it. */
  resyncIntervalMs: number;
  /** Window in which notifications for the same application are coalesced (default 20 ms; 0 emits each at once). */
  debounceMs?: number;
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

const DEFAULT_DEBOUNCE_MS = 20;
const DEFAULT_RECONNECT_PERIOD_MS = 2000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10000;
const DEFAULT_RESUBSCRIBE_MS = 60000;
/** SUBACK return codes from here up refuse a subscription (0x80 in MQTT 3.1.1, 0x80-0xA2 in MQTT 5). */
const SUBACK_FAILURE = 0x80;

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

export class ChangeFeed extends EventEmitter<ChangeFeedEvents> {
  private readonly opts: ChangeFeedOptions;
  private readonly log: Logger;
  private readonly topics: { birth: string; data: string; death: string };
  /** Lower-cased application UUID -> the caller's spelling. */
  private readonly apps: Map<string, string>;
  private readonly debounceMs: number;

  private client: MqttClient | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private stopped = false;
  private isConnected = false;
  /** Whether resync('start') has been emitted. */
  private started = false;
  /** Whether a connection has ever been established. */
  private everConnected = false;
  /** Incremented on every connect and close, so stale async work can tell. */
  private generation = 0;
  private resolveStart: (() => void) | undefined;
  /** Whether an MQTT error has been logged at warn level since the last connection. */
  private errorLogged = false;

  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<string, NodeJS.Timeout>();

  /** State learned from the Config Store's latest NBIRTH. */
  private aliases: Map<string, string> | undefined;
  private birthBdSeq: number | undefined;
  private lastSeq: number | undefined;

  constructor(opts: ChangeFeedOptions) {
    super();
    if (!Number.isFinite(opts.resyncIntervalMs) || opts.resyncIntervalMs < 0) {
      throw new Error(`resyncIntervalMs must be a non-negative number, got ${String(opts.resyncIntervalMs)}`);
    }
    const debounceMs = opts.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    if (!Number.isFinite(debounceMs) || debounceMs < 0) {
      throw new Error(`debounceMs must be a non-negative number, got ${String(opts.debounceMs)}`);
    }
    this.opts = opts;
    this.debounceMs = debounceMs;
    this.log = opts.log.child({ component: 'change-feed', sparkplug: `${opts.group}/${opts.node}` });
    this.topics = {
      birth: topic(opts.group, 'NBIRTH', opts.node),
      data: topic(opts.group, 'NDATA', opts.node),
      death: topic(opts.group, 'NDEATH', opts.node),
    };
    this.apps = new Map(opts.apps.map((a) => [a.toLowerCase(), a]));
  }

  /** True while the MQTT session is up and subscribed. */
  get connected(): boolean {
    return this.isConnected;
  }

  /**
   * Starts connecting. Resolves once `resync('start')` has been emitted:
   * after the first connection and subscription, or after the first
   * connection attempt failed (reconnection then continues in the
   * background). Attach listeners before calling. Idempotent.
   */
  start(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('ChangeFeed has been stopped'));
    this.starting ??= new Promise<void>((resolve) => {
      this.resolveStart = resolve;
      this.connect();
    });
    return this.starting;
  }

  /**
   * Disconnects and cancels all timers, including pending `changed`
   * emissions. If connected, a final `state('disconnected')` is emitted;
   * nothing follows it. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.generation++;
      this.clearResyncTimer();
      for (const t of this.pending.values()) clearTimeout(t);
      this.pending.clear();
      this.resolveStart?.();
      this.resolveStart = undefined;
      const client = this.client;
      if (this.isConnected) {
        this.isConnected = false;
        this.safeEmit('state', 'disconnected');
      }
      if (client) {
        try {
          await client.endAsync(!client.connected);
        } catch (err) {
          this.log.debug({ err }, 'Error closing MQTT connection');
        }
      }
      this.log.info('Change feed stopped');
    })();
    return this.stopping;
  }

  // -------------------------------------------------------------------------
  // Connection

  private connect(): void {
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
    const topics = [this.topics.birth, this.topics.data, this.topics.death];
    let granted: Array<{ topic: string; qos: number }>;
    try {
      granted = await client.subscribeAsync(topics, { qos: 1 });
    } catch (err) {
      // mqtt.js rejects a SUBACK that carries a failure code, in 3.1.1 and 5
      // alike, with the SUBACK attached (or, in older versions, its code).
      const codes = (err as { packet?: { granted?: unknown } }).packet?.granted;
      const code = (err as { code?: unknown }).code;
      if (Array.isArray(codes) && codes.length === topics.length && codes.every((c) => typeof c === 'number')) {
        granted = topics.map((topic, i) => ({ topic, qos: codes[i] as number }));
      } else if (typeof code === 'number' && code >= SUBACK_FAILURE) {
        granted = topics.map((topic) => ({ topic, qos: code }));
      } else throw err;
    }
    if (gen !== this.generation || this.stopped) return;
    const refused = granted.filter((g) => g.qos >= SUBACK_FAILURE).map((g) => g.topic);
    if (refused.length > 0) {
      this.log.error(
        { refused, code: granted.find((g) => g.qos >= SUBACK_FAILURE)?.qos },
        'Config Store notification subscriptions refused',
      );
      this.safeEmit('unavailable', 'refused');
      this.firstAttemptDone();
      const retry = setTimeout(() => {
        if (gen !== this.generation || this.stopped) return;
        this.onConnect(client, gen).catch((e: unknown) => this.log.warn({ err: e }, 'Change feed subscription failed'));
      }, this.opts.resubscribeMs ?? DEFAULT_RESUBSCRIBE_MS);
      retry.unref();
      return;
    }
    // Sequence tracking only holds within one session.
    this.lastSeq = undefined;
    this.errorLogged = false;
    const first = !this.everConnected;
    this.everConnected = true;
    this.isConnected = true;
    this.log.info('Change feed connected');
    this.safeEmit('state', 'connected');
    if (first && !this.started) this.firstAttemptDone();
    else this.resync('reconnect');
  }

  private onClose(): void {
    if (this.stopped) return;
    this.generation++;
    this.lastSeq = undefined;
    if (this.isConnected) {
      this.isConnected = false;
      this.log.warn('Change feed disconnected');
      this.safeEmit('state', 'disconnected');
      this.safeEmit('unavailable', 'unreachable');
    } else if (!this.started) {
      this.log.warn({ url: this.opts.mqttUrl }, 'Change feed cannot connect; resyncing without notifications');
      this.safeEmit('unavailable', 'unreachable');
    }
    this.firstAttemptDone();
  }

  /** Emits resync('start') and settles start(), the first time it is called. */
  private firstAttemptDone(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.resync('start');
    this.resolveStart?.();
    this.resolveStart = undefined;
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

  // -------------------------------------------------------------------------
  // Emission

  private notify(app: string): void {
    if (this.debounceMs === 0) {
      this.safeEmit('changed', app);
      return;
    }
    if (this.pending.has(app)) return;
    const timer = setTimeout(() => {
      this.pending.delete(app);
      if (!this.stopped) this.safeEmit('changed', app);
    }, this.debounceMs);
    timer.unref();
    this.pending.set(app, timer);
  }

  private resync(reason: ResyncReason): void {
    if (this.stopped) return;
    this.armResyncTimer();
    this.log.debug({ reason }, 'Resync');
    this.safeEmit('resync', reason);
  }

  private armResyncTimer(): void {
    this.clearResyncTimer();
    if (this.opts.resyncIntervalMs === 0 || this.stopped) return;
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = undefined;
      this.resync('timer');
    }, this.opts.resyncIntervalMs);
    this.resyncTimer.unref();
  }

  private clearResyncTimer(): void {
    if (this.resyncTimer !== undefined) clearTimeout(this.resyncTimer);
    this.resyncTimer = undefined;
  }

  /** Emits, logging (not propagating) anything a listener throws. */
  private safeEmit<K extends keyof ChangeFeedEvents>(event: K, ...args: ChangeFeedEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: ChangeFeedEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ err, event }, 'Change feed listener failed');
    }
  }
}
