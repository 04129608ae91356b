/**
 * The Cluster Manager's HTTP API as functions, and the Config Store calls
 * that create and delete a cluster as an operator's scripts make them. Every
 * answer that is not a success becomes a `CliError` with the service's own
 * message and the exit code its status maps to.
 */
import { EventSource } from 'eventsource';
import { ClusterNames } from '../reconcile/names.js';
import type { ClusterDetail, ClusterSummary } from '../http/cluster-summary.js';
import type { SetupStatus } from '../reconcile/setup-status.js';
import { basicAuth, type Connection } from './connection.js';
import { CliError, EXIT, exitCodeOf } from './exit.js';

export type { ClusterDetail, ClusterSummary };

export interface SecretEntry {
  path: string;
  namespace: string;
  name: string;
  scope: string;
  keys: string[];
  certFingerprints: Record<string, string>;
  sealingCertificate: { fingerprint: string; subject: string; notBefore: string; notAfter: string } | null;
}

export interface ResealReport {
  certificate: unknown;
  sealingCertificate: unknown;
  stale: Array<{ namespace: string; name: string; key: string; sealedFor: string | null }>;
  message: string;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string) => UUID_RE.test(s);

/** Names as the service compares them when it gives each cluster its own. */
const folded = (s: string) => ClusterNames.key(s);

/** The service's `message` (or `error`) from an error body, else the status line. */
function messageOf(a: Answer, what: string): string {
  try {
    const b = JSON.parse(a.text) as { message?: unknown; error?: unknown; reason?: unknown };
    const msg = typeof b.message === 'string' ? b.message : typeof b.error === 'string' ? b.error : undefined;
    if (msg) return typeof b.reason === 'string' && !msg.includes(b.reason) ? `${msg} (${b.reason})` : msg;
  } catch {
    // Not JSON: said below by status.
  }
  return `${what}: HTTP ${a.status}${a.text && a.text.length < 200 ? ` ${a.text.trim()}` : ''}`;
}

/**
 * The one cluster a name means: an exact match, else the one whose name is
 * the same as the service compares names. A name that means several (a
 * status the original Cluster Manager wrote may repeat one) is a usage error
 * that lists them, so the caller can give a UUID.
 */
export function pickCluster(all: ClusterSummary[], name: string): { uuid: string; name: string } {
  const exact = all.filter((c) => c.name === name);
  const matches = exact.length ? exact : all.filter((c) => c.name !== null && folded(c.name) === folded(name));
  if (matches.length === 1) return { uuid: matches[0].uuid, name: matches[0].name ?? name };
  if (!matches.length) throw new CliError(`no cluster named ${name}`, EXIT.notFound);
  throw new CliError(
    `${matches.length} clusters are named ${name}: give a UUID (${matches.map((c) => `${c.uuid} ${c.name} ${c.phase}`).join('; ')})`,
    EXIT.usage,
  );
}

async function call(
  base: string,
  what: string,
  method: string,
  path: string,
  authorization: string | undefined,
  body?: { data: string | Buffer; type: string },
): Promise<Answer> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: {
        Accept: 'application/json',
        ...(authorization ? { Authorization: authorization } : {}),
        ...(body ? { 'Content-Type': body.type } : {}),
      },
      ...(body ? { body: typeof body.data === 'string' ? body.data : new Uint8Array(body.data) } : {}),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (e) {
    throw new CliError(`cannot reach the ${what} at ${base}: ${causeOf(e)}`);
  }
  const a = { status: res.status, headers: res.headers, text: await res.text() };
  if (res.status >= 400) throw refusal(a, `${method} ${path}`, authorization);
  return a;
}

/** The error of an answer that is not a success: the service's message, with a hint on a 401. */
function refusal(a: Answer, what: string, authorization: string | undefined): CliError {
  let msg = messageOf(a, what);
  if (a.status === 401 && !authorization) msg += ' (give --user and --password, or run cluster-manager login)';
  else if (a.status === 401 && authorization?.startsWith('Bearer '))
    msg += ' (the login token was refused, e.g. after a restart of the service: run cluster-manager login again)';
  return new CliError(msg, exitCodeOf(a.status));
}

