import type { Logger } from 'pino';
import type { ConfigDbClient } from '../factoryplus/configdb.js';
import { SPEC_FIELDS } from '../repo/manifests.js';
import type { Commissioner } from './commission.js';
import { WorkQueue } from './queue.js';
import type { StatusStore } from './status.js';
import type { TemplateCache } from './templates.js';

export interface ControllerOptions {
  cdb: ConfigDbClient;
  status: StatusStore;
  commissioner: Commissioner;
  templates: TemplateCache;
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
    });
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
      if (config !== undefined) await this.o.commissioner.update(cluster, config);
      else if (this.o.status.get(cluster)) await this.o.commissioner.remove(cluster);
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
          if (!Object.prototype.hasOwnProperty.call(entries, cluster)) { this.queue.add(cluster); queued++; }
        }
        this.synced = true;
        this.lastResyncMs = Date.now() - started;
        this.resyncFailures = 0;
        this.o.log.debug({ reason, clusters: Object.keys(entries).length, queued, ms: this.lastResyncMs }, 'resync done');
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
