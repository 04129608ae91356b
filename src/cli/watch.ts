/**
 * `status --watch`: one cluster followed live through `GET /v1/events`
 * until it is ready (done) or failed (a failure), each change printed as it
 * arrives. The stream is read with the `eventsource` client, which
 * reconnects when it drops; every stream starts with a full snapshot, so a
 * reconnection loses nothing. A Cluster Manager without the stream (404,
 * one older than it) is read every second instead.
 */
import { EventSource, type ErrorEvent } from 'eventsource';
import { clusterDetail, type ClusterDetail } from '../http/cluster-summary.js';
import type { Json } from '../lib/merge-patch.js';
import type { Condition, Phase, SetupStatus } from '../reconcile/setup-status.js';
import { isUuid, pickCluster, type ApiClient } from './client.js';
import { CliError, EXIT } from './exit.js';
import { relative, statusText, type Paint } from './format.js';

export interface WatchOutput {
  /** A line (or block) of standard output. */
  out(s: string): void;
  /** A line on standard error: what the watch is waiting for, a dropped stream. */
  note(s: string): void;
  now(): number;
  paint: Paint;
  /** One JSON object a line, for scripts, instead of text. */
  json: boolean;
}

/** How often the status is read from a Cluster Manager without the event stream. */
const POLL_MS = 1000;

type Outcome = 'ready' | 'failed' | undefined;

const outcome = (c: ClusterDetail): Outcome => (c.ready ? 'ready' : c.phase === 'failed' ? 'failed' : undefined);

/** What of a condition a watcher wants to see again when it changes: a new attempt counts. */
const conditionKey = (x: Condition) => JSON.stringify([x.type, x.status, x.reason, x.message, x.attempts]);

/** Likewise of a cluster: its phase, ready and each condition. */
const fingerprint = (c: ClusterDetail) => JSON.stringify([c.phase, c.ready, c.conditions.map(conditionKey)]);

/** The status `statusText` shows, from what the event stream sends. */
function asStatus(c: ClusterDetail): SetupStatus {
  return {
    phase: c.phase as Phase,
    ready: c.ready,
    conditions: c.conditions,
    repo: c.repo,
    secrets: c.secrets,
    bootstrap: { fetches: c.bootstrap.fetches, ...(c.bootstrap.lastFetch ? { lastFetch: c.bootstrap.lastFetch } : {}) },
    ...(c.edge ? { edge: c.edge } : {}),
  };
}

export function failedReason(c: ClusterDetail): string {
  const ready = c.conditions.find((x) => x.type === 'Ready');
  return ready ? `${ready.reason}: ${ready.message}` : 'no reason given';
}

/** Local wall-clock time, `HH:MM:SS`, of a change line. */
const clock = (now: number) => new Date(now).toTimeString().slice(0, 8);

/** One line per change between two states of a cluster: its phase, and each condition that changed or went. */
export function changeLines(before: ClusterDetail, after: ClusterDetail, now: number, paint: Paint): string[] {
  const at = clock(now);
  const lines: string[] = [];
  if (before.phase !== after.phase) lines.push(`${at}  phase ${before.phase} -> ${after.phase}`);
  const old = new Map(before.conditions.map((x) => [x.type, x]));
  for (const c of after.conditions) {
    const o = old.get(c.type);
    old.delete(c.type);
    if (o && conditionKey(o) === conditionKey(c)) continue;
    const status = paint(c.status === 'True' ? 'green' : c.status === 'False' ? 'red' : 'yellow', c.status);
    const attempts =
      c.attempts === undefined
        ? ''
        : ` (attempt ${c.attempts}${c.nextAttempt ? `, next ${relative(c.nextAttempt, now)}` : ''})`;
    lines.push(`${at}  ${c.type} ${status} ${c.reason || '-'}${attempts}${c.message ? `: ${c.message}` : ''}`);
  }
  for (const o of old.values()) lines.push(`${at}  ${o.type} cleared`);
  return lines;
}

/**
 * Prints a cluster as it changes: the whole status first, then a line per
 * change, and the whole status again when the watch ends on a change.
 */
class Printer {
  private last: ClusterDetail | undefined;

  constructor(
    private readonly o: WatchOutput,
    private readonly asked: string,
  ) {}

  get shown(): boolean {
    return this.last !== undefined;
  }

  show(c: ClusterDetail): Outcome {
    const before = this.last;
    if (before && fingerprint(before) === fingerprint(c)) return outcome(c);
    this.last = c;
    const now = this.o.now();
    const whole = () => statusText(c.name ?? this.asked, c.uuid, asStatus(c), now, this.o.paint);
    if (this.o.json) this.o.out(JSON.stringify(c));
    else if (!before) this.o.out(`${whole()}\n`);
    else {
      for (const line of changeLines(before, c, now, this.o.paint)) this.o.out(line);
      if (outcome(c)) this.o.out(`\n${whole()}`);
    }
    return outcome(c);
  }

  /** The error that ends a watch whose cluster failed. */
  failure(c: ClusterDetail): CliError {
    return new CliError(`${c.name ?? this.asked} failed: ${failedReason(c)}`);
  }
}

