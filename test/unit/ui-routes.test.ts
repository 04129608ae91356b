import { expect } from 'chai';
import Koa from 'koa';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { uiRoutes } from '../../src/http/ui.js';
import { jsonErrors } from '../../src/lib/http-errors.js';
import { listen } from '../../src/lib/listen.js';
import { silentLogger } from '../../src/lib/log.js';

describe('status page routes', () => {
  it('without the page files (a build by tsc alone) start all the same and answer 404 for the page', async () => {
    const empty = pathToFileURL(`${mkdtempSync(join(tmpdir(), 'no-ui-'))}/`);
    const app = new Koa();
    app.use(jsonErrors(silentLogger));
    app.use(uiRoutes(empty).routes());
    const server = await listen(app.callback(), '127.0.0.1', 0);
    try {
      const r = await fetch(`${server.url}/`);
      expect(r.status).to.equal(404);
      expect(((await r.json()) as { message: string }).message).to.be.a('string');
    } finally {
      await server.close();
    }
  });
});
