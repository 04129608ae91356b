/**
 * The handler of the optional metrics listener (`METRICS_PORT`): GET /metrics
 * and nothing else, without authentication.
 *
 * On the API port `/metrics` needs a Factory+ credential, which a Prometheus
 * scraping by pod annotations does not have. A separate port keeps the
 * figures readable inside the cluster while the API stays authenticated
 * and the ingress, which routes only the API port, never exposes them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { errorBody } from '../lib/http-errors.js';

function json(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(errorBody(status, message)));
}

export function metricsHandler(registry: Registry): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    // Only the path counts: a query string is ignored, as on the API port.
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      json(res, 404, 'this port serves only GET /metrics');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, `${req.method} is not allowed on /metrics`, { Allow: 'GET, HEAD' });
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        json(res, 500, `cannot collect metrics: ${(err as Error).message}`);
      },
    );
  };
}
