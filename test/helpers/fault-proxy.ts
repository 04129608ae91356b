import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * What the proxy does to a request it decides to disturb:
 * - `status`: answers with that HTTP status itself (JSON error body);
 * - `reset`: destroys the client connection without an answer;
 * - `hang`: keeps the connection open and never answers (half-open);
 * - `delay`: forwards after `ms`.
 */
export type Fault =
  { kind: 'status'; status: number } | { kind: 'reset' } | { kind: 'hang' } | { kind: 'delay'; ms: number };

export interface FaultPlan {
  fault: Fault;
  /** Disturb one request in `every` (counted per proxy); 1 = all. */
  every: number;
  /** Only requests whose method and path match (e.g. /^PATCH /). */
  match?: RegExp;
}

export interface FaultProxy {
  url: string;
  set(plan: FaultPlan | null): void;
  readonly stats: { forwarded: number; injected: number };
  /** Requests seen, in arrival order, as `METHOD path`. */
  readonly seen: string[];
  close(): Promise<void>;
}

/** An HTTP proxy on loopback in front of one service, injecting faults on demand. */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const base = new URL(target);
  let plan: FaultPlan | null = null;
  let counter = 0;
  const stats = { forwarded: 0, injected: 0 };
  const seen: string[] = [];
  const sockets = new Set<Socket>();

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    stats.forwarded++;
    const up = request(
      {
        host: base.hostname,
        port: base.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: base.host },
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => {
      res.destroy();
    });
    req.pipe(up);
  };

  const server = createServer((req, res) => {
    const line = `${req.method} ${req.url}`;
    seen.push(line);
    const p = plan;
    if (!p || (p.match && !p.match.test(line)) || ++counter % p.every !== 0) return forward(req, res);
    stats.injected++;
    switch (p.fault.kind) {
      case 'status':
        req.resume();
        res.writeHead(p.fault.status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'injected', message: `fault proxy answered ${p.fault.status}` }));
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'hang':
        req.resume();
        return;
      case 'delay':
        setTimeout(() => forward(req, res), p.fault.ms);
        return;
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}${base.pathname}`,
    set(p) {
      plan = p;
      counter = 0;
    },
    stats,
    seen,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
