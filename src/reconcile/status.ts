import type { Logger } from 'pino';
import { silentLogger } from '../lib/log.js';
import { applyMergePatch, composeMergePatches, isJsonObject, type Json } from '../lib/merge-patch.js';
import { withHistory } from './setup-status.js';

/** What the store needs of the Config Store. */
export interface StatusBackend {
  list(app: string): Promise<string[]>;
  get<T = Json>(app: string, obj: string): Promise<T | undefined>;
  patch(app: string, obj: string, patch: unknown): Promise<void>;
  delete(app: string, obj: string): Promise<boolean>;
}

export type Status = { [k: string]: Json };

interface Write {
  patch: Json | null;
  resolve: () => void;
}

/**
 * The setup status entries, held in memory and written through to the Config
 * Store as JSON merge patches. Each cluster's patches are sent strictly in
 * order, one at a time, each retried until it is accepted; a `null` patch
 * deletes the entry. Readers see the status with every patch applied, written
 * or not, as the original does. A patch that makes a condition transition
 * also carries the entry's new `history`, whichever part of the service
 * wrote it.
 */
export class StatusStore {
  private readonly statuses = new Map<string, Status>();
  private readonly queues = new Map<string, Write[]>();
  private readonly log: Logger;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly now: () => Date;
  private failing = 0;
  onWriteError?: (cluster: string, err: Error) => void;
  private readonly listeners = new Set<(cluster: string, status: Status | undefined) => void>();

  /** Called with the new status (undefined once deleted) on every change, written or not. */
  onChange(fn: (cluster: string, status: Status | undefined) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  constructor(
    private readonly backend: StatusBackend,
    private readonly app: string,
    opts: { log?: Logger; retryBaseMs?: number; retryMaxMs?: number; now?: () => Date } = {},
  ) {
    this.now = opts.now ?? (() => new Date());
    this.log = opts.log ?? silentLogger;
    this.retryBaseMs = opts.retryBaseMs ?? 500;
    this.retryMaxMs = opts.retryMaxMs ?? 30_000;
  }

  /** Loads every status entry; done once at start, before anything is reconciled. */
  async load(concurrency = 16): Promise<void> {
    const ids = await this.backend.list(this.app);
    let next = 0;
    const worker = async () => {
      while (next < ids.length) {
        const id = ids[next++];
        const v = await this.backend.get(this.app, id);
        if (isJsonObject(v)) this.statuses.set(id, v as Status);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, ids.length) }, worker));
  }

  get(cluster: string): Status | undefined {
    return this.statuses.get(cluster);
  }

  clusters(): string[] {
    return [...this.statuses.keys()];
  }

  /** How many clusters are in each phase (a status without one is `pending`). */
  phaseCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const st of this.statuses.values()) {
      const p = typeof st.phase === 'string' ? st.phase : 'pending';
      out[p] = (out[p] ?? 0) + 1;
    }
    return out;
  }

  get size(): number {
    return this.statuses.size;
  }

  /** Patches waiting to be written, across all clusters. */
  get pending(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** True while some cluster's write is being retried. */
  get degraded(): boolean {
    return this.failing > 0;
  }

  /**
   * Applies a patch now and queues it for the Config Store; the promise
   * settles when this patch (and every earlier one of the cluster) is written.
   */
  update(cluster: string, patch: Json | null): Promise<void> {
    if (patch === null) this.statuses.delete(cluster);
    else {
      const before = this.statuses.get(cluster);
      let after = applyMergePatch(before ?? {}, patch) as Status;
      const history = isJsonObject(patch) && 'conditions' in patch && withHistory(before, after, this.now());
      if (history) {
        // The same write carries it: the history costs the Config Store no request of its own.
        patch = { ...(patch as Status), history: history as unknown as Json };
        after = { ...after, history: history as unknown as Json };
      }
      this.statuses.set(cluster, after);
    }
    for (const fn of this.listeners) fn(cluster, this.statuses.get(cluster));
    return new Promise((resolve) => {
      let q = this.queues.get(cluster);
      const start = !q;
      if (!q) {
        q = [];
        this.queues.set(cluster, q);
      }
      // A patch still waiting behind the one being written absorbs this one:
      // merge patches compose, so the order is kept and a burst (bootstrap
      // fetch counters, secret counts) costs one write instead of many.
      const waiting = q.length > 1 ? q[q.length - 1] : undefined;
      const combined =
        waiting && waiting.patch !== null && patch !== null ? composeMergePatches(waiting.patch, patch) : undefined;
      if (waiting && combined !== undefined) {
        waiting.patch = combined;
        const earlier = waiting.resolve;
        waiting.resolve = () => {
          earlier();
          resolve();
        };
        return;
      }
      q.push({ patch, resolve });
      if (start) void this.drain(cluster, q);
    });
  }

  /** Resolves once everything queued so far is written. */
  async flush(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const q of this.queues.values()) {
      const last = q[q.length - 1];
      if (last)
        waits.push(
          new Promise((r) => {
            const done = last.resolve;
            last.resolve = () => {
              done();
              r();
            };
          }),
        );
    }
    await Promise.all(waits);
  }

  private async drain(cluster: string, q: Write[]): Promise<void> {
    while (q.length) {
      const w = q[0];
      for (let attempt = 0; ; attempt++) {
        try {
          if (w.patch === null) await this.backend.delete(this.app, cluster);
          else await this.backend.patch(this.app, cluster, w.patch);
          if (attempt > 0) this.failing--;
          break;
        } catch (e) {
          if (attempt === 0) this.failing++;
          this.onWriteError?.(cluster, e as Error);
          const delay = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(attempt, 16));
          this.log.warn({ cluster, attempt, err: (e as Error).message }, 'status write failed, retrying');
          await new Promise((r) => setTimeout(r, delay));
        }
      }
      q.shift();
      w.resolve();
    }
    this.queues.delete(cluster);
  }
}
