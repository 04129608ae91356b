import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listening {
  server: Server;
  url: string;
  port: number;
  /**
   * Stops accepting connections and lets requests under way finish (their
   * keep-alive connections close after the answer); whatever still runs
   * after `graceMs` is cut off.
   */
  close(graceMs?: number): Promise<void>;
}

/** A host as it goes into a URL: an IPv6 address in brackets. */
export function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Listens on host:port (0 = ephemeral) and resolves with the base URL. */
export async function listen(
  handler: Parameters<typeof createServer>[1],
  host: string,
  port: number,
): Promise<Listening> {
  const server = createServer(handler);
  server.keepAliveTimeout = 5000;
  // A client that drips its headers or body holds a connection only this long.
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    server,
    port: actual,
    url: `http://${urlHost(host)}:${actual}`,
    close: (graceMs = 0) =>
      new Promise<void>((resolve) => {
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearInterval(sweep);
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
        if (graceMs <= 0) server.closeAllConnections();
      }),
  };
}
