import { expect } from 'chai';
import { request } from 'node:http';
import { loadConfig } from '../../src/config/index.js';
import { Metrics } from '../../src/http/metrics.js';
import { metricsHandler } from '../../src/http/metrics-listener.js';
import { listen, type Listening } from '../../src/lib/listen.js';

/*
 * The METRICS_PORT listener: Prometheus reads /metrics there without a
 * credential, and nothing else of the API is reachable through it.
 */

function metrics(): Metrics {
  return new Metrics({
    phases: () => ({ ready: 3, failed: 1 }),
    queue: () => ({ queued: 0, running: 0, scheduled: 0, processed: 4, failed: 1 }),
    statusWritesPending: () => 0,
    repoWritesWaiting: () => 2,
    mqtt: () => ({ changeFeed: true, sparkplug: false }),
    changeFeed: () => ({ live: 'mqtt' as const, connected: true }),
    lastResyncMs: () => 1500,
    dependencies: () => ({ configdb: 'ok', auth: 'ok', git: 'failing', mqtt: 'unknown' }),
  });
}

/** A raw request, so no client adds or follows anything. */
function get(url: string, method = 'GET'): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('metrics listener (METRICS_PORT)', () => {
  let l: Listening;
  before(async () => {
    l = await listen(metricsHandler(metrics().registry), '127.0.0.1', 0);
  });
  after(() => l.close());

  it('serves the Prometheus text on GET /metrics without a credential', async () => {
    const r = await get(`${l.url}/metrics`);
    expect(r.status).to.equal(200);
    expect(r.headers['content-type']).to.match(/^text\/plain; version=0\.0\.4/);
    expect(r.body).to.include('cluster_manager_clusters{phase="ready"} 3');
    expect(r.body).to.include('cluster_manager_repo_changes_waiting 2');
    expect(r.body).to.include('cluster_manager_dependency_up{service="git"} 0');
    expect(r.body).to.match(/^cluster_manager_process_cpu_user_seconds_total /m);
    expect((await get(`${l.url}/metrics?x=1`)).status).to.equal(200);
  });

  it('answers HEAD /metrics without a body', async () => {
    const r = await get(`${l.url}/metrics`, 'HEAD');
    expect(r.status).to.equal(200);
    expect(r.body).to.equal('');
  });

  it('serves nothing else: other paths 404, other methods 405, as JSON errors', async () => {
    for (const path of ['/', '/health', '/v1/cluster', '/openapi.json', '/metrics/', '/metricsx']) {
      const r = await get(`${l.url}${path}`);
      expect(r.status, path).to.equal(404);
      expect(JSON.parse(r.body)).to.deep.equal({ error: 'Not Found', message: 'this port serves only GET /metrics' });
    }
    const p = await get(`${l.url}/metrics`, 'POST');
    expect(p.status).to.equal(405);
    expect(p.headers.allow).to.equal('GET, HEAD');
    expect(JSON.parse(p.body).error).to.equal('Method Not Allowed');
  });

  it('is off unless METRICS_PORT is set, and takes a port number', () => {
    expect(loadConfig({ env: {} }).http.metricsPort).to.equal(null);
    expect(loadConfig({ env: { METRICS_PORT: '9090' } }).http.metricsPort).to.equal(9090);
    expect(() => loadConfig({ env: { METRICS_PORT: 'nine' } })).to.throw(/METRICS_PORT="nine": must be a whole number/);
    expect(() => loadConfig({ env: { METRICS_PORT: '70000' } })).to.throw(/metricsPort/);
  });
});
