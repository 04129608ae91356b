import { expect } from 'chai';
import { listen } from '../../src/lib/listen.js';

describe('listen', () => {
  it('gives a base URL fetch can use, for an IPv4 and an IPv6 loopback address', async () => {
    for (const host of ['127.0.0.1', '::1']) {
      const l = await listen((_req, res) => res.end('here'), host, 0);
      try {
        expect(new URL(l.url).port).to.equal(String(l.port));
        expect(await (await fetch(`${l.url}/`)).text(), l.url).to.equal('here');
      } finally {
        await l.close();
      }
    }
  });
});
