import type { Logger } from 'pino';
import { send, type Sent } from '../lib/http-client.js';
import { silentLogger } from '../lib/log.js';

/** A Factory+ service answered with an unexpected status, or could not be reached (status 0). */
export class ServiceError extends Error {
  constructor(
    readonly service: string,
    readonly status: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'ServiceError';
  }

  /** Which Factory+ service failed (`ConfigStore`, `Auth`, `Directory`), set by its client. */
  label?: string;
}

export interface Credentials {
  username: string;
  password: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Raw bytes/text body; `body` is sent as JSON otherwise. */
  raw?: string | Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
  /** Statuses that are answers rather than errors (default: 2xx). */
  accept?: number[];
  timeoutMs?: number;
  /** A POST that may safely be sent twice (e.g. creating an object under a given UUID). */
  idempotent?: boolean;
  /** Names the service in errors (ServiceError.label). */
  label?: string;
}

export interface Response<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

interface Token {
  token: string;
  expiry: number;
}

/**
 * HTTP to Factory+ services: exchanges the service credentials for a bearer
 * token at each service's `/token`, sends it on every request, fetches a new
 * one on a 401 and retries once. The same client talks to the embedded core
 * and to a real installation.
 */
export class FplusHttp {
  private readonly tokens = new Map<string, Promise<Token>>();
  private readonly log: Logger;
  readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;

  /** A request unanswered for this long makes its service count as failing, before its own timeout. */
  private readonly stallMs: number;

  constructor(
    private readonly creds: Credentials,
    opts: { log?: Logger; timeoutMs?: number; retries?: number; retryDelayMs?: number; stallMs?: number } = {},
  ) {
    this.log = opts.log ?? silentLogger;
    this.timeoutMs = opts.timeoutMs ?? 15_000;
    this.stallMs = opts.stallMs ?? 5_000;
    this.retries = opts.retries ?? 2;
    this.retryDelayMs = opts.retryDelayMs ?? 100;
  }

  private basic(): string {
    return `Basic ${Buffer.from(`${this.creds.username}:${this.creds.password}`).toString('base64')}`;
  }

  private async fetchToken(origin: string): Promise<Token> {
    const url = new URL('/token', origin);
    let res: Sent;
    try {
      res = await send(url, {
        method: 'POST',
        headers: { Authorization: this.basic(), Accept: 'application/json' },
        timeoutMs: this.timeoutMs,
      });
    } catch (e) {
      throw new ServiceError(origin, 0, `cannot reach ${url}: ${(e as Error).message}`);
    }
    const text = res.text;
    if (res.status !== 200) {
      throw new ServiceError(
        origin,
        res.status,
        `token request to ${url} failed with ${res.status}: ${text.slice(0, 200)}`,
      );
    }
    const tok = JSON.parse(text) as Token;
    if (typeof tok.token !== 'string') throw new ServiceError(origin, 502, `token answer from ${url} has no token`);
    return tok;
  }

  /** A valid token for the service at `origin`; concurrent callers share one request. */
  async token(origin: string, fresh = false): Promise<string> {
    let p = this.tokens.get(origin);
    if (p && !fresh) {
      const t = await p.catch(() => undefined);
      if (t && t.expiry - Date.now() > 120_000) return t.token;
      if (this.tokens.get(origin) !== p) return this.token(origin);
    }
    p = this.fetchToken(origin);
    this.tokens.set(origin, p);
    p.catch(() => {
      if (this.tokens.get(origin) === p) this.tokens.delete(origin);
    });
    return (await p).token;
  }

