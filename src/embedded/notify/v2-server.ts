/**
 * The Factory+ change-notify interface, version 2 (`notify/v2`), as a
 * WebSocket endpoint beside a service's HTTP API. The service supplies the
 * URLs that may be subscribed to (as WATCH or SEARCH) and a stream of change
 * hints; this module keeps the sessions and subscriptions.
 *
 * Protocol, as the Factory+ services speak it:
 * - upgrade at `/notify/v2`; the first message is the text `Bearer <token>`
 *   (a token from the service's `/token`), answered `200`, `400` (not such a
 *   message) or `401` (unknown token) — the last two close the socket;
 * - then JSON requests `{uuid, method: WATCH|SEARCH|CLOSE, ...}` and JSON
 *   updates `{uuid, status, response, [child|children]}`: subscription status
 *   201 with the complete current answer first, 200 for every change after,
 *   400/404 for requests that cannot be subscribed to, 410 after CLOSE;
 * - an HTTP error (403, 404) is an answer inside a live subscription, not
 *   the end of it: access may be granted later.
 *
 * Answers are recomputed when a hint says the subscription may be affected
 * and sent only when they differ, which is what a client polling the HTTP
 * API and ignoring identical answers would see. Hints raised together (one
 * transaction) are handled in one pass after the current event loop turn.
 *
 * Limits on what a client can make us hold: sockets, subscriptions per
 * socket, message size, time to authenticate, and unsent updates queued for
 * a client that does not read (such a client is disconnected).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from '../../lib/log.js';
import { applyMergePatch, canonicalJson, isJsonObject, jsonEqual, type Json } from '../../lib/merge-patch.js';
import type { Principal } from '../auth/model.js';

const NOTIFY_V2_PATH = '/notify/v2';

/** An HTTP answer as it travels inside an update. */
export interface HttpAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: Json;
}

/** A single resource: its answer is recomputed when `affects` says so. */
export interface WatchSpec<E> {
  answer(): HttpAnswer;
  affects(hint: E): boolean;
}

/** The children of a parent URL. */
export interface SearchSpec<E> {
  /** 204 when the children may be listed; a 403 or 404 answer otherwise. */
  parent(): HttpAnswer;
  /** Child paths that exist now. */
  children(): string[];
  child(name: string): HttpAnswer;
  /**
   * What a hint may have changed: some children, `[]` for the parent's
   * answer only (access), `'all'` for any child, or nothing.
   */
  affects(hint: E): 'all' | string[] | false;
}

type Params = Record<string, string>;

export interface WatchRoute<E> {
  path: string;
  /** Undefined when the parameters name nothing that can be watched (subscription 404). */
  open(principal: Principal, params: Params): WatchSpec<E> | undefined;
}

export interface SearchRoute<E> {
  path: string;
  open(principal: Principal, params: Params): SearchSpec<E> | undefined;
}

export interface NotifyLimits {
  /** Open WebSockets per service. */
  sockets: number;
  /** Live subscriptions per socket. */
  subscriptions: number;
  /** Largest message a client may send, in bytes. */
  messageBytes: number;
  /** How long a new socket may take to authenticate. */
  authTimeoutMs: number;
  /** Updates queued for a client that does not read, in bytes, before it is disconnected. */
  bufferedBytes: number;
}

const DEFAULT_NOTIFY_LIMITS: NotifyLimits = {
  sockets: 256,
  subscriptions: 1000,
  messageBytes: 64 * 1024,
  authTimeoutMs: 5000,
  bufferedBytes: 8 * 1024 * 1024,
};

export interface NotifyV2Options<E> {
  watch: WatchRoute<E>[];
  search: SearchRoute<E>[];
  /** The principal a bearer token stands for. */
  authenticate(token: string): Principal | undefined;
  /** Registers a listener for change hints; returns its unregister function. */
  changes(listener: (hint: E) => void): () => void;
  log: Logger;
  limits?: Partial<NotifyLimits>;
}

/** `Bearer` and a token of the characters RFC 6750 allows, nothing before or after. */
const AUTH_RE = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/;

interface Pattern {
  segs: string[];
}