/** An open `GET /v1/events`, and why the service refused it if it did. */
export interface EventStream {
  source: EventSource;
  /** The status and message of the last answer that was not the stream, if any. */
  refused(): { status: number; error: CliError } | undefined;
  /** Why the last request got no answer at all (the network's word, as the other commands say it). */
  unreachable(): string | undefined;
}

/** The cause of a failed fetch: undici puts the network's error under `cause`. */
const causeOf = (e: unknown) => (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;

const json = <T>(a: Answer): T => JSON.parse(a.text) as T;
const seg = encodeURIComponent;

export class ApiClient {
  constructor(readonly conn: Connection) {}

  private req(method: string, path: string, body?: { data: string | Buffer; type: string }) {
    return call(this.conn.url, 'Cluster Manager', method, path, this.conn.authorization, body);
  }

  async list(): Promise<ClusterSummary[]> {
    return json<ClusterSummary[]>(await this.req('GET', '/v1/cluster'));
  }

  /** The cluster a name or UUID means (see `pickCluster`). */
  async resolve(nameOrUuid: string): Promise<{ uuid: string; name: string }> {
    if (isUuid(nameOrUuid)) return { uuid: nameOrUuid.toLowerCase(), name: nameOrUuid };
    return pickCluster(await this.list(), nameOrUuid);
  }

  async status(uuid: string): Promise<SetupStatus> {
    return json<SetupStatus>(await this.req('GET', `/v1/cluster/${seg(uuid)}/status`));
  }

  async bootstrapUrl(uuid: string): Promise<{ url: string; expires: string | null }> {
    const a = await this.req('POST', `/v1/cluster/${seg(uuid)}/bootstrap-url`);
    const expires = a.headers.get('expires');
    return { url: json<string>(a), expires: expires ? new Date(expires).toISOString() : null };
  }

  /** Seals one value; with `dryRun`, the manifest that would be committed. */
  async seal(
    uuid: string,
    at: { namespace: string; name: string; key: string },
    value: Buffer,
    opts: { scope?: string; dryRun?: boolean },
  ): Promise<string | undefined> {
    const q = new URLSearchParams();
    if (opts.scope) q.set('scope', opts.scope);
    const query = `${q.size ? `?${q.toString()}` : ''}${opts.dryRun ? `${q.size ? '&' : '?'}dryrun` : ''}`;
    const a = await this.req(
      'PUT',
      `/v1/cluster/${seg(uuid)}/secret/${seg(at.namespace)}/${seg(at.name)}/${seg(at.key)}${query}`,
      { data: value, type: 'application/octet-stream' },
    );
    return opts.dryRun ? a.text : undefined;
  }

  async secrets(uuid: string, one?: { namespace: string; name: string }): Promise<SecretEntry[]> {
    if (!one) return json<SecretEntry[]>(await this.req('GET', `/v1/cluster/${seg(uuid)}/secret`));
    return [
      json<SecretEntry>(
        await this.req('GET', `/v1/cluster/${seg(uuid)}/secret/${seg(one.namespace)}/${seg(one.name)}`),
      ),
    ];
  }

  async removeSecret(uuid: string, at: { namespace: string; name: string; key: string }): Promise<void> {
    await this.req('DELETE', `/v1/cluster/${seg(uuid)}/secret/${seg(at.namespace)}/${seg(at.name)}/${seg(at.key)}`);
  }

  async reseal(uuid: string): Promise<ResealReport> {
    return json<ResealReport>(await this.req('POST', `/v1/cluster/${seg(uuid)}/secret-reseal`));
  }

  async redeploy(uuid: string): Promise<{ head: string | null }> {
    return json<{ head: string | null }>(await this.req('POST', `/v1/cluster/${seg(uuid)}/redeploy`));
  }

  async redeployAll(): Promise<{ queued: number }> {
    return json<{ queued: number }>(await this.req('POST', '/v1/cluster/redeploy'));
  }

  /**
   * `GET /v1/events` through the `eventsource` client, which parses the
   * stream as browsers do and reconnects after the stream's `retry` when it
   * drops. It is given a fetch that adds the Authorization header (a browser
   * EventSource cannot send one), and that keeps the body of a refusal,
   * since the client itself reports only its status.
   */
  events(): EventStream {
    const authorization = this.conn.authorization;
    let refused: ReturnType<EventStream['refused']>;
    let unreachable: string | undefined;
    const source = new EventSource(`${this.conn.url}/v1/events`, {
      fetch: async (url, init) => {
        let res: Response;
        try {
          res = await fetch(url, {
            ...init,
            headers: { ...init.headers, ...(authorization ? { Authorization: authorization } : {}) },
          });
        } catch (e) {
          unreachable = causeOf(e);
          throw e;
        }
        if (res.status !== 200) {
          const a = { status: res.status, headers: res.headers, text: await res.text() };
          refused = { status: res.status, error: refusal(a, 'GET /v1/events', authorization) };
        }
        return res;
      },
    });
    return { source, refused: () => refused, unreachable: () => unreachable };
  }

  async token(): Promise<{ token: string; expiry: number }> {
    return json<{ token: string; expiry: number }>(await this.req('POST', '/token'));
  }
}

/** The UUIDs a cluster's creation names; they depend on the UUID profile. */
export interface ClusterUuids {
  configdbService: string;
  edgeClusterClass: string;
  clusterConfigApp: string;
}

/**
 * The Config Store, found through the Directory, with a username and
 * password (a Cluster Manager token means nothing to it).
 */
export class ConfigStoreClient {
  private base?: string;

  constructor(
    readonly conn: Connection,
    readonly uuids: ClusterUuids,
  ) {}

  private get auth(): string {
    if (!this.conn.credentials)
      throw new CliError(
        'creating and deleting a cluster goes through the Config Store, which needs a user and password (--user and --password, or CLUSTER_MANAGER_USER and CLUSTER_MANAGER_PASSWORD)',
        EXIT.usage,
      );
    return basicAuth(this.conn.credentials);
  }

  private async url(): Promise<string> {
    if (this.base) return this.base;
    // Without a credential the Config Store cannot be used at all: say that first.
    const auth = this.auth;
    if (!this.conn.directory) throw new CliError('no Directory URL: give --directory or DIRECTORY_URL', EXIT.usage);
    const a = await call(this.conn.directory, 'Directory', 'GET', `/v1/service/${this.uuids.configdbService}`, auth);
    const list = json<Array<{ url?: string | null }>>(a);
    const url = Array.isArray(list) ? list.find((p) => p.url)?.url : undefined;
    if (!url) throw new CliError('the Directory knows no URL of the Config Store');
    this.base = url.replace(/\/+$/, '');
    return this.base;
  }

  private async req(method: string, path: string, body?: unknown): Promise<Answer> {
    const data = body === undefined ? undefined : { data: JSON.stringify(body), type: 'application/json' };
    return call(await this.url(), 'Config Store', method, path, this.auth, data);
  }

  /**
   * An Edge cluster object and its configuration entry. An entry the Config
   * Store refuses takes its object with it, so nothing is left half-made.
   */
  async createCluster(entry: Record<string, unknown>): Promise<string> {
    const obj = json<{ uuid: string }>(await this.req('POST', '/v2/object', { class: this.uuids.edgeClusterClass }));
    try {
      await this.req('PUT', `/v2/app/${this.uuids.clusterConfigApp}/object/${obj.uuid}`, entry);
    } catch (e) {
      await this.req('DELETE', `/v2/object/${obj.uuid}`).catch(() => undefined);
      throw e;
    }
    return obj.uuid;
  }

  /**
   * Deletes the configuration entry; the Cluster Manager then tears down
   * what commissioning made. The object stays, as the teardown checks it.
   */
  async deleteCluster(uuid: string): Promise<void> {
    await this.req('DELETE', `/v2/app/${this.uuids.clusterConfigApp}/object/${uuid}`);
  }
}
