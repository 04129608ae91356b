/**
 * Client side of the Factory+ change-notify interface v2 (`notify/v2`): a
 * WebSocket at `notify/v2` under the service's base URL, authenticated by a
 * first text message `Bearer <token>` that the service answers with a
 * three-digit status; then JSON subscription requests up and JSON updates
 * down, each update naming its subscription by the UUID the client chose.
 */
import WebSocket from 'ws';

export interface NotifyUpdate {
  uuid: string;
  status: number;
  response?: { status: number; headers?: Record<string, string>; body?: unknown };
  child?: string;
  children?: Record<string, unknown>;
}

/** The service refused the authentication exchange with this status (401: the token). */
export class NotifyAuthError extends Error {
  constructor(readonly status: string) {
    super(`notify/v2 authentication answered ${JSON.stringify(status)}`);
    this.name = 'NotifyAuthError';
  }
}

/** `notify/v2` resolved under a service's base URL, in the ws/wss scheme. */
function notifyUrl(base: string): string {
  const u = new URL('notify/v2', base.endsWith('/') ? base : `${base}/`);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

export interface NotifySocket {
  send(request: Record<string, unknown>): void;
  /** Closes the socket; `onClose` follows. */
  close(): void;
}

export interface NotifySocketHandlers {
  onUpdate(u: NotifyUpdate): void;
  onClose(reason: string): void;
}

export interface OpenOptions {
  /** The whole exchange (connect, upgrade, authentication) must finish in this time. */
  timeoutMs: number;
  /** A ping every this often; no pong by the next one ends the socket (a dead peer sends no FIN). */
  pingMs: number;
  /** Largest update accepted, in bytes. */
  maxMessageBytes?: number;
}

/**
 * Opens and authenticates a notify/v2 socket. Resolves once the service
 * answered `200`; rejects with NotifyAuthError for any other answer, or an
 * Error when the socket fails or the exchange takes too long.
 */
export function openNotify(
  base: string,
  token: string,
  h: NotifySocketHandlers,
  o: OpenOptions,
): Promise<NotifySocket> {
  const ws = new WebSocket(notifyUrl(base), {
    maxPayload: o.maxMessageBytes ?? 64 * 1024 * 1024,
    handshakeTimeout: o.timeoutMs,
  });
  return new Promise<NotifySocket>((resolve, reject) => {
    let authed = false;
    let alive = true;
    let ping: NodeJS.Timeout | undefined;
    const timer = setTimeout(
      () => fail(new Error(`notify/v2 at ${base} not ready within ${o.timeoutMs} ms`)),
      o.timeoutMs,
    );
    timer.unref();
    const fail = (err: Error) => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.on('open', () => ws.send(`Bearer ${token}`));
    ws.on('error', (err) => {
      if (!authed) fail(err);
    });
    ws.on('pong', () => {
      alive = true;
    });
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      if (ping) clearInterval(ping);
      if (!authed) reject(new Error(`notify/v2 at ${base} closed before authenticating (${code})`));
      else h.onClose(`${code}${reason.length ? ` ${reason.toString()}` : ''}`);
    });
    ws.on('message', (data, binary) => {
      const text = binary ? '' : data.toString('utf8');
      if (!authed) {
        if (text !== '200') {
          fail(new NotifyAuthError(text.slice(0, 16)));
          return;
        }
        authed = true;
        clearTimeout(timer);
        ping = setInterval(() => {
          if (!alive) {
            ws.terminate();
            return;
          }
          alive = false;
          ws.ping();
        }, o.pingMs);
        ping.unref();
        resolve({
          send: (r) => {
            if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(r));
          },
          close: () => ws.close(),
        });
        return;
      }
      let u: NotifyUpdate;
      try {
        u = JSON.parse(text) as NotifyUpdate;
      } catch {
        ws.close(1007, 'updates must be JSON');
        return;
      }
      if (typeof u !== 'object' || u === null || typeof u.uuid !== 'string' || typeof u.status !== 'number') {
        ws.close(1007, 'updates must name a subscription and a status');
        return;
      }
      h.onUpdate(u);
    });
  });
}
