import { expect } from 'chai';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';

/**
 * A burst of requests with one Basic credential, none of them cached yet,
 * through a proxy that records what reaches the (embedded) Auth service.
 */
describe('HTTP API: a burst of requests with one password', function () {
  this.timeout(60_000);
  let s: ApiStack;
  let proxy: FaultProxy;

  before(async () => {
    s = await startApiStack({ serviceUrls: async (e) => ({ authUrl: (proxy = await startFaultProxy(e.auth)).url }) });
  });
  after(async () => {
    await s?.stop();
    await proxy?.close();
  });

  it('checks the password with the Auth service once, not once per request', async () => {
    const from = proxy.seen.length;
    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        fetch(`${s.url}/v1/cluster`, { headers: { Authorization: s.admin } }).then((r) => r.status),
      ),
    );
    expect(new Set(answers)).to.deep.equal(new Set([200]));
    const whoami = proxy.seen.slice(from).filter((l) => l.startsWith('GET /v2/whoami/'));
    console.log(
      `    [authn] 50 concurrent requests with one new Basic credential: ${whoami.length} whoami and ${proxy.seen.slice(from).filter((l) => l === 'POST /token').length} token requests reached Auth`,
    );
    expect(whoami).to.have.length(1);

    // A wrong password is refused for every request of a burst, with one check too.
    const wrong = `Basic ${Buffer.from('admin:not-the-password').toString('base64')}`;
    const before = proxy.seen.length;
    const refused = await Promise.all(
      Array.from({ length: 20 }, () =>
        fetch(`${s.url}/v1/cluster`, { headers: { Authorization: wrong } }).then((r) => r.status),
      ),
    );
    expect(new Set(refused)).to.deep.equal(new Set([401]));
    expect(proxy.seen.slice(before).filter((l) => l === 'POST /token')).to.have.length(1);
  });
});
