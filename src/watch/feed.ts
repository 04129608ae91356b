/**
 * What every change feed source shares, whatever its transport: the events,
 * a start that settles at the first `resync('start')`, per-application
 * coalescing of `changed`, the periodic resync, and a stop that cancels
 * every timer so nothing is emitted after it.
 *
 * A source calls `connectedNow()` once it can report changes,
 * `disconnectedNow()` when it no longer can, `firstAttemptDone()` when its
 * first attempt is over without a connection, `notify(app)` for each change
 * and `resync(reason)` when anything may have been missed. `generation` is
 * moved on by the source at every connect or loss, and by `stop()`, so that
 * late callbacks of an earlier connection can tell they are stale.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../lib/log.js';

export type ResyncReason = 'start' | 'birth' | 'reconnect' | 'timer' | 'gap';
export type FeedState = 'connected' | 'disconnected';

export type UnavailableReason = 'refused' | 'unreachable';

export interface ChangeFeedEvents {
  changed: [app: string];
  resync: [reason: ResyncReason];
  state: [state: FeedState];
  unavailable: [reason: UnavailableReason];
}

export interface FeedTiming {
  /** Periodic full resync; 0 disables it. */
  resyncIntervalMs: number;
  /** Window in which notifications for the same application are coalesced (default 20 ms; 0 emits each at once). */
  debounceMs?: number;
}

const DEFAULT_DEBOUNCE_MS = 20;

export abstract class Feed extends EventEmitter<ChangeFeedEvents> {
  protected stopped = false;
  /** Whether resync('start') has been emitted. */
  protected started = false;
  protected generation = 0;
  private isConnected = false;
  private readonly resyncIntervalMs: number;
  private readonly debounceMs: number;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private resolveStart: (() => void) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    timing: FeedTiming,
    protected readonly log: Logger,
  ) {
    super();
    if (!Number.isFinite(timing.resyncIntervalMs) || timing.resyncIntervalMs < 0) {
      throw new Error(`resyncIntervalMs must be a non-negative number, got ${String(timing.resyncIntervalMs)}`);
    }
    const debounceMs = timing.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    if (!Number.isFinite(debounceMs) || debounceMs < 0) {
      throw new Error(`debounceMs must be a non-negative number, got ${String(timing.debounceMs)}`);
    }
    this.resyncIntervalMs = timing.resyncIntervalMs;
    this.debounceMs = debounceMs;
  }

  /** True while the source can report changes. */
  get connected(): boolean {
    return this.isConnected;
  }

  /**
   * Starts connecting. Resolves once `resync('start')` has been emitted:
   * after the first connection, or after the first attempt failed
   * (reconnection then continues in the background). Attach listeners
   * before calling. Idempotent.
   */
  start(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error(`${this.constructor.name} has been stopped`));
    this.starting ??= new Promise<void>((resolve) => {
      this.resolveStart = resolve;
      this.begin();
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
      for (const t of [this.retryTimer, this.resyncTimer, ...this.pending.values()]) clearTimeout(t);
      this.retryTimer = this.resyncTimer = undefined;
      this.pending.clear();
      this.resolveStart?.();
      this.resolveStart = undefined;
      this.disconnectedNow();
      await this.end();
      this.log.info('Change feed stopped');
    })();
    return this.stopping;
  }

  /** Opens the transport; called once, by the first start(). */
  protected abstract begin(): void;

  /** Closes the transport; called once, by stop(). */
  protected abstract end(): Promise<void>;

  /** Marks the source connected: the first time `resync('start')`, afterwards `resync('reconnect')`. */
  protected connectedNow(): void {
    this.isConnected = true;
    this.safeEmit('state', 'connected');
    if (!this.started) this.firstAttemptDone();
    else this.resync('reconnect');
  }

  /** Marks the source disconnected; true if it was connected. */
  protected disconnectedNow(): boolean {
    if (!this.isConnected) return false;
    this.isConnected = false;
    this.safeEmit('state', 'disconnected');
    return true;
  }

  /** Emits resync('start') and settles start(), the first time it is called. */
  protected firstAttemptDone(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.resync('start');
    this.resolveStart?.();
    this.resolveStart = undefined;
  }

  /** Runs `fn` after `ms` unless stopped first; replaces any retry still waiting. */
  protected retryIn(ms: number, fn: () => void): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.stopped) fn();
    }, ms);
    this.retryTimer.unref();
  }

  protected notify(app: string): void {
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

  /** Emits `resync(reason)` and restarts the periodic resync from now. */
  protected resync(reason: ResyncReason): void {
    if (this.stopped) return;
    clearTimeout(this.resyncTimer);
    this.resyncTimer = undefined;
    if (this.resyncIntervalMs > 0) {
      this.resyncTimer = setTimeout(() => {
        this.resyncTimer = undefined;
        this.resync('timer');
      }, this.resyncIntervalMs);
      this.resyncTimer.unref();
    }
    this.log.debug({ reason }, 'Resync');
    this.safeEmit('resync', reason);
  }

  /** Emits, logging (not propagating) anything a listener throws. */
  protected safeEmit<K extends keyof ChangeFeedEvents>(event: K, ...args: ChangeFeedEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: ChangeFeedEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error({ err, event }, 'Change feed listener failed');
    }
  }
}
