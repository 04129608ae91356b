import type { Logger } from 'pino';
import type { ConfigDbClient } from '../factoryplus/configdb.js';
import { SPEC_FIELDS } from '../repo/manifests.js';
import type { RepoPool } from '../repo/pool.js';
import type { Commissioner } from './commission.js';
import { readStatus } from './setup-status.js';
import { WorkQueue } from './queue.js';
import type { StatusStore } from './status.js';
import type { TemplateCache } from './templates.js';

export interface ControllerOptions {
  cdb: ConfigDbClient;
  status: StatusStore;
  commissioner: Commissioner;
  templates: TemplateCache;
  repos: RepoPool;
  /** Head reads at once during a drift check (default 32; ref advertisements among them at most 8). */
  driftConcurrency?: number;
  /** Time a drift check may take (default 3 s); 0: no drift check. */
  driftCheckMs?: number;
  clusterConfigApp: string;
  concurrency: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  log: Logger;
}

/**
 * Level-triggered reconciliation: the desired state is the set of
 * configuration entries, read afresh for every cluster it works on; change
 * notifications and resyncs only say which clusters to look at.
 */
export class Controller {
  private readonly queue: WorkQueue;
  private synced = false;
  private resyncing: Promise<void> | undefined;
  private rerun = false;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  resyncFailures = 0;
  lastResyncError: string | undefined;
  lastResyncMs = 0;
  /** The last reconcile error, `cluster: message`. */
  lastFailure: string | undefined;

  constructor(private readonly o: ControllerOptions) {
    this.queue = new WorkQueue({
      worker: (key) => this.reconcile(key),
      concurrency: o.concurrency,
      backoffBaseMs: o.backoffBaseMs,
      backoffMaxMs: o.backoffMaxMs,
      log: o.log,
      // Every failure is a condition on the cluster, not only a log line.
      onFailure: (cluster, err, failures, retryInMs) => {
        this.o.commissioner.recordFailure(cluster, err, failures, retryInMs).catch(() => undefined);
        const waiter = this.redeploys.get(cluster);
        if (waiter) {
          this.redeploys.delete(cluster);
          waiter.reject(err);
        }
      },
    });
    // A cluster refused a name gets another look as soon as the name is free.
    o.commissioner.onNameReleased = (waiting) => {
      for (const c of waiting) this.queue.add(c);
    };
  }

  /** Clusters whose repo moved outside the service, with the heads seen, waiting for their repair. */
  private readonly drifted = new Map<string, { recorded: string; remote: string | null }>();
  /** When each cluster's repo was last compared with the Git server's. */
  private readonly driftCheckedAt = new Map<string, number>();
  private readonly startedAt = Date.now();
  private sweeping: Promise<void> | undefined;
  /** Completed drift checks. */
  driftChecks = 0;
  /**
   * How the last drift check went: repos compared, found moved, failed, and
   * left for the next check (`deferred`, out of time); how long it took; and
   * when the least recently compared ready repo was compared (`oldest`).
   */
  lastDriftCheck:
    { checked: number; moved: number; failed: number; deferred: number; ms: number; oldest: number } | undefined;

  /**
   * Compares ready clusters' recorded repo heads with the Git server's and
   * queues a repair for each repo that moved. Runs after a resync, which does
   * not wait for it. It has `driftCheckMs` to spend: the least recently
   * compared repos go first, so those it does not reach are first next time
   * and a fleet too large for one check is covered over a few.
   */
  checkDrift(): Promise<void> {
    const budgetMs = this.o.driftCheckMs ?? 3000;
    if (budgetMs <= 0) return Promise.resolve();
    this.sweeping ??= (async () => {
      const started = Date.now();
      let checked = 0;
      let moved = 0;
      let failed = 0;
      const at = (c: string) => this.driftCheckedAt.get(c) ?? 0;
      const ready = this.o.status.clusters().filter((c) => {
        const st = readStatus(this.o.status.get(c));
        return st?.ready === true && typeof st.repo?.head === 'string';
      });
      // Clusters gone since: their times go with them.
      const live = new Set(ready);
      for (const c of this.driftCheckedAt.keys()) if (!live.has(c)) this.driftCheckedAt.delete(c);
      const todo = ready
        .filter((c) => this.queue.state(c) === 'idle' && !this.o.repos.busy(c))
        .sort((a, b) => at(a) - at(b));
      let next = 0;
      const worker = async () => {
        while (next < todo.length && !this.stopped && Date.now() - started < budgetMs) {
          const c = todo[next++];
          const recorded = readStatus(this.o.status.get(c))?.repo?.head;
          if (!recorded) continue;
          try {
            const remote = await this.o.repos.currentHead(c, recorded);
            checked++;
            this.driftCheckedAt.set(c, Date.now());
            // Moved meanwhile by the service itself (a secret written, a redeploy): the next check looks again.
            if (
              remote === recorded ||
              readStatus(this.o.status.get(c))?.repo?.head !== recorded ||
              this.o.repos.busy(c)
            )
              continue;
            moved++;
            this.drifted.set(c, { recorded, remote });
            this.queue.add(c);
          } catch (e) {
            failed++;
            this.o.log.debug({ cluster: c, err: (e as Error).message }, 'drift check failed');
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.o.driftConcurrency ?? 32, todo.length) }, worker));
      let oldest = Date.now();
      for (const c of ready) oldest = Math.min(oldest, this.driftCheckedAt.get(c) ?? this.startedAt);
      const deferred = todo.length - next;
      this.lastDriftCheck = { checked, moved, failed, deferred, ms: Date.now() - started, oldest };
      this.driftChecks++;
      if (moved) this.o.log.info(this.lastDriftCheck, 'drift check: repos moved outside the service');
      if (deferred)
        this.o.log.debug(this.lastDriftCheck, 'drift check: out of time; the repos not reached go first next time');
    })().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  /** Forced redeploys waiting for their run, by cluster. */
  private readonly redeploys = new Map<
    string,
    {
      resolve: (r: { head: string | null }) => void;
      reject: (e: unknown) => void;
      promise: Promise<{ head: string | null }>;
    }
  >();

