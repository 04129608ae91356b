/**
 * Change feed from the Config Store's notify/v2 WebSocket: one SEARCH per
 * watched application, turned into the hints the MQTT feed gives.
 *
 * Events (as ChangeFeed's):
 * - `changed(app)`: an update after the initial answer for that
 *   application (a child created, changed or removed, or access gained or
 *   lost), coalesced over `debounceMs` like the MQTT feed;
 * - `resync(reason)`: `start` once (after the initial answers of the first
 *   connection, or when the first attempt fails), `reconnect` after the
 *   initial answers of every later connection (changes may have been missed
 *   in between), `timer` every `resyncIntervalMs` after the last resync;
 * - `state(connected | disconnected)`: connected once every SEARCH has had
 *   its initial answer;
 * - `unavailable('unreachable')`: the first attempt failed or the socket was
 *   lost.
 *
 * A socket that fails, closes or has a subscription closed by the service
 * is opened again after a delay that doubles from `backoffBaseMs` up to
 * `backoffMaxMs` (with jitter), and goes back to the base once connected. A
 * 401 is retried at once with a fresh token, as the Factory+ clients do.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from '../lib/log.js';
import type { ChangeFeedEvents, ResyncReason } from './change-feed.js';
import { NotifyAuthError, openNotify, type NotifySocket, type NotifyUpdate } from './notify-v2-client.js';

export interface NotifyFeedOptions {
  /** The Config Store's base URL (looked up again on every connection). */
  baseUrl: () => Promise<string>;
  /** A bearer token for the Config Store; `fresh` after one was refused. */
  token: (baseUrl: string, fresh: boolean) => Promise<string>;
  /** Application UUIDs whose changes are reported. */
  apps: string[];
  /** Periodic full resync; 0 disables it. */
  resyncIntervalMs: number;
  debounceMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Connecting and authenticating must finish in this time (default 10000 ms). */
  connectTimeoutMs?: number;
  /** Keep-alive ping interval (default 30000 ms). */
  pingMs?: number;
  log: Logger;
}

export class NotifyFeed extends EventEmitter<ChangeFeedEvents> {
  private readonly log: Logger;
  private socket: NotifySocket | undefined;
  /** Subscription UUID -> application, for the current socket. */
  private subs = new Map<string, string>();
  private waitingInitial = new Set<string>();
  private isConnected = false;
  private started = false;
  private stopped = false;
  private starting: Promise<void> | undefined;
  private resolveStart: (() => void) | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<string, NodeJS.Timeout>();
  /** Incremented per socket so that late events of an old one are ignored. */
  private generation = 0;

  constructor(private readonly opts: NotifyFeedOptions) {
    super();
    this.log = opts.log.child({ component: 'change-feed', source: 'notify/v2' });
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /** Resolves once `resync('start')` has been emitted (first connection ready, or failed). Idempotent. */
  start(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('NotifyFeed has been stopped'));
    this.starting ??= new Promise<void>((resolve) => {
      this.resolveStart = resolve;
      void this.connect();
    });
    return this.starting;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.generation++;
    for (const t of [this.retryTimer, this.resyncTimer, ...this.pending.values()]) if (t) clearTimeout(t);
    this.pending.clear();
    this.resolveStart?.();
    this.resolveStart = undefined;
    if (this.isConnected) {
      this.isConnected = false;
      this.safeEmit('state', 'disconnected');
    }
    this.socket?.close();
    this.socket = undefined;
    this.log.info('Change feed stopped');
  }

