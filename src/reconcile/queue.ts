/**
 * Level-triggered work queue keyed by cluster UUID.
 *
 * The reconcile engine calls `add(uuid)` whenever something about a cluster
 * may have changed; the queue guarantees that:
 *  - a key is handled by at most one worker at a time;
 *  - adding a key that is already queued does nothing (the pending run will
 *    see the latest state anyway);
 *  - adding a key that is being handled marks it to run again as soon as the
 *    current run ends, and aborts the current run's signal so the worker can
 *    stop early at a safe point (it is never killed); pending retries of the
 *    key are replaced by that immediate run;
 *  - a worker that throws is retried with capped exponential backoff
 *    (base * 2^(n-1), at most max, +/-10% jitter), and the failure count
 *    resets on success or `forget(key)`;
 *  - a worker may ask for a later run with `{ requeueAfterMs }`, which is
 *    not a failure;
 *  - at most `concurrency` workers run at once, and ready keys are served in
 *    the order they became ready.
 */
import { silentLogger, type Logger } from '../lib/log.js';

/** What a worker may return: nothing, or a request to run again later. */
export type Result = { requeueAfterMs?: number } | void;

export type Worker = (key: string, signal: AbortSignal) => Promise<Result>;

export interface WorkQueueOptions {
  worker: Worker;
  /** Maximum number of workers running at once, across all keys. */
  concurrency: number;
  /** Delay before the first retry after a failure. */
  backoffBaseMs: number;
  /** Upper bound of the retry delay (before jitter). */
  backoffMaxMs: number;
  /** Clock used for the due times reported by `scheduledAt`. */
  now?: () => number;
  /** Source of randomness for jitter, returning values in [0, 1). */
  random?: () => number;
  log?: Logger;
  /**
   * Told of every failed run: the error, consecutive failures so far, and
   * the delay before the retry (undefined when newer work runs it at once
   * or the queue is stopping). Where the failure becomes visible.
   */
  onFailure?: (key: string, error: unknown, failures: number, retryInMs: number | undefined) => void;
}

export interface WorkQueueStats {
  /** Keys ready to run and waiting for a free worker. */
  queued: number;
  /** Keys being handled right now. */
  running: number;
  /** Keys waiting for a retry or requested requeue timer. */
  scheduled: number;
  /** Worker runs finished since creation, whatever their outcome. */
  processed: number;
  /** Worker runs that threw since creation. */
  failed: number;
}

export type KeyState = 'idle' | 'queued' | 'running' | 'scheduled';

/** Why a running worker's signal was aborted. */
export type AbortCause = 'superseded' | 'removed' | 'stopped';

/** The `reason` of an aborted worker signal. */
export class WorkAbortedError extends Error {
  constructor(
    readonly key: string,
    readonly kind: AbortCause,
  ) {
    super(`work for ${key} ${kind}`);
    this.name = 'WorkAbortedError';
  }
}

/** Relative jitter applied to every retry delay. */
const JITTER = 0.1;

/**
 * Retry delay before jitter for the n-th consecutive failure (n >= 1):
 * base * 2^(n-1), capped at max.
 */
export function backoffDelay(failures: number, baseMs: number, maxMs: number): number {
  if (failures < 1) return 0;
  // Beyond 2^52 the multiplication loses meaning; the cap applies long before.
  const exp = Math.min(failures - 1, 52);
  return Math.min(baseMs * 2 ** exp, maxMs);
}

interface Running {
  controller: AbortController;
  /** Added again while running: run once more right after. */
  dirty: boolean;
  /** Removed while running: no follow-up and no failure bookkeeping. */
  removed: boolean;
}

interface Scheduled {
  timer: NodeJS.Timeout;
  at: number;
}

export class WorkQueue {
  private readonly worker: Worker;
  private readonly concurrency: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly onFailure: WorkQueueOptions['onFailure'];

  /** Ready keys in arrival order; `queuedSet` mirrors it for lookups. */
  private queue: string[] = [];
  private readonly queuedSet = new Set<string>();
  private readonly running = new Map<string, Running>();
  private readonly scheduled = new Map<string, Scheduled>();
  private readonly failureCounts = new Map<string, number>();
  private readonly errors = new Map<string, unknown>();