function splitPath(p: string): string[] {
  return (p.endsWith('/') ? p.slice(0, -1) : p).split('/');
}

/**
 * Matches a relative URL against `a/:b/c/`: a trailing slash is optional, as
 * in the Factory+ services' routing, but the URL must be relative to the
 * service base (no leading slash) and carry no query.
 */
function matchPath(pattern: Pattern, url: string): Params | undefined {
  if (url.startsWith('/') || /[?#]/.test(url)) return undefined;
  const segs = splitPath(url);
  if (segs.length !== pattern.segs.length) return undefined;
  const params: Params = {};
  for (let i = 0; i < segs.length; i++) {
    const p = pattern.segs[i]!;
    const s = segs[i]!;
    if (p.startsWith(':')) {
      if (s === '') return undefined;
      try {
        params[p.slice(1)] = decodeURIComponent(s);
      } catch {
        return undefined;
      }
    } else if (p !== s) return undefined;
  }
  return params;
}

/** A filter selects a child when merging it into the child's body changes nothing. */
function selected(answer: HttpAnswer, filter: Json | undefined): boolean {
  if (filter === undefined) return true;
  if (answer.status >= 300) return false;
  return jsonEqual(applyMergePatch(answer.body ?? null, filter), answer.body ?? null);
}

function digest(a: HttpAnswer): string {
  return createHash('sha256')
    .update(canonicalJson(a as unknown as Json))
    .digest('base64');
}

type Send = (update: Record<string, unknown>) => void;

interface Subscription<E> {
  /** Recomputes and sends what changed; `scope` is what the hints said (an empty set: the parent only). */
  refresh(scope: 'all' | Set<string>): void;
  affects(hint: E): 'all' | string[] | false;
}

function watchSubscription<E>(spec: WatchSpec<E>, head: boolean, send: Send): Subscription<E> {
  const answer = (): HttpAnswer => {
    const a = spec.answer();
    if (!head || a.body === undefined) return a;
    const { body: _omit, ...rest } = a;
    return rest;
  };
  let last = answer();
  send({ status: 201, response: last });
  return {
    affects: (hint) => (spec.affects(hint) ? 'all' : false),
    refresh() {
      const next = answer();
      if (jsonEqual(next as unknown as Json, last as unknown as Json)) return;
      last = next;
      send({ status: 200, response: next });
    },
  };
}

function searchSubscription<E>(spec: SearchSpec<E>, filter: Json | undefined, send: Send): Subscription<E> {
  /** Whether the children may be listed, as last reported. */
  let access = false;
  /** Children that exist, selected or not (to tell a creation from a move into the selection). */
  let known = new Set<string>();
  /** Selected children reported to the client, by a digest of their last answer. */
  let reported = new Map<string, string>();

  const full = (status: number): void => {
    const parent = spec.parent();
    if (parent.status >= 300) {
      access = false;
      known = new Set();
      reported = new Map();
      send({ status, response: parent });
      return;
    }
    access = true;
    known = new Set(spec.children());
    reported = new Map();
    const children: Record<string, HttpAnswer> = {};
    for (const c of known) {
      const a = spec.child(c);
      if (!selected(a, filter)) continue;
      children[c] = a;
      reported.set(c, digest(a));
    }
    send({ status, response: { status: 204 }, children });
  };

  const childUpdate = (c: string): void => {
    const existed = known.has(c);
    const a = spec.child(c);
    const exists = a.status !== 404;
    if (exists) known.add(c);
    else known.delete(c);
    const was = reported.get(c);
    if (exists && selected(a, filter)) {
      const d = digest(a);
      if (was === d) return;
      reported.set(c, d);
      // A child new to the parent is reported as created.
      send({ status: 200, child: c, response: existed ? a : { ...a, status: 201 } });
    } else if (was !== undefined) {
      reported.delete(c);
      send({ status: 200, child: c, response: exists ? { status: 412 } : { status: 404 } });
    }
  };

  full(201);
  return {
    affects: (hint) => spec.affects(hint),
    refresh(scope) {
      const parent = spec.parent();
      if (parent.status < 300 !== access) {
        // Access gained or lost: a full or a no-access update, never a child update.
        full(200);
        return;
      }
      if (!access) return;
      const names = scope === 'all' ? new Set([...spec.children(), ...known]) : scope;
      for (const c of names) childUpdate(c);
    },
  };
}

/** One WebSocket: authentication, then subscriptions. */
class Session<E> {
  principal: Principal | undefined;
  readonly subs = new Map<string, Subscription<E>>();
  /** Hints gathered since the last refresh, per subscription. */
  readonly dirty = new Map<string, 'all' | Set<string>>();

  constructor(
    private readonly server: NotifyV2Server<E>,
    readonly ws: WebSocket,
    private readonly limits: NotifyLimits,
    private readonly log: Logger,
  ) {}

  send(msg: Record<string, unknown>): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    if (this.ws.bufferedAmount > this.limits.bufferedBytes) {
      this.log.warn({ principal: this.principal?.uuid }, 'notify client does not read its updates; disconnecting');
      this.ws.terminate();
      return;
    }
    this.ws.send(JSON.stringify(msg));
  }

  onMessage(data: RawData, binary: boolean): void {
    if (!this.principal) {
      this.authenticate(binary ? undefined : data.toString('utf8'));
      return;
    }
    let req: unknown;
    try {
      req = binary ? undefined : JSON.parse(data.toString('utf8'));
    } catch {
      req = undefined;
    }
    if (
      !isJsonObject(req as Json) ||
      typeof (req as { uuid?: unknown }).uuid !== 'string' ||
      (req as { uuid: string }).uuid === ''
    ) {
      // Nothing to answer to: the stream of requests is broken.
      this.ws.close(1008, 'requests must be JSON objects with a uuid');
      return;
    }
    this.request(req as { [k: string]: Json } & { uuid: string });
  }

  private authenticate(text: string | undefined): void {
    const m = text === undefined ? null : AUTH_RE.exec(text);
    const principal = m ? this.server.opts.authenticate(m[1]!) : undefined;
    const status = !m ? '400' : principal ? '200' : '401';
    this.ws.send(status);
    if (!principal) {
      this.ws.close();
      return;
    }
    this.principal = principal;
    this.server.authenticated(this);
  }

  private request(req: { [k: string]: Json } & { uuid: string }): void {
    const { uuid } = req;
    const send: Send = (u) => this.send({ uuid, ...u });
    if (req.method === 'CLOSE') {
      // CLOSE of a subscription that is not open has nothing to close.
      if (this.subs.delete(uuid)) {
        this.dirty.delete(uuid);
        send({ status: 410 });
      }
      return;
    }
    if (this.subs.has(uuid)) {
      send({ status: 400 });
      return;
    }
    if (this.subs.size >= this.limits.subscriptions) {
      send({ status: 503 });
      return;
    }
    let sub: Subscription<E> | undefined | 'bad';
    try {
      sub = this.open(req, send);
    } catch (err) {
      this.log.warn({ err, uuid }, 'notify subscription failed');
      send({ status: 500 });
      return;
    }
    if (sub === 'bad') send({ status: 400 });
    else if (!sub) send({ status: 404 });
    else this.subs.set(uuid, sub);
  }

  private open(req: { [k: string]: Json }, send: Send): Subscription<E> | undefined | 'bad' {
    const principal = this.principal!;
    if (req.method === 'WATCH') {
      const r = req.request;
      if (!isJsonObject(r) || typeof r.url !== 'string') return 'bad';
      const method = r.method ?? 'GET';
      // Only reads can be watched; the services support GET (and HEAD, without bodies).
      if (method !== 'GET' && method !== 'HEAD') return undefined;
      for (const route of this.server.watchRoutes) {
        const params = matchPath(route.pattern, r.url);
        const spec = params && route.open(principal, params);
        if (spec) return watchSubscription(spec, method === 'HEAD', send);
      }
      return undefined;
    }
    if (req.method === 'SEARCH') {
      if (typeof req.parent !== 'string' || !req.parent.endsWith('/')) return 'bad';
      for (const route of this.server.searchRoutes) {
        const params = matchPath(route.pattern, req.parent);
        const spec = params && route.open(principal, params);
        if (spec) return searchSubscription(spec, req.filter, send);
      }
      return undefined;
    }
    return 'bad';
  }

  /** Records which subscriptions a hint may concern. */
  hint(h: E): boolean {
    let any = false;
    for (const [uuid, sub] of this.subs) {
      const scope = sub.affects(h);
      if (!scope) continue;
      any = true;
      const cur = this.dirty.get(uuid);
      if (scope === 'all' || cur === 'all') this.dirty.set(uuid, 'all');
      else if (cur) for (const c of scope) cur.add(c);
      else this.dirty.set(uuid, new Set(scope));
    }
    return any;
  }

  flush(): void {
    const work = [...this.dirty];
    this.dirty.clear();
    for (const [uuid, scope] of work) {
      const sub = this.subs.get(uuid);
      if (!sub) continue;
      try {
        sub.refresh(scope);
      } catch (err) {
        this.log.warn({ err, uuid }, 'notify subscription failed');
        this.subs.delete(uuid);
        this.send({ uuid, status: 500 });
      }
    }
  }

  close(): void {
    this.subs.clear();
    this.dirty.clear();
  }
}

/** The `notify/v2` endpoint of one service. */
export class NotifyV2Server<E> {
  readonly watchRoutes: Array<WatchRoute<E> & { pattern: Pattern }>;
  readonly searchRoutes: Array<SearchRoute<E> & { pattern: Pattern }>;
  private readonly limits: NotifyLimits;
  private readonly log: Logger;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<Session<E>>();
  private readonly live = new Set<Session<E>>();
  private readonly unlisten: () => void;
  private flushScheduled = false;
  private closed = false;

  constructor(readonly opts: NotifyV2Options<E>) {
    this.limits = { ...DEFAULT_NOTIFY_LIMITS, ...opts.limits };
    this.log = opts.log.child({ notify: 'v2' });
    this.watchRoutes = opts.watch.map((r) => ({ ...r, pattern: { segs: splitPath(r.path) } }));
    this.searchRoutes = opts.search.map((r) => ({ ...r, pattern: { segs: splitPath(r.path) } }));
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.limits.messageBytes, perMessageDeflate: false });
    this.unlisten = opts.changes((h) => this.onHint(h));
  }

  /** Number of open sockets (authenticated or not). */
  get sockets(): number {
    return this.sessions.size;
  }

  /** Takes WebSocket upgrades at `/notify/v2` on this HTTP server; other upgrades are refused. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (this.closed) return refuse(503, 'Service Unavailable');
    if (path !== NOTIFY_V2_PATH) return refuse(404, 'Not Found');
    if (this.sessions.size >= this.limits.sockets) {
      this.log.warn({ sockets: this.sessions.size }, 'notify socket refused: too many open');
      return refuse(503, 'Service Unavailable');
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connection(ws));
  }

  private connection(ws: WebSocket): void {
    const session = new Session(this, ws, this.limits, this.log);
    this.sessions.add(session);
    // A socket that never authenticates would otherwise be held for ever.
    const timer = setTimeout(() => {
      if (!session.principal) ws.close(1008, 'authentication timeout');
    }, this.limits.authTimeoutMs);
    timer.unref();
    ws.on('message', (data, binary) => session.onMessage(data, binary));
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'notify socket error'));
    ws.on('close', () => {
      clearTimeout(timer);
      session.close();
      this.sessions.delete(session);
      this.live.delete(session);
    });
  }

  /** Called by a session once its client has authenticated. */
  authenticated(session: Session<E>): void {
    this.live.add(session);
    this.log.debug({ principal: session.principal?.uuid }, 'notify client authenticated');
  }

  private onHint(h: E): void {
    let any = false;
    for (const s of this.live) if (s.hint(h)) any = true;
    if (!any || this.flushScheduled) return;
    this.flushScheduled = true;
    // After the current turn: every hint of one transaction is in by then.
    setImmediate(() => {
      this.flushScheduled = false;
      for (const s of this.live) s.flush();
    });
  }

  /** Disconnects every client and stops listening for changes. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unlisten();
    for (const s of this.sessions) s.ws.terminate();
    this.wss.close();
  }
}
