/**
 * The Cluster Manager's own Sparkplug B 3.0 edge node.
 *
 * The service calls `setNodeMetrics`, `setDevice` and `removeDevice`
 * whenever it likes, connected or not; the node turns the difference between
 * that model and what the current MQTT session has already published into
 * NBIRTH/DBIRTH/NDATA/DDATA/DDEATH messages. All publishing goes through one
 * serial queue, so `seq` is continuous as subscribers observe it, and every
 * payload is built from the model at the moment it is sent, so births after
 * a reconnect always carry the current state.
 *
 * Connections are made one at a time by this module (mqtt.js automatic
 * reconnection is off) because each CONNECT needs a will carrying a fresh,
 * already persisted `bdSeq`.
 */
import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { silentLogger, type Logger } from '../lib/log.js';
import { refusalText, subscribeChecked, type Refusal } from '../lib/mqtt-subscribe.js';
import {
  decodePayload,
  encodePayload,
  SPARKPLUG_NAMESPACE,
  topic,
  type MessageType,
  type SparkplugMetric,
  type SparkplugPayload,
} from '../lib/sparkplug/index.js';
import { grantText, permissionFor } from './acl.js';
import { BdSeqStore } from './bdseq.js';
import {
  BDSEQ_METRIC,
  DEVICE_REBIRTH_METRIC,
  FACTORYPLUS_PAYLOAD_UUID,
  NodeModel,
  REBIRTH_METRIC,
  type ClusterDeviceState,
  type DeviceEntry,
  type DeviceInfo,
  type NodeMetricsUpdate,
} from './model.js';
import { Session } from './session.js';

export interface SparkplugNodeOptions {
  mqttUrl: string;
  username?: string;
  password?: string;
  /** 5 (default) or 4; the embedded aedes broker only speaks 4 (MQTT 3.1.1). */
  protocolVersion?: 4 | 5;
  /** Sparkplug group id. */
  group: string;
  /** Sparkplug edge node id. */
  node: string;
  /**
   * Where the last used bdSeq is kept, so a restarted process continues
   * from it instead of reusing a value a host may still associate with the
   * previous session. Written atomically before every CONNECT.
   */
  bdSeqFile: string;
  /** `Instance_UUID`: this Cluster Manager's own principal/device UUID. */
  instanceUuid: string;
  /** `Service_UUID`: normally `CLUSTER_MANAGER_SERVICE_UUID`. */
  serviceUuid: string;
  /**
   * `Service_URL`, the service's external URL. The ACS Directory registers
   * a service provider from every birth with the service schema, taking
   * its URL from this metric; without it the advertisement has no URL.
   */
  serviceUrl?: string;
  /**
   * Sparkplug host id of the primary host application. When set, births
   * wait for its `spBv1.0/STATE/<id>` to say online, and the node dies and
   * reconnects when it goes offline (Sparkplug 3.0 primary host rules).
   */
  primaryHostId?: string;
  deviceInfo?: DeviceInfo;
  /** Random by default. */
  clientId?: string;
  /** Delay before each reconnection attempt (default 2000 ms). */
  reconnectPeriodMs?: number;
  /** How long one CONNECT may take (default 10000 ms). */
  connectTimeoutMs?: number;
  log?: Logger;
}

export interface SparkplugNodeEvents {
  /** CONNACK received; births follow once subscribed (and the primary host is online). */
  connected: [bdSeq: number];
  /** A connection that had been established has closed. */
  disconnected: [];
  /** The broker refused the command (or STATE) subscriptions: nothing is published until it grants them. */
  refused: [err: SubscriptionRefusedError];
  /** NBIRTH and the DBIRTHs of every device known at that moment have been published. */
  born: [bdSeq: number];
}

/** Health/metrics view of the node. */
export interface SparkplugNodeStatus {
  connected: boolean;
  born: boolean;
  /** bdSeq of the current or latest connection; undefined before the first. */
  bdSeq: number | undefined;
  /** Why the node cannot publish although connected (a refused subscription), until a connection succeeds. */
  failure?: string;
}

/**
 * The broker refused a subscription the node needs before it may be born.
 * Its message names each refused topic and the grant that allows it.
 */
