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
import type { Logger } from '../lib/log.js';
import { Feed, type FeedTiming } from './feed.js';
import { NotifyAuthError, openNotify, type NotifySocket, type NotifyUpdate } from './notify-v2-client.js';

export interface NotifyFeedOptions extends FeedTiming {
  /** The Config Store's base URL (looked up again on every connection). */
  baseUrl: () => Promise<string>;
  /** A bearer token for the Config Store; `fresh` after one was refused. */
  token: (baseUrl: string, fresh: boolean) => Promise<string>;
  /** Application UUIDs whose changes are reported. */
  apps: string[];
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Connecting and authenticating must finish in this time (default 10000 ms). */
  connectTimeoutMs?: number;
  /** Keep-alive ping interval (default 30000 ms). */
  pingMs?: number;
  log: Logger;
}

export class NotifyFeed extends Feed {
  private socket: NotifySocket | undefined;
  /** Subscription UUID -> application, for the current socket. */
  private subs = new Map<string, string>();
  private waitingInitial = new Set<string>();
  private attempt = 0;

  constructor(private readonly opts: NotifyFeedOptions) {
    super(opts, opts.log.child({ component: 'change-feed', source: 'notify/v2' }));
  }

  protected begin(): void {
    void this.connect();
  }

  protected end(): Promise<void> {
    this.socket?.close();
    this.socket = undefined;
    return Promise.resolve();
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
    this.log.info({ apps: this.subs.size }, 'Change feed connected (notify/v2)');
    this.connectedNow();
  }

  private lost(reason: string): void {
    if (this.stopped) return;
    this.generation++;
    this.socket?.close();
    this.socket = undefined;
    const wasConnected = this.disconnectedNow();
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
    this.retryIn(delay, () => void this.connect());
  }
}