  /**
   * One request. Idempotent requests (all but POST, unless `idempotent`) are
   * retried a few times on a 5xx answer or a lost connection, so a service's
   * passing hiccup does not fail a whole reconcile step.
   */
  async request<T = unknown>(
    base: string,
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<Response<T>> {
    const retries = method === 'POST' && !opts.idempotent ? 0 : this.retries;
    const origin = new URL(path, base).origin;
    const id = this.started(origin);
    try {
      return await this.attempts<T>(base, method, path, opts, origin, retries);
    } catch (e) {
      if (e instanceof ServiceError && opts.label) e.label ??= opts.label;
      throw e;
    } finally {
      this.inFlight.get(origin)?.delete(id);
    }
  }

  private async attempts<T>(
    base: string,
    method: string,
    path: string,
    opts: RequestOptions,
    origin: string,
    retries: number,
  ): Promise<Response<T>> {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.once<T>(base, method, path, opts);
        this.note(origin, undefined);
        return res;
      } catch (e) {
        const transient = e instanceof ServiceError && (e.status === 0 || (e.status >= 500 && e.status !== 501));
        if (transient) this.note(origin, e as Error);
        // A request that ran into its time limit has waited long enough.
        const timedOut = /no answer within/.test((e as Error).message);
        if (!transient || timedOut || attempt >= retries) throw e;
        this.log.debug({ method, path, err: (e as Error).message, attempt }, 'retrying a request');
        await new Promise((r) => setTimeout(r, this.retryDelayMs * 3 ** attempt));
      }
    }
  }

  private readonly health = new Map<string, { ok: boolean; since: number; error?: string }>();
  /** Start times of the requests under way, by origin, in start order. */
  private readonly inFlight = new Map<string, Map<number, number>>();
  private nextRequest = 0;

  private started(origin: string): number {
    let m = this.inFlight.get(origin);
    if (!m) {
      m = new Map();
      this.inFlight.set(origin, m);
    }
    const id = this.nextRequest++;
    m.set(id, Date.now());
    return id;
  }

  private note(origin: string, err: Error | undefined): void {
    const h = this.health.get(origin);
    if (h && h.ok === !err) {
      if (err) h.error = err.message;
      return;
    }
    this.health.set(origin, { ok: !err, since: Date.now(), error: err?.message });
  }

  /**
   * Whether the service at `origin` answered the last request (undefined:
   * not asked yet). A service that has left a request unanswered for
   * `stallMs` is failing too: a hang shows before the request times out.
   */
  originHealth(origin: string): { ok: boolean; since: number; error?: string } | undefined {
    const oldest = this.inFlight.get(origin)?.values().next().value;
    if (oldest !== undefined && Date.now() - oldest >= this.stallMs) {
      return {
        ok: false,
        since: oldest + this.stallMs,
        error: `a request has had no answer for ${Math.round((Date.now() - oldest) / 1000)} s`,
      };
    }
    return this.health.get(origin);
  }

  private async once<T>(base: string, method: string, path: string, opts: RequestOptions): Promise<Response<T>> {
    const url = new URL(path, base);
    const accept = opts.accept ?? [];
    for (let attempt = 0; ; attempt++) {
      const token = await this.token(url.origin, attempt > 0);
      const headers: Record<string, string> = {
        Accept: 'application/json',
        Authorization: `Bearer ${token}`,
        ...opts.headers,
      };
      let body: string | Uint8Array | undefined;
      if (opts.raw !== undefined) {
        body = opts.raw;
        headers['Content-Type'] = opts.contentType ?? 'application/octet-stream';
      } else if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['Content-Type'] = opts.contentType ?? 'application/json';
      }
      let res: Sent;
      try {
        res = await send(url, { method, headers, body, timeoutMs: opts.timeoutMs ?? this.timeoutMs });
      } catch (e) {
        throw new ServiceError(url.origin, 0, `${method} ${url} failed: ${(e as Error).message}`);
      }
      if (res.status === 401 && attempt === 0) {
        this.log.debug({ url: url.href }, 'token refused, fetching a new one');
        continue;
      }
      const text = res.text;
      let parsed: unknown = text;
      if (text && (res.headers.get('content-type') ?? '').includes('json')) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
      }
      if ((res.status >= 200 && res.status < 300) || accept.includes(res.status)) {
        return { status: res.status, headers: res.headers, body: (text ? parsed : undefined) as T };
      }
      const detail =
        typeof parsed === 'object' && parsed && 'message' in parsed
          ? (parsed as { message: string }).message
          : text.slice(0, 300);
      throw new ServiceError(
        url.origin,
        res.status,
        `${method} ${url.pathname} answered ${res.status}: ${detail}`,
        parsed,
      );
    }
  }
}