export class SubscriptionRefusedError extends Error {
  constructor(
    readonly refused: Refusal[],
    readonly mqttUrl: string,
    readonly username: string | undefined,
  ) {
    const who = username === undefined ? 'the anonymous client' : `the account ${username}`;
    const grants = [...new Set(refused.map((r) => grantText(permissionFor(r.topic))))];
    super(
      `the MQTT broker at ${mqttUrl} refused ${who} the subscription to ${refused.map(refusalText).join(', ')}; ` +
        `the Sparkplug node needs it before it may publish: ${grants.join('; ')} (or allow ${who} to subscribe to it in the broker's ACL)`,
    );
    this.name = 'SubscriptionRefusedError';
  }
}

const DEFAULT_DEVICE_INFO: Required<DeviceInfo> = {
  manufacturer: 'AMRC',
  model: 'Factory+ Cluster Manager',
  serial: 'unknown',
};

export class SparkplugNode extends EventEmitter<SparkplugNodeEvents> {
  private readonly opts: SparkplugNodeOptions;
  private readonly log: Logger;
  private readonly model: NodeModel;
  private readonly bdSeqs: BdSeqStore;
  private readonly topics: { ncmd: string; dcmd: string; ndeath: string; state: string | undefined };

  private session: Session | undefined;
  /** Tail of the serial publish queue. */
  private queue: Promise<void> = Promise.resolve();
  private syncQueued = false;
  private running: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  /** Timestamp of the newest primary host STATE seen, to ignore stale (e.g. retained) ones. */
  private lastStateTimestamp: number | undefined;
  private failures = 0;
  /** The latest refused subscription, cleared by a granted one. */
  private refusal: SubscriptionRefusedError | undefined;
  /** Settles start(): granted, refused, or the first connection ended without an answer. */
  private firstAttempt: { resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(opts: SparkplugNodeOptions) {
    super();
    this.opts = opts;
    this.log = (opts.log ?? silentLogger).child({ sparkplug: `${opts.group}/${opts.node}` });
    const t = (type: MessageType): string => topic(opts.group, type, opts.node);
    if (opts.primaryHostId !== undefined && !/^[^/+#]+$/.test(opts.primaryHostId)) {
      throw new Error(`Invalid Sparkplug host id ${JSON.stringify(opts.primaryHostId)}`);
    }
    this.topics = {
      ncmd: t('NCMD'),
      // topic() rejects wildcards, so this filter is built by hand from a validated node topic.
      dcmd: `${SPARKPLUG_NAMESPACE}/${opts.group}/DCMD/${opts.node}/+`,
      ndeath: t('NDEATH'),
      state: opts.primaryHostId === undefined ? undefined : `spBv1.0/STATE/${opts.primaryHostId}`,
    };
    this.model = new NodeModel({
      instanceUuid: opts.instanceUuid,
      serviceUuid: opts.serviceUuid,
      serviceUrl: opts.serviceUrl,
      deviceInfo: { ...DEFAULT_DEVICE_INFO, ...opts.deviceInfo },
    });
    this.bdSeqs = new BdSeqStore(opts.bdSeqFile, this.log);
  }

  // -------------------------------------------------------------------------
  // Public API

  /**
   * Reserves the first bdSeq and makes the first connection attempt;
   * resolves once the broker granted the command subscriptions, or once
   * that attempt ended without reaching it (connecting goes on in the
   * background: the service works without MQTT). Rejects, and stops, with a
   * SubscriptionRefusedError when the broker refuses a subscription: that
   * is a missing permission, which no retry mends, and start-up must say so
   * rather than wait. A broken `bdSeqFile` rejects too.
   */
  async start(): Promise<void> {
    if (this.running || this.stopped) throw new Error('Sparkplug node already started');
    const first = await this.bdSeqs.next();
    const settled = new Promise<void>((resolve, reject) => {
      this.firstAttempt = { resolve, reject };
    });
    this.running = this.run(first);
    await settled;
  }

  /** Settles start() once; later outcomes only go to the log, status() and events. */
  private settleStart(err?: Error): void {
    const f = this.firstAttempt;
    this.firstAttempt = undefined;
    if (err) f?.reject(err);
    else f?.resolve();
  }

  /**
   * Publishes NDEATH (QoS 1, acknowledged) after anything already queued,
   * then disconnects cleanly so the broker discards the will. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.wake?.();
      const s = this.session;
      await this.serial(async () => {
        if (s?.alive && s.connected) await this.publishDeath(s);
      });
      if (s?.alive) await s.client.endAsync(!s.connected, this.disconnectPacket());
      await this.running;
    })();
    return this.stopping;
  }

  /** Node metric update; only changed metrics go out, as one NDATA. */
  setNodeMetrics(update: NodeMetricsUpdate): void {
    if (this.model.setNodeMetrics(update)) this.scheduleSync();
  }

  /**
   * Adds or updates an edge cluster. The device id is the cluster UUID
   * because cluster names may contain characters topics cannot. Throws
   * TypeError on invalid state rather than failing a later publish.
   */
  setDevice(uuid: string, state: ClusterDeviceState): void {
    topic(this.opts.group, 'DBIRTH', this.opts.node, uuid); // validates the id
    if (this.model.setDevice(uuid, state)) this.markDirty(uuid);
  }

  /** Forgets an edge cluster; DDEATH if it was born on the current connection. */
  removeDevice(uuid: string): void {
    if (this.model.removeDevice(uuid)) this.markDirty(uuid);
  }

  /** Devices changed since the last sync: a sync looks at these, not at every cluster. */
  private readonly dirty = new Set<string>();

  private markDirty(uuid: string): void {
    this.dirty.add(uuid);
    this.scheduleSync();
  }

  /** Republishes NBIRTH and every DBIRTH on the current connection (same bdSeq). */
  rebirth(): void {
    if (this.session) this.session.rebirthRequested = true;
    this.scheduleSync();
  }

  get connected(): boolean {
    return this.session?.alive === true && this.session.connected;
  }

  get born(): boolean {
    return this.session?.alive === true && this.session.born;
  }

  get bdSeq(): number | undefined {
    return this.bdSeqs.current;
  }

  status(): SparkplugNodeStatus {
    const s: SparkplugNodeStatus = { connected: this.connected, born: this.born, bdSeq: this.bdSeq };
    if (this.refusal) s.failure = this.refusal.message;
    return s;
  }

  /** The refused subscription that keeps the node from publishing, if any. */
  get failure(): SubscriptionRefusedError | undefined {
    return this.refusal;
  }

  // -------------------------------------------------------------------------
  // Connection loop

  private async run(first: number): Promise<void> {
    let bdSeq: number | undefined = first;
    while (!this.stopped) {
      let sent = true;
      try {
        bdSeq ??= await this.bdSeqs.next();
        if (this.stopped) break;
        sent = await this.connectOnce(bdSeq);
      } catch (err) {
        this.log.error({ err }, 'Sparkplug connection attempt failed');
      }
      // A bdSeq is spent only once a CONNECT carrying its will went out: an
      // attempt that never reached the broker (refused, unreachable) keeps
      // it, so the file is not rewritten on every failed TCP attempt.
      if (sent) bdSeq = undefined;
      // The first attempt is over, however it ended (a refusal has settled it already).
      this.settleStart();
      if (this.stopped) break;
      await this.sleep(this.opts.reconnectPeriodMs ?? 2000);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /**
   * One MQTT connection, from CONNECT to close. Resolves with whether a
   * CONNECT packet was sent at all.
   */
  private connectOnce(bdSeq: number): Promise<boolean> {
    const o = this.opts;
    const clientOpts: IClientOptions = {
      protocolVersion: o.protocolVersion ?? 5,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: o.connectTimeoutMs ?? 10000,
      resubscribe: false,
      // Dropped rather than queued: a new connection starts with births anyway.
      queueQoSZero: false,
      will: { topic: this.topics.ndeath, payload: this.deathPayload(bdSeq), qos: 1, retain: false },
    };
    if (o.username !== undefined) clientOpts.username = o.username;
    if (o.password !== undefined) clientOpts.password = o.password;
    if (o.clientId !== undefined) clientOpts.clientId = o.clientId;

    this.log.debug({ bdSeq }, 'Connecting to MQTT');
    const client: MqttClient = mqtt.connect(o.mqttUrl, clientOpts);
    const s = new Session(client, bdSeq);
    this.session = s;

    // mqtt.js queues the CONNECT on the stream as it creates it, so the
    // CONNECT went out exactly when the connection was established. Streams
    // without a 'connect' event (WebSocket) count once CONNACK arrives.
    let reached = false;
    (client.stream as Partial<EventEmitter> | undefined)?.once?.('connect', () => {
      reached = true;
    });
    return new Promise((resolve) => {
      client.on('connect', () => {
        reached = true;
        s.connected = true;
        this.failures = 0;
        this.log.info({ bdSeq }, 'Connected to MQTT');
        this.emit('connected', bdSeq);
        void this.onConnect(s);
      });
      client.on('message', (t, payload) => this.onMessage(s, t, payload));
      client.on('error', (err) => {
        // One warning per outage; the loop retries anyway.
        if (this.failures++ === 0) this.log.warn({ err: err.message }, 'MQTT error');
        else this.log.debug({ err: err.message }, 'MQTT error');
      });
      client.once('close', () => {
        s.alive = false;
        s.born = false;
        client.end(true);
        if (s.connected) {
          this.log.info({ bdSeq }, 'Disconnected from MQTT');
          this.emit('disconnected');
        }
        resolve(reached);
      });
    });
  }

  /**
   * Command (and STATE) subscriptions come before any birth, as Sparkplug
   * requires. A refusal during start() ends start-up; later (the broker's
   * ACL changed under a running service) it is logged as an error naming
   * the topic and the grant, shown by status(), and retried every
   * reconnection period so that a fixed ACL is picked up without a restart.
   */
  private async onConnect(s: Session): Promise<void> {
    const filters = [this.topics.ncmd, this.topics.dcmd, ...(this.topics.state ? [this.topics.state] : [])];
    let refused: Refusal[];
    try {
      refused = await subscribeChecked(s.client, filters, 1);
    } catch (err) {
      if (s.alive) {
        this.log.error({ err }, 'Cannot subscribe to Sparkplug commands; reconnecting');
        s.client.end(true);
      }
      return;
    }
    if (refused.length > 0) {
      const err = new SubscriptionRefusedError(refused, this.opts.mqttUrl, this.opts.username);
      const repeated = this.refusal?.message === err.message;
      this.refusal = err;
      if (this.firstAttempt) {
        this.log.error({ refused: refused.map((r) => r.topic) }, err.message);
        this.stopped = true;
        this.settleStart(err);
      } else {
        this.log[repeated ? 'debug' : 'error']({ refused: refused.map((r) => r.topic) }, `${err.message}; retrying`);
      }
      this.emit('refused', err);
      if (s.alive) s.client.end(true);
      return;
    }
    if (this.refusal) this.log.info('Sparkplug command subscriptions granted');
    this.refusal = undefined;
    s.subscribed = true;
    this.settleStart();
    this.scheduleSync();
  }

  // -------------------------------------------------------------------------
  // Incoming messages

  private onMessage(s: Session, t: string, payload: Buffer): void {
    if (!s.alive) return;
    if (t === this.topics.state) this.onState(s, payload);
    else if (t === this.topics.ncmd) this.onNodeCommand(s, payload);
    else this.onDeviceCommand(s, t.slice(t.lastIndexOf('/') + 1), payload);
  }

  /**
   * DCMD: `Device Control/Rebirth` republishes that device's DBIRTH, as ACS
   * devices do, so a consumer that missed one birth need not ask the whole
   * node (and its thousands of devices) to rebirth.
   */
  private onDeviceCommand(s: Session, device: string, payload: Buffer): void {
    const cmd = this.decodeCommand(payload, 'DCMD');
    if (!cmd) return;
    for (const m of cmd.metrics ?? []) {
      if (
        m.name === DEVICE_REBIRTH_METRIC &&
        m.type === 'Boolean' &&
        m.value === true &&
        this.model.devices.has(device)
      ) {
        this.log.info({ device }, 'Device rebirth requested');
        s.devices.delete(device);
        this.markDirty(device);
      } else {
        this.log.debug({ device, metric: m.name ?? String(m.alias), type: m.type }, 'Ignoring unsupported DCMD metric');
      }
    }
  }

  private decodeCommand(payload: Buffer, kind: 'NCMD' | 'DCMD'): SparkplugPayload | undefined {
    try {
      return decodePayload(payload);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, `Ignoring malformed ${kind}`);
      return undefined;
    }
  }

  private onNodeCommand(s: Session, payload: Buffer): void {
    const cmd = this.decodeCommand(payload, 'NCMD');
    if (!cmd) return;
    for (const m of cmd.metrics ?? []) {
      if (m.name === REBIRTH_METRIC && m.type === 'Boolean' && m.value === true) {
        this.log.info('Rebirth requested');
        s.rebirthRequested = true;
        this.scheduleSync();
      } else {
        this.log.debug({ metric: m.name ?? String(m.alias), type: m.type }, 'Ignoring unsupported NCMD metric');
      }
    }
  }

  /** Sparkplug 3.0 STATE: JSON `{"online": boolean, "timestamp": ms}`. */
  private onState(s: Session, payload: Buffer): void {
    let state: unknown;
    try {
      state = JSON.parse(payload.toString('utf8'));
    } catch {
      state = undefined;
    }
    const st = state as { online?: unknown; timestamp?: unknown } | undefined;
    if (typeof st !== 'object' || st === null || typeof st.online !== 'boolean') {
      this.log.warn({ topic: this.topics.state }, 'Ignoring malformed primary host STATE');
      return;
    }
    if (typeof st.timestamp === 'number') {
      if (this.lastStateTimestamp !== undefined && st.timestamp < this.lastStateTimestamp) {
        this.log.debug({ timestamp: st.timestamp }, 'Ignoring stale primary host STATE');
        return;
      }
      this.lastStateTimestamp = st.timestamp;
    }
    s.hostOnline = st.online;
    this.log.info({ online: st.online }, 'Primary host state');
    if (st.online) {
      this.scheduleSync();
      return;
    }
    // Checked in the queue: a birth in progress may finish first.
    void this.serial(async () => {
      if (!s.alive || !s.born || s.hostOnline || this.stopped) return;
      this.log.info('Primary host offline: NDEATH and reconnect');
      await this.publishDeath(s);
      await s.client.endAsync(false, this.disconnectPacket());
    });
  }

  // -------------------------------------------------------------------------
  // Publishing

  /** Runs `fn` after everything queued before it; errors are logged, never thrown. */
  private serial(fn: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(fn).catch((err: unknown) => {
      if (this.session?.alive) this.log.warn({ err }, 'Sparkplug publish failed');
      else this.log.debug({ err }, 'Sparkplug publish failed after disconnect');
    });
    return this.queue;
  }

  /** Coalesces changes: at most one sync waits in the queue at a time. */
  private scheduleSync(): void {
    if (this.syncQueued) return;
    this.syncQueued = true;
    void this.serial(async () => {
      this.syncQueued = false;
      const s = this.session;
      if (s) await this.sync(s);
    });
  }

  private canPublish(s: Session): boolean {
    return s.alive && s.subscribed && (this.topics.state === undefined || s.hostOnline);
  }

  /** Brings what the session has published up to date with the model. */
  private async sync(s: Session): Promise<void> {
    if (!this.canPublish(s)) return;
    if (!s.born || s.rebirthRequested) {
      // Once stopping, only changes queued before the NDEATH still go out; no new births.
      if (!this.stopped) await this.birthAll(s);
      return;
    }
    const now = Date.now();
    const nodeChanges = this.model.node.changes(s.nodePublished, now);
    if (nodeChanges.length > 0) {
      s.nodePublished = this.model.node.snapshot();
      await this.send(s, 'NDATA', undefined, { timestamp: now, metrics: nodeChanges });
    }
    const devices = this.model.devices;
    for (const uuid of [...this.dirty]) {
      if (!this.canPublish(s)) return;
      // Taken off before publishing: a change made meanwhile marks it again.
      this.dirty.delete(uuid);
      const entry = devices.get(uuid);
      let born = s.devices.get(uuid);
      if (born && born.entry !== entry) {
        // Removed, or removed and added again (new aliases): it dies first.
        s.devices.delete(uuid);
        born = undefined;
        await this.send(s, 'DDEATH', uuid, { timestamp: Date.now() });
      }
      if (!entry) continue;
      if (!born) {
        await this.deviceBirth(s, entry);
        continue;
      }
      const ts = Date.now();
      const changes = entry.metrics.changes(born.published, ts);
      if (changes.length === 0) continue;
      born.published = entry.metrics.snapshot();
      await this.send(s, 'DDATA', uuid, { timestamp: ts, metrics: changes });
    }
  }

  /** NBIRTH (seq 0) and a DBIRTH for every device, from the current model. */
  private async birthAll(s: Session): Promise<void> {
    s.rebirthRequested = false;
    s.born = false;
    s.devices.clear();
    s.seq = 0;
    const now = Date.now();
    const metrics: SparkplugMetric[] = [
      { name: BDSEQ_METRIC, type: 'Int64', value: BigInt(s.bdSeq), timestamp: now },
      { name: REBIRTH_METRIC, type: 'Boolean', value: false, timestamp: now },
      ...this.model.node.birth(now),
    ];
    s.nodePublished = this.model.node.snapshot();
    await this.send(s, 'NBIRTH', undefined, { timestamp: now, uuid: FACTORYPLUS_PAYLOAD_UUID, metrics });
    s.born = true;
    for (const entry of [...this.model.devices.values()]) {
      if (!this.canPublish(s) || s.rebirthRequested) return;
      if (this.model.devices.get(entry.uuid) === entry) await this.deviceBirth(s, entry);
    }
    this.log.info({ bdSeq: s.bdSeq, devices: s.devices.size }, 'Published NBIRTH and DBIRTHs');
    this.emit('born', s.bdSeq);
  }

  private async deviceBirth(s: Session, entry: DeviceEntry): Promise<void> {
    const now = Date.now();
    s.devices.set(entry.uuid, { entry, published: entry.metrics.snapshot() });
    await this.send(s, 'DBIRTH', entry.uuid, {
      timestamp: now,
      metrics: [
        { name: DEVICE_REBIRTH_METRIC, type: 'Boolean', value: false, timestamp: now },
        ...entry.metrics.birth(now),
      ],
    });
  }

  /** Publishes with the session's next seq; QoS 0 and not retained, as Sparkplug requires. */
  private async send(
    s: Session,
    type: MessageType,
    device: string | undefined,
    payload: SparkplugPayload,
  ): Promise<void> {
    const t = topic(this.opts.group, type, this.opts.node, device);
    const bytes = Buffer.from(encodePayload({ ...payload, seq: s.nextSeq() }));
    await s.client.publishAsync(t, bytes, { qos: 0, retain: false });
  }

  /**
   * An intentional disconnect under MQTT 5 carries reason code 0x04
   * (Disconnect with Will Message), so the broker publishes the NDEATH will
   * as well (Sparkplug 3.0, payloads-ndeath-will-message-publisher-
   * disconnect-mqtt50); MQTT 3.1.1 has no reason code and discards the will,
   * which is why the NDEATH is always published explicitly first.
   */
  private disconnectPacket(): { reasonCode?: number } {
    return (this.opts.protocolVersion ?? 5) === 5 ? { reasonCode: 0x04 } : {};
  }

  private deathPayload(bdSeq: number): Buffer {
    const now = Date.now();
    return Buffer.from(
      encodePayload({
        timestamp: now,
        metrics: [{ name: BDSEQ_METRIC, type: 'Int64', value: BigInt(bdSeq), timestamp: now }],
      }),
    );
  }

  /** NDEATH without seq, QoS 1, waiting for the broker's acknowledgement. */
  private async publishDeath(s: Session): Promise<void> {
    s.born = false;
    await s.client.publishAsync(this.topics.ndeath, this.deathPayload(s.bdSeq), { qos: 1, retain: false });
    this.log.info({ bdSeq: s.bdSeq }, 'Published NDEATH');
  }
}
