import Router from '@koa/router';
import type { ServerResponse } from 'node:http';
import type { Context } from 'koa';
import { HttpError } from '../lib/http-errors.js';
import type { Status } from '../reconcile/status.js';
import type { AuthState } from './authn.js';
import { clusterDetail } from './cluster-summary.js';
import type { ApiDeps } from './deps.js';
import { principalOf } from './params.js';

export interface EventStreamOptions {
  /** Streams open at once (MAX_EVENT_STREAMS); one more is refused with 503. */
  maxStreams: number;
  /**
   * Streams one principal may have open at once (MAX_EVENT_STREAMS_PER_CALLER);
   * one more is refused with 429, so that one caller cannot take every slot.
   */
  maxStreamsPerCaller?: number;
  /** The `retry` a stream starts with: how long a client such as EventSource waits before it reconnects. */
  retryMs?: number;
  /** A comment line this often keeps proxies from closing an idle stream. */
  heartbeatMs?: number;
  /** How often a stream's ACL is asked again: grants change while a page stays open. */
  aclRecheckMs?: number;
  /** Changes within this window are sent together, one event per cluster. */
  coalesceMs?: number;
  /** A client that has not taken what was written for this long is dropped. */
  stallMs?: number;
}

/** One `text/event-stream` frame; JSON has no raw newlines, so `data` is one line. */
function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Status entries are replaced on every change, never changed in place, so
 * the frame of an entry object is made once however many streams send it.
 */
const frames = new WeakMap<Status, string>();
function clusterFrame(uuid: string, st: Status): string {
  let f = frames.get(st);
  if (f === undefined) {
    f = sseFrame('cluster', clusterDetail(uuid, st));
    frames.set(st, f);
  }
  return f;
}

/**
 * One open stream. What it still has to send is a set of cluster UUIDs, not
 * of frames: a burst of changes to one cluster is one event, the frame is
 * made from the status as it is when the socket can take it, and a slow
 * reader holds at most one entry per cluster here plus what the socket
 * buffers — never a growing queue.
 */
class Stream {
  private targets: Set<string>;
  /** Clusters this stream has been sent and not told were removed. */
  private readonly sent = new Set<string>();
  private readonly backlog = new Set<string>();
  private synced = false;
  private blockedSince: number | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  closed = false;

  constructor(
    private readonly hub: EventHub,
    private readonly res: ServerResponse,
    readonly principal: string,
    targets: Set<string>,
  ) {
    this.targets = targets;
  }

  private sees(cluster: string): boolean {
    return this.targets.has(this.hub.wildcard) || this.targets.has(cluster);
  }

  start(expiry: number | undefined): void {
    const o = this.hub.o;
    this.res.socket?.setNoDelay(true);
    this.res.on('drain', () => {
      this.blockedSince = undefined;
      this.pump();
    });
    this.res.on('close', () => this.close());
    this.timers.push(
      setInterval(() => {
        if (this.blockedSince !== undefined) {
          if (Date.now() - this.blockedSince > (o.stallMs ?? 30_000)) this.close('the client reads too slowly');
          return;
        }
        this.write(': heartbeat\n\n');
      }, o.heartbeatMs ?? 15_000),
      setInterval(() => void this.recheck(), o.aclRecheckMs ?? 15_000),
    );
    // A stream lives no longer than the credential it was opened with.
    if (expiry !== undefined)
      this.timers.push(
        setTimeout(() => this.close('the credential expired'), Math.min(expiry - Date.now(), 2 ** 31 - 1)),
      );
    for (const t of this.timers) t.unref();
    // Reconnecting clients (EventSource) wait this long; the snapshot follows.
    // Events carry no id: every stream starts with a full snapshot, so a
    // client has nothing to resume and sends no Last-Event-ID.
    this.write(`retry: ${o.retryMs ?? 5000}\n\n`);
    for (const id of this.hub.clusters()) if (this.sees(id)) this.backlog.add(id);
    this.pump();
  }

  private write(s: string): boolean {
    if (this.closed) return false;
    const ok = this.res.write(s);
    if (!ok && this.blockedSince === undefined) this.blockedSince = Date.now();
    return ok;
  }

  /** Clusters changed: queue those this stream is concerned with. */
  changed(ids: Iterable<string>): void {
    for (const id of ids) if (this.sees(id) || this.sent.has(id)) this.backlog.add(id);
    this.pump();
  }

  /** Writes what is queued while the socket takes it; the rest waits for `drain`. */
  private pump(): void {
    if (this.closed) return;
    for (const id of this.backlog) {
      if (this.blockedSince !== undefined) return;
      this.backlog.delete(id);
      const st = this.hub.status(id);
      if (st && this.sees(id)) {
        this.sent.add(id);
        this.write(clusterFrame(id, st));
      } else if (this.sent.delete(id)) {
        this.write(sseFrame('removed', { uuid: id }));
      }
    }
    if (!this.synced && this.blockedSince === undefined) {
      this.synced = true;
      this.write(sseFrame('synced', { clusters: this.sent.size }));
    }
  }

