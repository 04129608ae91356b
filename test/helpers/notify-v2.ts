/**
 * A notify/v2 client written from the Factory+ change-notify specification,
 * for driving the services' WebSocket endpoint in tests: open the socket,
 * send `Bearer <token>`, read the three-digit answer, then send JSON
 * requests and collect the JSON updates by subscription UUID.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

export interface Update {
  uuid: string;
  status: number;
  response?: { status: number; headers?: Record<string, string>; body?: unknown };
  child?: string;
  children?: Record<string, { status: number; headers?: Record<string, string>; body?: unknown }>;
}

/** Fetches a bearer token from a service's `/token` with Basic credentials. */
export async function serviceToken(base: string, username: string, password: string): Promise<string> {
  const res = await fetch(new URL('/token', base), {
    method: 'POST',
    headers: { Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` },
  });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status}`);
  return ((await res.json()) as { token: string }).token;
}

/** The notify/v2 URL of a service: `notify/v2` relative to its base, in the ws scheme. */
export function notifyUrl(base: string): string {
  const u = new URL('notify/v2', base.endsWith('/') ? base : `${base}/`);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

/** Opens the socket and sends `first`; resolves with the socket and the server's first answer. */
export async function openRaw(
  base: string,
  first: string | Buffer,
): Promise<{ ws: WebSocket; answer: string; closed: Promise<number> }> {
  const ws = new WebSocket(notifyUrl(base));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const answer = new Promise<string>((resolve, reject) => {
    ws.once('message', (data) => resolve(data.toString()));
    ws.once('close', () => reject(new Error('closed before answering')));
  });
  ws.send(first);
  return { ws, answer: await answer, closed };
}

export class NotifyClient {
  readonly updates: Update[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.updates.push(JSON.parse(data.toString()) as Update);
      for (const w of [...this.waiters]) w();
    });
  }

  static async connect(base: string, token: string): Promise<NotifyClient> {
    const { ws, answer } = await openRaw(base, `Bearer ${token}`);
    if (answer !== '200') {
      ws.close();
      throw new Error(`notify authentication answered ${answer}`);
    }
    return new NotifyClient(ws);
  }

  send(req: Record<string, unknown>): string {
    const uuid = (req.uuid as string | undefined) ?? randomUUID();
    this.ws.send(JSON.stringify({ ...req, uuid }));
    return uuid;
  }

  watch(url: string, method?: string): string {
    return this.send({ method: 'WATCH', request: method ? { url, method } : { url } });
  }

  search(parent: string, filter?: unknown): string {
    return this.send({ method: 'SEARCH', parent, ...(filter === undefined ? {} : { filter }) });
  }

  close(uuid: string): void {
    this.send({ method: 'CLOSE', uuid });
  }

  of(uuid: string): Update[] {
    return this.updates.filter((u) => u.uuid === uuid);
  }

  /** Resolves with the `n`th (1-based) update of a subscription, waiting for it. */
  nth(uuid: string, n: number, timeoutMs = 5000): Promise<Update> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const got = this.of(uuid);
        if (got.length < n) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(got[n - 1]!);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`no update #${n} for ${uuid} within ${timeoutMs} ms; got ${JSON.stringify(this.of(uuid))}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Waits a little and returns the updates of a subscription (to show that nothing more came). */
  async settle(uuid: string, ms = 150): Promise<Update[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.of(uuid);
  }

  end(): void {
    this.ws.close();
  }
}