  private processedCount = 0;
  private failedCount = 0;
  private stopped = false;
  private stopPromise: Promise<void> | null = null;
  private idleWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];

  constructor(opts: WorkQueueOptions) {
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
      throw new RangeError(`concurrency must be a whole number >= 1, got ${opts.concurrency}`);
    }
    if (!(opts.backoffBaseMs >= 0) || !Number.isFinite(opts.backoffBaseMs)) {
      throw new RangeError(`backoffBaseMs must be a finite number >= 0, got ${opts.backoffBaseMs}`);
    }
    if (!(opts.backoffMaxMs >= opts.backoffBaseMs) || !Number.isFinite(opts.backoffMaxMs)) {
      throw new RangeError(`backoffMaxMs must be finite and >= backoffBaseMs, got ${opts.backoffMaxMs}`);
    }
    this.worker = opts.worker;
    this.concurrency = opts.concurrency;
    this.onFailure = opts.onFailure;
    this.baseMs = opts.backoffBaseMs;
    this.maxMs = opts.backoffMaxMs;
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.log = opts.log ?? silentLogger;
  }

  /**
   * Mark a key as needing work. Queued keys are left where they are; a
   * running key runs again after the current run; a key waiting for a retry
   * runs now instead. Ignored once the queue is stopped.
   */
  add(key: string): void {
    if (this.stopped) return;
    const run = this.running.get(key);
    if (run) {
      run.removed = false;
      if (!run.dirty) {
        run.dirty = true;
        this.cancelScheduled(key);
        if (!run.controller.signal.aborted) {
          run.controller.abort(new WorkAbortedError(key, 'superseded'));
        }
      }
      return;
    }
    if (this.queuedSet.has(key)) return;
    this.cancelScheduled(key);
    this.enqueue(key);
    this.pump();
  }

  /**
   * Drop queued, scheduled and pending re-run work for a key and its failure
   * record. A running worker is told through its signal and left to finish;
   * nothing follows its run unless the key is added again.
   */
  remove(key: string): void {
    if (this.queuedSet.delete(key)) {
      this.queue = this.queue.filter((k) => k !== key);
    }
    this.cancelScheduled(key);
    const run = this.running.get(key);
    if (run) {
      run.dirty = false;
      run.removed = true;
      if (!run.controller.signal.aborted) {
        run.controller.abort(new WorkAbortedError(key, 'removed'));
      }
    }
    this.forget(key);
    this.checkIdle();
  }

  /** Reset the failure count and last error of a key. */
  forget(key: string): void {
    this.failureCounts.delete(key);
    this.errors.delete(key);
  }

  /** Consecutive failures of a key since its last success or `forget`. */
  failures(key: string): number {
    return this.failureCounts.get(key) ?? 0;
  }

  /** The error of the latest failed run, until success or `forget`. */
  lastError(key: string): unknown {
    return this.errors.get(key);
  }

  /** When a scheduled key is due (by the `now` clock), if it is scheduled. */
  scheduledAt(key: string): number | undefined {
    return this.scheduled.get(key)?.at;
  }

  state(key: string): KeyState {
    if (this.running.has(key)) return 'running';
    if (this.queuedSet.has(key)) return 'queued';
    if (this.scheduled.has(key)) return 'scheduled';
    return 'idle';
  }

  get scheduledCount(): number {
    return this.scheduled.size;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  stats(): WorkQueueStats {
    return {
      queued: this.queue.length,
      running: this.running.size,
      scheduled: this.scheduled.size,
      processed: this.processedCount,
      failed: this.failedCount,
    };
  }

  /**
   * Resolves once nothing is queued and nothing is running. Keys waiting on
   * a retry or requeue timer do not count; see `scheduledCount`.
   */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stop taking work: queued and scheduled work is dropped, running workers
   * are told through their signal and awaited. Later `add` calls are ignored.
   */
  stop(): Promise<void> {
    if (this.stopPromise) return this.stopPromise;
    this.stopped = true;
    for (const key of [...this.scheduled.keys()]) this.cancelScheduled(key);
    this.queue = [];
    this.queuedSet.clear();
    for (const [key, run] of this.running) {
      run.dirty = false;
      if (!run.controller.signal.aborted) {
        run.controller.abort(new WorkAbortedError(key, 'stopped'));
      }
    }
    this.stopPromise =
      this.running.size === 0 ? Promise.resolve() : new Promise((resolve) => this.drainWaiters.push(resolve));
    this.checkIdle();
    return this.stopPromise;
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.running.size === 0;
  }

  private enqueue(key: string): void {
    this.queuedSet.add(key);
    this.queue.push(key);
  }

  private cancelScheduled(key: string): void {
    const s = this.scheduled.get(key);
    if (!s) return;
    clearTimeout(s.timer);
    this.scheduled.delete(key);
  }

  private schedule(key: string, delayMs: number): void {
    this.cancelScheduled(key);
    const delay = Math.max(0, Math.round(delayMs));
    const timer = setTimeout(() => {
      this.scheduled.delete(key);
      this.add(key);
    }, delay);
    timer.unref();
    this.scheduled.set(key, { timer, at: this.now() + delay });
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.queuedSet.delete(key);
      this.start(key);
    }
  }

  private start(key: string): void {
    const run: Running = { controller: new AbortController(), dirty: false, removed: false };
    this.running.set(key, run);
    void this.execute(key, run);
  }

  private async execute(key: string, run: Running): Promise<void> {
    let result: Result = undefined;
    let error: unknown;
    let threw = false;
    try {
      // Run the worker on a later tick so `add` never re-enters the caller.
      await Promise.resolve();
      result = await this.worker(key, run.controller.signal);
    } catch (e) {
      threw = true;
      error = e;
    }
    this.finish(key, run, threw, error, result);
  }

  private finish(key: string, run: Running, threw: boolean, error: unknown, result: Result): void {
    this.running.delete(key);
    this.processedCount++;
    if (threw) this.failedCount++;

    if (!run.removed) {
      if (threw) {
        const n = this.failures(key) + 1;
        this.failureCounts.set(key, n);
        this.errors.set(key, error);
        let delay: number | undefined;
        if (run.dirty) {
          this.log.debug({ key, err: error, failures: n }, 'work item failed; newer work pending, running again');
        } else if (!this.stopped) {
          delay = this.jitter(backoffDelay(n, this.baseMs, this.maxMs));
          this.log.debug({ key, err: error, failures: n, retryInMs: delay }, 'work item failed; retrying');
          this.schedule(key, delay);
        }
        this.onFailure?.(key, error, n, delay);
      } else {
        this.forget(key);
        const after = result?.requeueAfterMs;
        if (!run.dirty && !this.stopped && typeof after === 'number' && Number.isFinite(after)) {
          if (after <= 0) {
            run.dirty = true;
          } else {
            this.schedule(key, after);
          }
        }
      }
      if (run.dirty && !this.stopped) this.enqueue(key);
    }

    this.pump();
    if (this.running.size === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
    this.checkIdle();
  }

  private jitter(ms: number): number {
    return ms * (1 + (this.random() * 2 - 1) * JITTER);
  }

  private checkIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
