import type { Logger } from 'pino';
import type { ConfigDbClient } from '../factoryplus/configdb.js';
import { silentLogger } from '../lib/log.js';
import {
  describeEdgeCertificate,
  EDGE_CONDITION,
  edgePatch,
  NOT_REPORTED,
  summariseEdge,
  type EdgeCertificate,
  type EdgeReport,
} from './edge-health.js';
import { getCondition, readStatus } from './setup-status.js';
import type { StatusStore } from './status.js';

const YIELD_EVERY = 200;

export interface EdgeMonitorOptions {
  cdb: Pick<ConfigDbClient, 'select'>;
  /** The *Edge cluster status* app, which Edge Sync writes. */
  app: string;
  status: StatusStore;
  log?: Logger;
  now?: () => Date;
  /** Quiet time after a change notification before reading (default 200 ms): a burst of edge writes costs one read. */
  debounceMs?: number;
  /** Status writes in flight at once (default 4): the first pass over a large fleet must not crowd out reconciling. */
  writeConcurrency?: number;
}

/**
 * Keeps every cluster's edge summary and `EdgeReporting` condition in step
 * with the Edge cluster status entries. It reads all entries in one search
 * request when told they changed (debounced) and at every resync, compares
 * in memory, and writes only the clusters whose summary or condition
 * differs: a resync of a fleet whose edges are unchanged writes nothing.
 *
 * A status change made elsewhere (a new cluster becoming ready, a bootstrap
 * fetch, conditions rewritten by a step) is checked against the last read
 * reports, without a request.
 */
export class EdgeMonitor {
  private reports = new Map<string, EdgeReport>();
  /** The last certificate seen per cluster, so an unchanged PEM is not parsed again at each read. */
  private readonly certs = new Map<string, { pem: string; cert: EdgeCertificate | null }>();
  private loaded = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly dirty = new Set<string>();
  /** The EdgeReporting reason last written per cluster, for logging transitions only. */
  private readonly reasons = new Map<string, string>();
  private writers = 0;
  private stopped = false;
  private readonly off: () => void;
  private readonly log: Logger;
  private readonly now: () => Date;
  /** Reads done, and status patches written, since start. */
  readonly stats = { reads: 0, writes: 0, failures: 0 };

  constructor(private readonly o: EdgeMonitorOptions) {
    this.log = o.log ?? silentLogger;
    this.now = o.now ?? (() => new Date());
    this.off = o.status.onChange((cluster, st) => {
      if (!st) this.reasons.delete(cluster);
      else if (this.loaded && !this.stopped && edgePatch(st, this.report(cluster), this.now())) this.mark(cluster);
    });
  }

  private report(cluster: string): EdgeReport {
    return this.reports.get(cluster) ?? NOT_REPORTED;
  }

  /** The entries changed: read them again after a quiet time. */
  changed(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refresh().catch(() => undefined);
    }, this.o.debounceMs ?? 200);
    this.timer.unref();
  }

  /** Reads every entry now (a read already running is followed by one more). */
  refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.read().finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        this.refresh().catch(() => undefined);
      }
    });
    return this.running;
  }

  private async read(): Promise<void> {
    let entries;
    try {
      entries = await this.o.cdb.select(this.o.app, ['hosts', 'kubeseal_cert']);
    } catch (err) {
      this.stats.failures++;
      this.log.warn(
        { err: (err as Error).message },
        'Cannot read the Edge cluster status entries; edge health is left as it was',
      );
      throw err;
    }
    this.stats.reads++;
    const reports = new Map<string, EdgeReport>();
    const certs = new Map<string, { pem: string; cert: EdgeCertificate | null }>();
    let n = 0;
    for (const [cluster, entry] of Object.entries(entries)) {
      // A certificate not seen before costs a parse (a fraction of a
      // millisecond): after a start with thousands of them, requests are
      // still answered between batches.
      if (++n % YIELD_EVERY === 0) await new Promise((r) => setImmediate(r));
      reports.set(
        cluster,
        summariseEdge(entry, (pem) => {
          if (typeof pem !== 'string') return null;
          const known = this.certs.get(cluster);
          const cert = known && known.pem === pem ? known.cert : describeEdgeCertificate(pem);
          certs.set(cluster, { pem, cert });
          return cert;
        }),
      );
    }
    this.reports = reports;
    this.certs.clear();
    for (const [k, v] of certs) this.certs.set(k, v);
    this.loaded = true;
    const now = this.now();
    for (const cluster of this.o.status.clusters()) {
      const st = this.o.status.get(cluster);
      if (st && edgePatch(st, this.report(cluster), now)) this.mark(cluster);
    }
  }

  private mark(cluster: string): void {
    this.dirty.add(cluster);
    // Not from inside the caller: a status listener must not write re-entrantly.
    while (this.writers < (this.o.writeConcurrency ?? 4)) {
      this.writers++;
      setImmediate(() => {
        this.write().catch(() => undefined);
      });
    }
  }

  /** Writes dirty clusters one at a time, each patch worked out afresh from the status as it is now. */
  private async write(): Promise<void> {
    try {
      for (const cluster of this.dirty) {
        this.dirty.delete(cluster);
        if (this.stopped) return;
        const st = this.o.status.get(cluster);
        const patch = st && edgePatch(st, this.report(cluster), this.now());
        if (!patch) continue;
        this.stats.writes++;
        const was = this.reasons.get(cluster) ?? getCondition(readStatus(st), EDGE_CONDITION)?.reason ?? 'NotReported';
        const written = this.o.status.update(cluster, patch);
        this.logTransition(cluster, was);
        await written;
      }
    } finally {
      // In the same turn as the emptiness check: a cluster marked after it finds a free writer.
      this.writers--;
    }
  }

  /**
   * One log line when a cluster's edge starts or stops reporting; not for
   * the first `NotReported` of each cluster (a fleet's first pass would log
   * every cluster), nor when another writer's rewrite of the conditions is
   * undone.
   */
  private logTransition(cluster: string, was: string): void {
    const st = readStatus(this.o.status.get(cluster));
    const cond = getCondition(st, EDGE_CONDITION);
    if (!cond) return;
    this.reasons.set(cluster, cond.reason);
    if (cond.reason !== was)
      this.log.info({ cluster, name: st?.spec?.name, reason: cond.reason, was }, `Edge cluster: ${cond.message}`);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.off();
  }
}