  /** Asks for the ACL again; clusters that came into or out of view are sent or removed. */
  private async recheck(): Promise<void> {
    try {
      this.targets = await this.hub.targets(this.principal);
    } catch {
      // Fail closed: without an ACL nothing more is sent; the client reconnects and is asked again.
      this.close('the ACL cannot be read');
      return;
    }
    const ids = new Set([...this.hub.clusters(), ...this.sent]);
    for (const id of ids) if (this.sees(id) !== this.sent.has(id)) this.backlog.add(id);
    this.pump();
  }

  close(why?: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    if (why) this.hub.d.log.info({ principal: this.principal, why }, 'event stream closed');
    // A stalled client's socket would keep its buffer until it reads: cut it.
    if (this.blockedSince !== undefined) this.res.destroy();
    else this.res.end();
    this.hub.remove(this);
  }
}

/**
 * The live feed behind `GET /v1/events`: every status change, coalesced over
 * a short window, sent to each open stream whose caller holds Manage
 * clusters on that cluster (or the wildcard).
 */
export class EventHub {
  private readonly streams = new Set<Stream>();
  /** Slots taken, counting streams still waiting for their ACL. */
  private taken = 0;
  /** Slots taken per principal, likewise; a principal with none has no entry. */
  private readonly takenBy = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  readonly wildcard: string;
  private readonly manage: string;

  constructor(
    readonly d: ApiDeps,
    readonly o: EventStreamOptions,
  ) {
    const u = d.manager.config.uuids;
    this.wildcard = u.special.wildcard;
    this.manage = u.perm.manageClusters;
    d.manager.status.onChange((cluster) => this.changed(cluster));
  }

  get size(): number {
    return this.streams.size;
  }

  clusters(): string[] {
    return this.d.manager.status.clusters();
  }

  status(cluster: string): Status | undefined {
    return this.d.manager.status.get(cluster);
  }

  targets(principal: string): Promise<Set<string>> {
    return this.d.acl.targets(principal, this.manage);
  }

  private changed(cluster: string): void {
    if (!this.streams.size) return;
    this.dirty.add(cluster);
    this.flushTimer ??= setTimeout(() => this.flush(), this.o.coalesceMs ?? 50);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const ids = [...this.dirty];
    this.dirty.clear();
    for (const s of this.streams) s.changed(ids);
  }

  remove(s: Stream): void {
    if (this.streams.delete(s)) this.release(s.principal);
  }

  /**
   * Takes a slot for `principal`, or refuses: 429 when that caller holds its
   * share already (its own doing, and others are unaffected), else 503 when
   * every slot is taken.
   */
  private take(principal: string): void {
    const mine = this.takenBy.get(principal) ?? 0;
    const perCaller = this.o.maxStreamsPerCaller ?? Infinity;
    if (mine >= perCaller)
      throw new HttpError(
        429,
        `too many event streams are open for this caller (${perCaller}, MAX_EVENT_STREAMS_PER_CALLER); close one or try again later`,
        { 'Retry-After': '30' },
      );
    if (this.taken >= this.o.maxStreams)
      throw new HttpError(
        503,
        `too many event streams are open (${this.o.maxStreams}, MAX_EVENT_STREAMS); try again later`,
        { 'Retry-After': '30' },
      );
    this.taken++;
    this.takenBy.set(principal, mine + 1);
  }

  private release(principal: string): void {
    this.taken--;
    const mine = (this.takenBy.get(principal) ?? 1) - 1;
    if (mine > 0) this.takenBy.set(principal, mine);
    else this.takenBy.delete(principal);
  }

  /** Ends every stream (the service is stopping). */
  close(): void {
    for (const s of [...this.streams]) s.close();
    clearTimeout(this.flushTimer);
  }

  async open(ctx: Context): Promise<void> {
    const principal = principalOf(ctx);
    this.take(principal);
    let stream: Stream;
    try {
      const targets = await this.targets(principal);
      stream = new Stream(this, ctx.res, principal, targets);
    } catch (e) {
      this.release(principal);
      throw e;
    }
    if (ctx.req.destroyed) {
      this.release(principal);
      return;
    }
    this.streams.add(stream);
    // The answer is written here, frame by frame, not by Koa.
    ctx.status = 200;
    ctx.respond = false;
    ctx.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      // Reverse proxies (nginx) would otherwise hold the frames back.
      'X-Accel-Buffering': 'no',
    });
    stream.start((ctx.state as AuthState).credentialExpiry);
  }
}

/** `GET /v1/events`: a server-sent events stream of the clusters the caller may manage. */
export function eventRoutes(hub: EventHub): Router {
  const r = new Router();
  r.get('/v1/events', (ctx) => hub.open(ctx));
  return r;
}