  /**
   * Renders and pushes a cluster's managed files again from fresh templates,
   * through the work queue (one action per cluster at a time); resolves
   * with the repo's head once the push is durable.
   */
  redeploy(cluster: string): Promise<{ head: string | null }> {
    let w = this.redeploys.get(cluster);
    if (!w) {
      let resolve!: (r: { head: string | null }) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<{ head: string | null }>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      w = { resolve, reject, promise };
      this.redeploys.set(cluster, w);
    }
    this.queue.add(cluster);
    return w.promise;
  }

  /** Queues a redeploy of each cluster; answers how many. */
  redeployAll(clusters: string[]): number {
    for (const c of clusters) this.redeploy(c).catch(() => undefined);
    return clusters.length;
  }

  /** True once the first full resync has listed every cluster. */
  get ready(): boolean {
    return this.synced;
  }

  get stats() {
    return this.queue.stats();
  }

  lastError(cluster: string): unknown {
    return this.queue.lastError(cluster);
  }

  private async reconcile(cluster: string): Promise<void> {
    try {
      const config = await this.o.cdb.get(this.o.clusterConfigApp, cluster);
      const waiter = this.redeploys.get(cluster);
      this.redeploys.delete(cluster);
      const drift = this.drifted.get(cluster);
      this.drifted.delete(cluster);
      if (config !== undefined && drift && !waiter) {
        await this.o.commissioner.repairDrift(cluster, config, drift);
      } else if (config !== undefined) {
        const r = await this.o.commissioner
          .update(cluster, config, { force: waiter !== undefined, rereadTemplates: waiter !== undefined })
          .catch((e: unknown) => {
            // Failed: the queue retries it, and the redeploy is answered with the failure.
            if (waiter) this.redeploys.set(cluster, waiter);
            throw e;
          });
        if (waiter) {
          if (r) waiter.resolve(r);
          else
            waiter.reject(
              new Error(
                this.o.status.get(cluster)?.phase === 'failed'
                  ? 'the cluster cannot be commissioned; see its conditions'
                  : 'nothing was deployed',
              ),
            );
        }
      } else {
        waiter?.reject(new Error('the cluster has no configuration entry'));
        if (this.o.status.get(cluster)) await this.o.commissioner.remove(cluster);
      }
    } catch (e) {
      this.lastFailure = `${cluster}: ${(e as Error).message}`;
      throw e;
    }
  }

  /**
   * Compares every configuration entry with its recorded status and queues
   * the clusters that need work: new, changed, failed or half-done ones, and
   * those with a status but no configuration any more. The entries come in
   * one search request; clusters already right cost nothing.
   */
  resync(reason: string): Promise<void> {
    if (this.resyncing) {
      // The running pass may have read the entries before this change: look again after it.
      this.rerun = true;
      return this.resyncing;
    }
    this.resyncing = (async () => {
      const started = Date.now();
      try {
        this.o.templates.invalidate();
        const entries = await this.o.cdb.select(this.o.clusterConfigApp, SPEC_FIELDS);
        let queued = 0;
        const check = async (cluster: string, entry: unknown) => {
          if (await this.o.commissioner.upToDate(cluster, entry)) return;
          this.queue.add(cluster);
          queued++;
        };
        await Promise.all(Object.entries(entries).map(([cluster, entry]) => check(cluster, entry)));
        for (const cluster of this.o.status.clusters()) {
          if (!Object.prototype.hasOwnProperty.call(entries, cluster)) {
            this.queue.add(cluster);
            queued++;
          }
        }
        this.synced = true;
        // A repo moved outside the service is found after the pass, not during it.
        if (!this.stopped) this.checkDrift().catch(() => undefined);
        this.lastResyncMs = Date.now() - started;
        this.resyncFailures = 0;
        this.o.log.debug(
          { reason, clusters: Object.keys(entries).length, queued, ms: this.lastResyncMs },
          'resync done',
        );
      } catch (e) {
        this.resyncFailures++;
        this.lastResyncError = (e as Error).message;
        this.o.log.warn({ reason, err: this.lastResyncError, failures: this.resyncFailures }, 'resync failed');
        this.retryResync();
        throw e;
      } finally {
        this.resyncing = undefined;
        if (this.rerun && !this.stopped) {
          this.rerun = false;
          this.resync('changed during resync').catch(() => undefined);
        }
      }
    })();
    return this.resyncing;
  }

  /** A failed resync is retried with capped exponential backoff, not left to the timer. */
  private retryResync(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** (this.resyncFailures - 1));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.resync('retry').catch(() => undefined);
    }, delay);
    this.retryTimer.unref();
  }

  /** Looks at one cluster again. */
  touch(cluster: string): void {
    this.queue.add(cluster);
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    return this.queue.stop();
  }
}
