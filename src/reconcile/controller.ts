import type { Logger } from 'pino';
import type { ConfigDbClient } from '../factoryplus/configdb.js';
import type { Commissioner } from './commission.js';
import { WorkQueue } from './queue.js';
import type { StatusStore } from './status.js';

export interface ControllerOptions {
  cdb: ConfigDbClient;
  status: StatusStore;
  commissioner: Commissioner;
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
  lastResyncMs = 0;

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
    const config = await this.o.cdb.get(this.o.clusterConfigApp, cluster);
    if (config !== undefined) await this.o.commissioner.update(cluster, config);
    else if (this.o.status.get(cluster)) await this.o.commissioner.remove(cluster);
  }

  /** Queues every configured cluster and every cluster that has a status but no configuration. */
  resync(reason: string): Promise<void> {
    if (this.resyncing) return this.resyncing;
    this.resyncing = (async () => {
      const started = Date.now();
      try {
        const configured = await this.o.cdb.list(this.o.clusterConfigApp);
        const keys = new Set([...configured, ...this.o.status.clusters()]);
        for (const k of keys) this.queue.add(k);
        this.synced = true;
        this.lastResyncMs = Date.now() - started;
        this.o.log.debug({ reason, clusters: keys.size, ms: this.lastResyncMs }, 'resync queued');
      } catch (e) {
        this.o.log.warn({ reason, err: (e as Error).message }, 'resync failed');
        throw e;
      } finally {
        this.resyncing = undefined;
      }
    })();
    return this.resyncing;
  }

  /** Looks at one cluster again. */
  touch(cluster: string): void {
    this.queue.add(cluster);
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  stop(): Promise<void> {
    return this.queue.stop();
  }
}
