import { expect } from 'chai';
import { Semaphore } from '../../src/lib/semaphore.js';

describe('semaphore', () => {
  it('lets `limit` holders in at once and the rest in arrival order as places are given back', async () => {
    const s = new Semaphore(2);
    const order: string[] = [];
    const a = await s.acquire();
    const b = await s.acquire();
    const waiting = ['c', 'd', 'e'].map((n) =>
      s.acquire().then((release) => {
        order.push(n);
        return release;
      }),
    );
    await Promise.resolve();
    expect(order).to.deep.equal([]);
    expect(s.waiters).to.equal(3);
    a();
    a(); // twice is harmless: it gives back one place only
    const c = await waiting[0]!;
    expect(order).to.deep.equal(['c']);
    expect(s.inUse).to.equal(2);
    b();
    c();
    await Promise.all(waiting);
    expect(order).to.deep.equal(['c', 'd', 'e']);
    for (const r of await Promise.all(waiting)) r();
    expect(s.inUse).to.equal(0);
  });

  it('refuses a limit that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new Semaphore(bad)).to.throw(/positive limit/);
  });
});
