import type { Context, Next } from 'koa';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricSources {
  phases: () => Record<string, number>;
  queue: () => { queued: number; running: number; scheduled: number; processed: number; failed: number };
  statusWritesPending: () => number;
  repoWritesWaiting: () => number;
  mqtt: () => { changeFeed: boolean; sparkplug: boolean };
  changeFeed: () => { live: 'mqtt' | 'notify'; connected: boolean };
  lastResyncMs: () => number;
  /** The last drift check: repos compared, moved, failed, left for the next; its time; the oldest comparison. */
  lastDriftCheck?: () =>
    { checked: number; moved: number; failed: number; deferred: number; ms: number; oldest: number } | undefined;
  /** Drift checks completed. */
  driftChecks?: () => number;
  dependencies: () => Record<string, 'ok' | 'failing' | 'unknown'>;
}

/** Prometheus figures of the HTTP API, reconciliation, Git writes and MQTT links. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route'>;
  readonly bootstrapFetches: Counter;
  readonly secretWrites: Counter<'op' | 'result'>;

  constructor(sources: MetricSources) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'cluster_manager_' });
    this.requests = new Counter({
      name: 'cluster_manager_http_requests_total',
      help: 'HTTP requests answered',
      labelNames: ['method', 'route', 'status'],
      registers: [r],
    });
    this.duration = new Histogram({
      name: 'cluster_manager_http_request_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route'],
      registers: [r],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.bootstrapFetches = new Counter({
      name: 'cluster_manager_bootstrap_fetches_total',
      help: 'Bootstrap scripts served',
      registers: [r],
    });
    this.secretWrites = new Counter({
      name: 'cluster_manager_secret_writes_total',
      help: 'Sealed secret changes',
      labelNames: ['op', 'result'],
      registers: [r],
    });
    new Gauge({
      name: 'cluster_manager_clusters',
      help: 'Clusters by phase',
      labelNames: ['phase'],
      registers: [r],
      collect() {
        this.reset();
        for (const [p, n] of Object.entries(sources.phases())) this.set({ phase: p }, n);
      },
    });
    new Gauge({
      name: 'cluster_manager_reconcile_queue',
      help: 'Reconcile work by state',
      labelNames: ['state'],
      registers: [r],
      collect() {
        const q = sources.queue();
        for (const s of ['queued', 'running', 'scheduled'] as const) this.set({ state: s }, q[s]);
      },
    });
    new Gauge({
      name: 'cluster_manager_reconcile_runs',
      help: 'Reconcile runs since start, by result',
      labelNames: ['result'],
      registers: [r],
      collect() {
        const q = sources.queue();
        this.set({ result: 'processed' }, q.processed);
        this.set({ result: 'failed' }, q.failed);
      },
    });
    new Gauge({
      name: 'cluster_manager_status_writes_pending',
      help: 'Setup status patches not yet written',
      registers: [r],
      collect() {
        this.set(sources.statusWritesPending());
      },
    });
    new Gauge({
      name: 'cluster_manager_repo_changes_waiting',
      help: 'Changes to cluster repos waiting for their write',
      registers: [r],
      collect() {
        this.set(sources.repoWritesWaiting());
      },
    });
    new Gauge({
      name: 'cluster_manager_mqtt_connected',
      help: 'MQTT connections up (1) or down (0)',
      labelNames: ['link'],
      registers: [r],
      collect() {
        const m = sources.mqtt();
        this.set({ link: 'change_feed' }, m.changeFeed ? 1 : 0);
        this.set({ link: 'sparkplug' }, m.sparkplug ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cluster_manager_change_feed_live',
      help: 'The live change feed, labelled by its source (mqtt or notify): 1 while connected, 0 while not',
      labelNames: ['source'],
      registers: [r],
      collect() {
        this.reset();
        const f = sources.changeFeed();
        this.set({ source: f.live }, f.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cluster_manager_dependency_up',
      help: 'Whether the last exchange with a dependency worked (1), failed (0); absent when unknown',
      labelNames: ['service'],
      registers: [r],
      collect() {
        this.reset();
        for (const [k, v] of Object.entries(sources.dependencies()))
          if (v !== 'unknown') this.set({ service: k }, v === 'ok' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cluster_manager_last_resync_seconds',
      help: 'Duration of the last full resync',
      registers: [r],
      collect() {
        this.set(sources.lastResyncMs() / 1000);
      },
    });
    new Gauge({
      name: 'cluster_manager_last_drift_check_seconds',
      help: 'Duration of the last drift check (head reads of ready clusters after a resync, within DRIFT_CHECK_SECONDS)',
      registers: [r],
      collect() {
        this.set((sources.lastDriftCheck?.()?.ms ?? 0) / 1000);
      },
    });
    new Gauge({
      name: 'cluster_manager_last_drift_check_repos',
      help: 'Repos in the last drift check, by outcome (deferred: not reached in time, first in the next check)',
      labelNames: ['outcome'],
      registers: [r],
      collect() {
        const d = sources.lastDriftCheck?.();
        for (const outcome of ['checked', 'moved', 'failed', 'deferred'] as const)
          this.set({ outcome }, d?.[outcome] ?? 0);
      },
    });
    new Gauge({
      name: 'cluster_manager_drift_check_oldest_seconds',
      help: "Age of the least recent comparison of a ready cluster's repo head with the Git server's",
      registers: [r],
      collect() {
        const d = sources.lastDriftCheck?.();
        if (d) this.set((Date.now() - d.oldest) / 1000);
      },
    });
    new Counter({
      name: 'cluster_manager_drift_checks_total',
      help: 'Drift checks completed',
      registers: [r],
      collect() {
        this.reset();
        this.inc(sources.driftChecks?.() ?? 0);
      },
    });
  }

  /** Counts and times every request by its route pattern (not its path, which holds UUIDs). */
  middleware() {
    return async (ctx: Context, next: Next): Promise<void> => {
      const end = this.duration.startTimer();
      try {
        await next();
      } finally {
        const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
        end({ method: ctx.method, route: String(route) });
        this.requests.inc({ method: ctx.method, route: String(route), status: String(ctx.status) });
      }
    };
  }
}
