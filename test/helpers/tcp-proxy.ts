import { createServer, connect, type Socket } from 'node:net';

/**
 * What the proxy does with connections:
 * - `pass`: forwards bytes both ways;
 * - `refuse`: new connections are accepted and destroyed at once (the client
 *   sees the connection closed before any answer); existing ones are cut;
 * - `hang`: new connections are accepted and held open, nothing is forwarded
 *   and nothing is answered (a black hole); existing connections stop
 *   forwarding in both directions but stay open.
 */
export type TcpMode = 'pass' | 'refuse' | 'hang';

export interface TcpProxy {
  /** `mqtt://127.0.0.1:<port>` (the target's scheme, the proxy's address). */
  url: string;
  port: number;
  readonly mode: TcpMode;
  /** Switches mode; `refuse` also cuts every open connection. Leaving `hang` cuts the held connections. */
  set(mode: TcpMode): void;
  /** Destroys every open connection (client and upstream side). */
  cutAll(): number;
  readonly stats: { accepted: number; refused: number; held: number; cut: number };
  /** Client connections open right now. */
  readonly open: number;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream?: Socket;
  held: boolean;
}

/** A TCP proxy on loopback in front of one service (e.g. an MQTT broker), with refusal, cuts and black holes. */
export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const t = new URL(target);
  const host = t.hostname;
  const port = Number(t.port);
  let mode: TcpMode = 'pass';
  const pairs = new Set<Pair>();
  const stats = { accepted: 0, refused: 0, held: 0, cut: 0 };

  const destroy = (p: Pair) => {
    p.client.destroy();
    p.upstream?.destroy();
    pairs.delete(p);
  };

  const server = createServer((client) => {
    client.on('error', () => undefined);
    if (mode === 'refuse') {
      stats.refused++;
      client.destroy();
      return;
    }
    const p: Pair = { client, held: mode === 'hang' };
    pairs.add(p);
    client.on('close', () => destroy(p));
    if (p.held) {
      stats.held++;
      client.pause();
      return;
    }
    stats.accepted++;
    const up = connect({ host, port });
    p.upstream = up;
    up.on('error', () => destroy(p));
    up.on('close', () => destroy(p));
    client.pipe(up);
    up.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const listenPort = (server.address() as { port: number }).port;

  const cutAll = () => {
    const n = pairs.size;
    for (const p of [...pairs]) destroy(p);
    stats.cut += n;
    return n;
  };

  return {
    url: `${t.protocol}//127.0.0.1:${listenPort}`,
    port: listenPort,
    get mode() {
      return mode;
    },
    set(m) {
      const was = mode;
      mode = m;
      if (m === 'refuse') cutAll();
      else if (m === 'hang') {
        // Existing connections stop carrying anything, both ways.
        for (const p of pairs) {
          if (p.held || !p.upstream) continue;
          p.held = true;
          p.client.unpipe(p.upstream);
          p.upstream.unpipe(p.client);
          p.client.pause();
          p.upstream.pause();
        }
      } else if (was === 'hang') {
        // Held connections cannot be resumed meaningfully (bytes were dropped): cut them.
        for (const p of [...pairs])
          if (p.held) {
            destroy(p);
            stats.cut++;
          }
      }
    },
    cutAll,
    stats,
    get open() {
      return pairs.size;
    },
    async close() {
      cutAll();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
