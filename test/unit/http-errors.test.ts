import { expect } from 'chai';
import Koa from 'koa';
import { HttpError, jsonErrors } from '../../src/lib/http-errors.js';
import { listen } from '../../src/lib/listen.js';
import { silentLogger } from '../../src/lib/log.js';

describe('JSON error answers', () => {
  const answer = async (thrown: unknown) => {
    const app = new Koa();
    app.on('error', () => undefined);
    app.use(jsonErrors(silentLogger));
    app.use(() => {
      throw thrown;
    });
    const l = await listen(app.callback(), '127.0.0.1', 0);
    try {
      const r = await fetch(l.url);
      return {
        status: r.status,
        retryAfter: r.headers.get('retry-after'),
        body: (await r.json()) as { error: string; message: string },
      };
    } finally {
      await l.close();
    }
  };

  it('keeps the status of errors meant as answers', async () => {
    const r = await answer(new HttpError(409, 'taken'));
    expect(r.status).to.equal(409);
    expect(r.body).to.deep.equal({ error: 'Conflict', message: 'taken' });
  });

  it('does not take another field called status as the answer', async () => {
    const upstream = Object.assign(new Error('the Config Store answered 404'), { status: 404 });
    const r = await answer(upstream);
    expect(r.status).to.equal(500);
    expect(r.body.message).to.equal('internal error');
  });

  it('gives every 503 a Retry-After', async () => {
    expect((await answer(new HttpError(503, 'down'))).retryAfter).to.equal('5');
    expect((await answer(new HttpError(503, 'down', { 'Retry-After': '60' }))).retryAfter).to.equal('60');
  });
});
