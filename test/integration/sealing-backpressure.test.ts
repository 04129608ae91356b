import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { MAX_QUEUE_WAIT_MS, MAX_WAITING_PER_REPO } from '../../src/http/routes/secrets.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { waitFor } from '../helpers/processes.js';

const run = promisify(execFile);

/**
 * Back-pressure on the sealing routes: the Git server (behind a proxy) stops
 * answering while many changes arrive for one cluster. Past the bound of
 * waiting changes requests are refused at once (429); changes that wait too
 * long for their turn are dropped (503); both carry Retry-After, and nothing
 * acknowledged is lost once the server is back.
 */
describe('sealing back-pressure while the Git server does not answer', function () {
  this.timeout(90_000);
  let s: ApiStack;
  let proxy: FaultProxy;
  let cluster: string;

  before(async () => {
    s = await startApiStack({ serviceUrls: async (e) => ({ gitUrl: (proxy = await startFaultProxy(e.git)).url }) });
    cluster = await s.createCluster('busy');
    const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.edgeStatus}/object/${cluster}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kubeseal_cert: testCert('rsa').certPem }),
    });
    expect(r.status).to.be.oneOf([200, 201, 204]);
  });
  after(async () => {
    await s?.stop();
    await proxy?.close();
  });

  it(`refuses past ${MAX_WAITING_PER_REPO} waiting changes with 429, drops changes that waited ${MAX_QUEUE_WAIT_MS} ms with 503, both with Retry-After; keeps every 204`, async () => {
    expect(
      (
        await fetch(`${s.url}/v1/cluster/${cluster}/secret/bp/warm/k`, {
          method: 'PUT',
          headers: { Authorization: s.admin },
          body: 'w',
        })
      ).status,
    ).to.equal(204);

    proxy.set({ fault: { kind: 'hang' }, every: 1 });
    const total = MAX_WAITING_PER_REPO + 64;
    const t0 = Date.now();
    const answers = await Promise.all(
      Array.from({ length: total }, async (_, i) => {
        const r = await fetch(`${s.url}/v1/cluster/${cluster}/secret/bp/app/k${i}`, {
          method: 'PUT',
          headers: { Authorization: s.admin },
          body: `v${i}`,
        });
        const body = await r.text();
        return { i, status: r.status, retryAfter: r.headers.get('retry-after'), body, ms: Date.now() - t0 };
      }),
    );
    proxy.set(null);
    const by = (st: number) => answers.filter((a) => a.status === st);
    console.log(
      `    answers: ${[...new Set(answers.map((a) => a.status))].map((st) => `${st}=${by(st).length}`).join(' ')}; slowest ${Math.max(...answers.map((a) => a.ms))} ms`,
    );
    expect(
      answers.filter((a) => ![204, 429, 503].includes(a.status)),
      'other answers',
    ).to.deep.equal([]);
    // The bound counts waiting changes; the one being written when the server stopped is not among them.
    expect(by(429).length, 'refused at once').to.be.within(
      total - MAX_WAITING_PER_REPO - 8,
      total - MAX_WAITING_PER_REPO,
    );
    expect(by(503).length, 'dropped after waiting').to.be.greaterThan(0);
    for (const a of [...by(429), ...by(503)]) {
      expect(a.retryAfter, `${a.status} has Retry-After`).to.match(/^\d+$/);
      expect(JSON.parse(a.body).message, 'a JSON message').to.be.a('string');
    }
    expect(Math.max(...by(429).map((a) => a.ms)), 'refusals are immediate').to.be.lessThan(MAX_QUEUE_WAIT_MS);
    await waitFor(() => s.m.repos.waiting === 0, 30_000, undefined, 'no change waiting');

    // Once the server answers again: a new seal works, and exactly the acknowledged ones are in the repo.
    expect(
      (
        await fetch(`${s.url}/v1/cluster/${cluster}/secret/bp/app/after`, {
          method: 'PUT',
          headers: { Authorization: s.admin },
          body: 'a',
        })
      ).status,
    ).to.equal(204);
    const { stdout } = await run('git', [
      '--git-dir',
      s.t.core.git.dir(cluster),
      'show',
      'main:edo/secrets/bp/app.yaml',
    ]);
    const keys = Object.keys(
      (parse(stdout) as { spec: { encryptedData: Record<string, string> } }).spec.encryptedData,
    ).sort();
    expect(keys).to.deep.equal([...by(204).map((a) => `k${a.i}`), 'after'].sort());
  });
});
