import { expect } from 'chai';
import { createHash, X509Certificate } from 'node:crypto';
import { parse } from 'yaml';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { waitFor } from '../helpers/processes.js';

/**
 * The Edge cluster status entry (the sealing certificate) is read once and
 * kept while the Config Store's change notifications arrive; a notification
 * drops it. The Config Store is behind a proxy that records every request.
 */
const CERT_SHA = 'cluster-manager.factoryplus/cert-sha256';
const KEY_CERTS = 'cluster-manager.factoryplus/key-certs';
/** The certificate a key of a manifest was sealed for. */
const sealedFor = (a: Record<string, string>, key: string) =>
  a[KEY_CERTS] ? (JSON.parse(a[KEY_CERTS]) as Record<string, string>)[key] : a[CERT_SHA];
const fingerprint = (pem: string) => createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');

describe('sealing certificate from the Edge cluster status, kept until it changes', function () {
  this.timeout(60_000);
  let s: ApiStack;
  let proxy: FaultProxy;
  let cluster: string;

  const setCert = async (pem: string) => {
    const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.edgeStatus}/object/${cluster}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kubeseal_cert: pem }),
    });
    expect(r.status).to.be.oneOf([200, 201, 204]);
  };
  const put = (key: string, query = '') =>
    fetch(`${s.url}/v1/cluster/${cluster}/secret/cache-ns/app/${key}${query}`, {
      method: 'PUT',
      headers: { Authorization: s.admin },
      body: `value of ${key}`,
    });
  const statusReads = () =>
    proxy.seen.filter((l) => l === `GET /v2/app/${s.config.uuids.app.edgeStatus}/object/${cluster}`).length;

  before(async () => {
    s = await startApiStack({
      serviceUrls: async (e) => ({ configdbUrl: (proxy = await startFaultProxy(e.configdb)).url }),
    });
    cluster = await s.createCluster('cert_cache');
    await waitFor(() => s.m.feed.connected, 10_000, undefined, 'change feed connected');
  });
  after(async () => {
    await s?.stop();
    await proxy?.close();
  });

  it('reads the entry once or twice (the notification of its own change may come after the first read) for twenty seals', async () => {
    await setCert(testCert('rsa').certPem);
    const before = statusReads();
    for (let i = 0; i < 20; i++) expect((await put(`k${i}`)).status).to.equal(204);
    expect(statusReads() - before).to.be.within(1, 2);
  });

  it('seals with the new certificate once the change notification has come, without a restart', async () => {
    const next = testCert('rsa-other').certPem;
    await setCert(next);
    const manifest = await waitFor(
      async () => {
        const r = await put('rotated', '?dryrun');
        expect(r.status).to.equal(200);
        const m = parse(await r.text()) as { metadata: { annotations: Record<string, string> } };
        return sealedFor(m.metadata.annotations, 'rotated') === fingerprint(next) ? m : undefined;
      },
      10_000,
      undefined,
      'a seal with the new certificate',
    );
    expect(sealedFor(manifest!.metadata.annotations, 'k0')).to.equal(fingerprint(testCert('rsa').certPem));
  });

  it('never refuses on the word of the cache: a cached unusable certificate is read again, and the new one used', async () => {
    await setCert(testCert('ec').certPem);
    await waitFor(async () => (await put('refused')).status === 422, 10_000, undefined, 'the EC certificate refused');
    const before = statusReads();
    // Sealed at once, before any notification can have dropped the cached EC entry.
    await setCert(testCert('rsa').certPem);
    const r = await put('accepted');
    expect(r.status, await r.text()).to.equal(204);
    expect(statusReads() - before, 'a fresh read instead of the cached refusal').to.be.at.least(1);
  });
});