  private async connect(fresh = false): Promise<void> {
    const gen = ++this.generation;
    let base = '';
    try {
      base = await this.opts.baseUrl();
      const token = await this.opts.token(base, fresh);
      if (gen !== this.generation || this.stopped) return;
      const socket = await openNotify(
        base,
        token,
        {
          onUpdate: (u) => {
            if (gen === this.generation) this.onUpdate(u);
          },
          onClose: (reason) => {
            if (gen === this.generation) this.lost(`socket closed (${reason})`);
          },
        },
        { timeoutMs: this.opts.connectTimeoutMs ?? 10000, pingMs: this.opts.pingMs ?? 30000 },
      );
      if (gen !== this.generation || this.stopped) {
        socket.close();
        return;
      }
      this.socket = socket;
      this.subs = new Map(this.opts.apps.map((app) => [randomUUID(), app]));
      this.waitingInitial = new Set(this.subs.keys());
      for (const [uuid, app] of this.subs) socket.send({ uuid, method: 'SEARCH', parent: `v2/app/${app}/object/` });
      if (this.subs.size === 0) this.ready();
    } catch (err) {
      if (gen !== this.generation || this.stopped) return;
      if (err instanceof NotifyAuthError && err.status === '401' && !fresh) {
        this.log.debug('notify/v2 token refused; fetching a new one');
        void this.connect(true);
        return;
      }
      this.lost(`cannot open notify/v2${base ? ` at ${base}` : ''}: ${(err as Error).message}`);
    }
  }

  private onUpdate(u: NotifyUpdate): void {
    const app = this.subs.get(u.uuid);
    if (app === undefined) return;
    if (u.status >= 300) {
      // The service closed the subscription: start again on a new socket.
      this.lost(`subscription for application ${app} closed by the Config Store (${u.status})`);
      return;
    }
    if (this.waitingInitial.delete(u.uuid)) {
      if (u.response && u.response.status >= 300) {
        this.log.warn({ app, status: u.response.status }, 'Config Store denies the notify/v2 search of an application');
      }
      if (this.waitingInitial.size === 0) this.ready();
      return;
    }
    this.notify(app);
  }

  private ready(): void {
    this.attempt = 0;
    this.isConnected = true;
    this.log.info({ apps: this.subs.size }, 'Change feed connected (notify/v2)');
    this.safeEmit('state', 'connected');
    if (!this.started) this.firstAttemptDone();
    else this.resync('reconnect');
  }

  private lost(reason: string): void {
    if (this.stopped) return;
    this.generation++;
    this.socket?.close();
    this.socket = undefined;
    const wasConnected = this.isConnected;
    if (wasConnected) {
      this.isConnected = false;
      this.safeEmit('state', 'disconnected');
    }
    const base = this.opts.backoffBaseMs ?? 500;
    const delay = Math.min(this.opts.backoffMaxMs ?? 30000, base * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt = Math.min(this.attempt + 1, 16);
    (wasConnected || !this.started ? this.log.warn : this.log.debug).call(
      this.log,
      { reason, retryMs: Math.round(delay) },
      'notify/v2 change feed lost; reconnecting',
    );
    if (wasConnected || !this.started) this.safeEmit('unavailable', 'unreachable');
    this.firstAttemptDone();
    this.retryTimer = setTimeout(() => {
      void this.connect();
    }, delay);
    this.retryTimer.unref();
  }

  private firstAttemptDone(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.resync('start');
    this.resolveStart?.();
    this.resolveStart = undefined;
  }

  private notify(app: string): void {
    const debounceMs = this.opts.debounceMs ?? 20;
    if (debounceMs === 0) {
      this.safeEmit('changed', app);
      return;
    }
    if (this.pending.has(app)) return;
    const timer = setTimeout(() => {
      this.pending.delete(app);
      if (!this.stopped) this.safeEmit('changed', app);
    }, debounceMs);
    timer.unref();
    this.pending.set(app, timer);
  }

  private resync(reason: ResyncReason): void {
    if (this.stopped) return;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = undefined;
    if (this.opts.resyncIntervalMs > 0) {
      this.resyncTimer = setTimeout(() => this.resync('timer'), this.opts.resyncIntervalMs);
      this.resyncTimer.unref();
    }
    this.safeEmit('resync', reason);
  }

  private safeEmit<K extends keyof ChangeFeedEvents>(event: K, ...args: ChangeFeedEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: ChangeFeedEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ err, event }, 'Change feed listener failed');
    }
  }
}
