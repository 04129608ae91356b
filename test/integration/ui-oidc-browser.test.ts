import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect } from 'chai';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { tempDir } from '../helpers/core.js';

/*
 * The status page's OIDC path in a real browser (Debian's chromium,
 * headless): the manager takes JWTs verified against a JWKS served on
 * loopback (keys made by jose, real signatures). The token of an operator
 * whose fp_principal_uuid holds Manage clusters on one cluster is pasted
 * into the login form; the page exchanges it once at POST /token and shows
 * that cluster, live, and no other. A token signed by a key the issuer does
 * not publish is refused on the page. Nothing of either token is kept in
 * the page's storage.
 */

const ISS = 'https://sso.factoryplus.test/realms/factory_plus';
const AUD = 'cluster-manager';

describe('status page login with an OIDC token, in headless Chromium', function () {
  this.timeout(120_000);
  let s: ApiStack;
  let jwks: Server;
  let browser: Browser;
  let page: Page;
  let out: string;
  let key: CryptoKey;
  let stranger: CryptoKey;
  let principal: string;
  let mine: string;
  let other: string;
  const problems: string[] = [];
  /** The Authorization header of every request the page made, by method and path. */
  const sent: Array<{ what: string; authorization: string | undefined }> = [];

  const token = (signer: CryptoKey, kid: string, claims: JWTPayload = {}) =>
    new SignJWT({ fp_principal_uuid: principal, preferred_username: 'operator', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
      .setIssuer(ISS)
      .setAudience(AUD)
      .setSubject('3f1c2a9e-operator')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(signer);

  before(async () => {
    const pair = await generateKeyPair('ES256');
    key = pair.privateKey;
    stranger = (await generateKeyPair('ES256')).privateKey;
    const published = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
    jwks = createServer((req, res) => {
      if (req.url !== '/protocol/openid-connect/certs') return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(published));
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/protocol/openid-connect/certs`;
    s = await startApiStack({
      config: { http: { aclCacheSeconds: 0, oidc: { jwksUrl, issuer: ISS, audience: AUD } } },
    });
    mine = await s.createCluster('Oidc_Page_Mine');
    other = await s.createCluster('Oidc_Page_Other');
    // The operator as Factory+ knows it: a principal holding Manage clusters on one cluster only.
    principal = s.operatorOf(mine);

    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 600 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) =>
      sent.push({ what: `${r.method()} ${new URL(r.url()).pathname}`, authorization: r.headers().authorization }),
    );
    out = process.env.TEST_OUTPUT_DIR ?? tempDir('cm-ui-oidc-');
    mkdirSync(out, { recursive: true });
    console.log(`      screenshots in ${out}`);
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
    await new Promise((r) => jwks?.close(r));
  });

  it('refuses a token signed by a key the issuer does not publish, on the page', async () => {
    await page.goto(`${s.url}/`);
    await page.fill('input[name=token]', await token(stranger, 'k1'));
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error')).to.match(/^Login failed: token refused: /);
    expect(await page.locator('#login').isVisible()).to.equal(true);
    // The refused POST /token is in the console as a network error; only what follows counts.
    problems.length = 0;
  });

  it("logs in with the operator's token and shows the cluster its principal may manage, and no other", async () => {
    const jwt = await token(key, 'k1');
    sent.length = 0;
    await page.fill('input[name=token]', jwt);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#conn[data-state="live"]');
    const row = page.locator(`#clusters tbody tr[data-uuid="${mine}"]`);
    await row.waitFor();
    expect(await row.getAttribute('data-ready')).to.equal('true');
    expect(await row.locator('td').first().textContent()).to.equal('Oidc_Page_Mine');
    expect(await page.locator(`#clusters tbody tr[data-uuid="${other}"]`).count()).to.equal(0);
    expect(await page.locator('#clusters tbody tr').count()).to.equal(1);
    expect(await page.textContent('#summary')).to.equal('1 cluster, 1 ready');
    expect(await page.inputValue('input[name=token]'), 'the token is not left in the form').to.equal('');

    // Live with that login: a change to the cluster reaches the page.
    await s.m.status.update(mine, { bootstrap: { fetches: 4 } });
    await page.waitForSelector(`#clusters tbody tr[data-uuid="${mine}"] td:nth-child(9):text-is("4")`);
    await page.screenshot({ path: join(out, 'oidc-clusters.png'), fullPage: true });

    // The JWT went to POST /token once; the page then used the service's own token.
    const withJwt = sent.filter((r) => r.authorization === `Bearer ${jwt}`).map((r) => r.what);
    expect(withJwt).to.deep.equal(['POST /token']);
    const events = sent.filter((r) => r.what === 'GET /v1/events');
    expect(events.length).to.be.at.least(1);
    for (const r of events)
      expect(r.authorization)
        .to.match(/^Bearer \S+$/)
        .and.not.include(jwt);
    // In memory only: nothing in storage or cookies.
    const kept = await page.evaluate(() => ({
      local: localStorage.length,
      session: sessionStorage.length,
      cookie: document.cookie,
    }));
    expect(kept).to.deep.equal({ local: 0, session: 0, cookie: '' });
    expect(await page.locator('#error').isVisible()).to.equal(false);
    expect(problems, problems.join('\n')).to.deep.equal([]);
    await s.m.status.update(mine, { bootstrap: null });
  });
});