/**
 * Follows `cluster` (a name or UUID) until it is ready or failed, or
 * `timeoutSeconds` pass. A cluster not there yet (just created) is waited
 * for.
 */
export async function watchStatus(
  api: ApiClient,
  cluster: string,
  timeoutSeconds: number | undefined,
  o: WatchOutput,
): Promise<void> {
  const printer = new Printer(o, cluster);
  const timeoutMs = timeoutSeconds && timeoutSeconds > 0 ? timeoutSeconds * 1000 : undefined;
  const expired = () => new CliError(`${cluster} is not ready after ${timeoutSeconds}s`);
  const start = o.now();
  if ((await follow(api, cluster, printer, o, timeoutMs, expired)) === 'no-stream') {
    o.note(`${api.conn.url} has no event stream (GET /v1/events is 404): reading the status every second`);
    const left = timeoutMs === undefined ? undefined : timeoutMs - (o.now() - start);
    await poll(api, cluster, printer, o, left === undefined ? Infinity : o.now() + left, expired);
  }
}

/** The watch over `GET /v1/events`; 'no-stream' when the service has none. */
function follow(
  api: ApiClient,
  cluster: string,
  printer: Printer,
  o: WatchOutput,
  timeoutMs: number | undefined,
  expired: () => CliError,
): Promise<'done' | 'no-stream'> {
  const { source, refused, unreachable } = api.events();
  return new Promise((resolve, reject) => {
    /** The clusters the caller may see, as the stream last sent them. */
    const clusters = new Map<string, ClusterDetail>();
    /** What the current stream's snapshot has named so far. */
    let snapshot = new Set<string>();
    let synced = false;
    let opened = false;
    let target = isUuid(cluster) ? cluster.toLowerCase() : undefined;
    let waiting = false;
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => end(expired()), timeoutMs);
    function end(r: 'done' | 'no-stream' | Error): void {
      clearTimeout(timer);
      source.close();
      if (r instanceof Error) reject(r);
      else resolve(r);
    }
    const gone = () => new CliError(`${cluster} was deleted, or you may no longer manage it`, EXIT.notFound);
    const wait = () => {
      if (!waiting) o.note(`waiting for ${cluster} to appear`);
      waiting = true;
    };

    /** Once the snapshot is complete: find the cluster, show it, and end on ready or failed. */
    const consider = () => {
      if (!synced) return;
      if (target === undefined) {
        try {
          target = pickCluster([...clusters.values()], cluster).uuid;
        } catch (e) {
          // A name not listed yet may be a cluster just created: its first status is an event.
          if (e instanceof CliError && e.code === EXIT.notFound) return wait();
          return end(e as Error);
        }
      }
      const c = clusters.get(target);
      if (!c) return printer.shown ? end(gone()) : wait();
      const r = printer.show(c);
      if (r === 'ready') end('done');
      else if (r === 'failed') end(printer.failure(c));
    };

    const data = <T>(e: MessageEvent) => JSON.parse(String(e.data)) as T;
    source.addEventListener('open', () => {
      if (opened) o.note('the event stream is back');
      opened = true;
      synced = false;
      snapshot = new Set();
    });
    source.addEventListener('cluster', (e) => {
      const c = data<ClusterDetail>(e);
      clusters.set(c.uuid, c);
      snapshot.add(c.uuid);
      consider();
    });
    source.addEventListener('removed', (e) => {
      const { uuid } = data<{ uuid: string }>(e);
      clusters.delete(uuid);
      if (uuid === target) end(gone());
    });
    source.addEventListener('synced', () => {
      // A stream starts with every cluster: what this one did not name is gone.
      for (const id of clusters.keys()) if (!snapshot.has(id)) clusters.delete(id);
      synced = true;
      consider();
    });
    source.addEventListener('error', (e: ErrorEvent) => {
      // The client gives up (CLOSED) only on an answer that is not the stream.
      if (source.readyState === EventSource.CLOSED) {
        const r = refused();
        if (r?.status === 404) end('no-stream');
        else end(r?.error ?? new CliError(`the event stream failed: ${e.message ?? 'no reason given'}`));
      } else if (!opened) {
        const why = unreachable() ?? e.message ?? 'no reason given';
        end(new CliError(`cannot reach the Cluster Manager at ${api.conn.url}: ${why}`));
      } else {
        o.note(`the event stream dropped${e.message ? ` (${e.message})` : ''}; reconnecting`);
      }
    });
  });
}

/** The watch for a Cluster Manager without the event stream: its status read every POLL_MS. */
async function poll(
  api: ApiClient,
  cluster: string,
  printer: Printer,
  o: WatchOutput,
  deadline: number,
  expired: () => CliError,
): Promise<void> {
  let c: { uuid: string; name: string } | undefined;
  for (;;) {
    if (!c) {
      try {
        c = await api.resolve(cluster);
      } catch (e) {
        if (!(e instanceof CliError && e.code === EXIT.notFound) || o.now() > deadline) throw e;
      }
    }
    if (c) {
      const d = clusterDetail(c.uuid, (await api.status(c.uuid)) as unknown as Json);
      const r = printer.show(d);
      if (r === 'ready') return;
      if (r === 'failed') throw printer.failure(d);
    }
    if (o.now() > deadline) throw expired();
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
