/**
 * The change feed the manager listens to, from one of two sources:
 * Sparkplug notifications over MQTT (the Config Store's `Last_Changed`,
 * the primary source) or the Config Store's notify/v2 WebSocket.
 *
 * Modes (`CHANGE_FEED`):
 * - `mqtt`: MQTT only;
 * - `notify`: notify/v2 only;
 * - `auto`: MQTT, and notify/v2 as soon as MQTT is unavailable: the
 *   subscription refused (an installation whose MQTT permissions do not let
 *   this account read the Config Store's node) or the broker unreachable.
 *   Once started, the notify/v2 source keeps running, so a later switch in
 *   either direction loses nothing; MQTT is live again whenever its
 *   subscriptions are granted.
 *
 * Only the live source's events are passed on. A switch to a source that is
 * already connected emits `resync('reconnect')`, since the other may have
 * missed changes; `resync('start')` is emitted once.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../lib/log.js';
import type { ChangeFeedEvents, ResyncReason } from './feed.js';

export type FeedMode = 'mqtt' | 'notify' | 'auto';
export type FeedSource = 'mqtt' | 'notify';

/** What both sources offer. */
export interface FeedSourceImpl extends EventEmitter<ChangeFeedEvents> {
  readonly connected: boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface LiveFeedOptions {
  mode: FeedMode;
  /** Built only when the mode uses it. */
  mqtt: () => FeedSourceImpl;
  notify: () => FeedSourceImpl;
  log: Logger;
}

export interface LiveFeedEvents {
  changed: [app: string];
  resync: [reason: ResyncReason];
  state: ChangeFeedEvents['state'];
  /** The live source changed. */
  source: [source: FeedSource];
}

export class LiveFeed extends EventEmitter<LiveFeedEvents> {
  private readonly sources: Partial<Record<FeedSource, FeedSourceImpl>> = {};
  private current: FeedSource;
  private startEmitted = false;
  private stopped = false;

  constructor(private readonly opts: LiveFeedOptions) {
    super();
    this.current = opts.mode === 'notify' ? 'notify' : 'mqtt';
  }

  get mode(): FeedMode {
    return this.opts.mode;
  }

  /** The source whose events are passed on. */
  get live(): FeedSource {
    return this.current;
  }

  /** True while the live source is connected. */
  get connected(): boolean {
    return this.sources[this.current]?.connected ?? false;
  }

  /** True while the MQTT source is connected and subscribed. */
  get mqttConnected(): boolean {
    return this.sources.mqtt?.connected ?? false;
  }

  /**
   * Starts the source(s) of the mode. Resolves once the live source's first
   * attempt is over, connected or not: neither a refused subscription nor an
   * unreachable service holds start-up.
   */
  async start(): Promise<void> {
    if (this.opts.mode === 'notify') {
      await this.source('notify').start();
    } else {
      const mqtt = this.source('mqtt');
      if (this.opts.mode === 'auto') {
        mqtt.on('unavailable', (reason) => this.switchTo('notify', `MQTT ${reason}`));
        mqtt.on('state', (s) => {
          if (s === 'connected') this.switchTo('mqtt', 'MQTT subscribed');
        });
      }
      await mqtt.start();
      if (this.current === 'notify') await this.source('notify').start();
    }
    this.opts.log.info({ mode: this.opts.mode, live: this.current, connected: this.connected }, 'Change feed started');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(Object.values(this.sources).map((s) => s.stop()));
  }

  private source(which: FeedSource): FeedSourceImpl {
    let s = this.sources[which];
    if (s) return s;
    s = which === 'mqtt' ? this.opts.mqtt() : this.opts.notify();
    this.sources[which] = s;
    const live = () => this.current === which && !this.stopped;
    s.on('changed', (app) => {
      if (live()) this.emit('changed', app);
    });
    s.on('state', (st) => {
      if (live()) this.emit('state', st);
    });
    s.on('resync', (reason) => {
      if (live()) this.resync(reason);
    });
    return s;
  }

  private resync(reason: ResyncReason): void {
    if (reason === 'start' && this.startEmitted) reason = 'reconnect';
    if (reason === 'start') this.startEmitted = true;
    this.emit('resync', reason);
  }

  private switchTo(which: FeedSource, why: string): void {
    if (this.current === which || this.stopped) return;
    this.current = which;
    this.opts.log.warn({ live: which, why }, `Change feed switched to ${which === 'mqtt' ? 'MQTT' : 'notify/v2'}`);
    this.emit('source', which);
    const s = this.source(which);
    this.emit('state', s.connected ? 'connected' : 'disconnected');
    if (s.connected) this.resync('reconnect');
    else if (which === 'notify') {
      // Starting is idempotent; its first answers bring resync('start') or ('reconnect').
      s.start().catch((err: unknown) => this.opts.log.warn({ err }, 'notify/v2 change feed failed to start'));
    }
  }
}
