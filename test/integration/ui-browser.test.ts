import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { tempDir } from '../helpers/core.js';
import { waitFor } from '../helpers/processes.js';

/*
 * The status page in a real browser: Debian's chromium, headless, against
 * the embedded core and manager. It logs in through the form, sees the
 * clusters that exist, sees one created after it loaded appear and become
 * ready without a reload, opens its detail view and makes a bootstrap URL,
 * and shows the stored conditions history of a cluster that failed and
 * recovered before the page was loaded, with a live transition joined to it.
 * Screenshots go to TEST_OUTPUT_DIR (or a temporary directory), named in the
 * log. Any error the page shows, any script error or CSP violation in the
 * console, or a cluster of GET /v1/cluster missing from the page fails it.
 */

const VALUE = 'ui-test-sealed-value-8f1c';

describe('status page in headless Chromium', function () {
  this.timeout(120_000);
  let s: ApiStack;
  let browser: Browser;
  let page: Page;
  let out: string;
  const problems: string[] = [];

  /** A cluster that failed and recovered before the page was loaded: only the stored history knows. */
  let early: string;

  /** The history GET /v1/cluster/{uuid} serves. */
  const readHistory = async (uuid: string) =>
    (
      (await (await fetch(`${s.url}/v1/cluster/${uuid}`, { headers: { Authorization: s.admin } })).json()) as {
        history: Array<{ type: string; status: string; reason: string }>;
      }
    ).history;

  /** Writes a cluster's configuration entry straight to the Config Store. */
  const putConfig = (uuid: string, spec: Record<string, unknown>) =>
    fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.clusterConfig}/object/${uuid}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify(spec),
    });

  before(async () => {
    s = await startApiStack();
    const u = s.config.uuids;
    early = s.t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
    expect((await putConfig(early, { name: 'Ui_Early', namespace: 'Not_A_Namespace' })).status).to.equal(201);
    await waitFor(() => s.m.status.get(early)?.phase === 'failed', 30_000, undefined, 'Ui_Early failed');
    expect((await putConfig(early, { name: 'Ui_Early', namespace: 'fplus-edge' })).status).to.equal(204);
    await waitFor(() => s.m.status.get(early)?.ready === true, 30_000, undefined, 'Ui_Early ready');
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    out = process.env.TEST_OUTPUT_DIR ?? tempDir('cm-ui-');
    mkdirSync(out, { recursive: true });
    console.log(`      screenshots in ${out}`);
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  const rowOf = (uuid: string) => page.locator(`#clusters tbody tr[data-uuid="${uuid}"]`);
  const shownError = async () => ((await page.locator('#error').isVisible()) ? await page.textContent('#error') : '');

  it('logs in, shows every cluster, and follows a new one to ready live', async () => {
    const A = await s.createCluster('Ui_A');
    const res = await page.goto(`${s.url}/`);
    expect(res!.status()).to.equal(200);
    expect(res!.headers()['content-security-policy']).to.contain("script-src 'self'");
    expect(await page.locator('#login').isVisible()).to.equal(true);

    // A wrong password is said on the page, without the browser's own login prompt.
    const admin = s.t.core.credentials.admin;
    await page.fill('input[name=username]', admin.username);
    await page.fill('input[name=password]', 'not-the-password');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error')).to.match(/^Login failed: wrong username or password/);
    // The failed POST /token is in the console as a network error; only what follows counts.
    problems.length = 0;

    await page.fill('input[name=username]', admin.username);
    await page.fill('input[name=password]', admin.password);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#conn[data-state="live"]');
    await rowOf(A).waitFor();
    expect(await rowOf(A).getAttribute('data-ready')).to.equal('true');
    expect(await rowOf(A).locator('td.phase').textContent()).to.equal('ready');
    expect(await page.inputValue('input[name=password]'), 'the password is not kept').to.equal('');

    // What B's row says over time, recorded in the page as it changes.
    await page.evaluate(() => {
      const w = window as unknown as { seen: string[] };
      w.seen = [];
      new MutationObserver(() => {
        for (const tr of document.querySelectorAll('#clusters tbody tr'))
          if (tr.textContent?.includes('Ui_B')) w.seen.push(tr.getAttribute('data-ready') ?? '');
      }).observe(document.querySelector('#clusters tbody')!, { childList: true, subtree: true });
    });
    const u = s.config.uuids;
    const B = s.t.core.objects.create({ class: u.class.edgeCluster, owner: Local.account.admin }).registration.uuid;
    const put = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${u.app.clusterConfig}/object/${B}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      // First an entry it cannot commission (a bad namespace), so that the page
      // shows B not ready however fast commissioning is; then the fix.
      body: JSON.stringify({ name: 'Ui_B', namespace: 'Not_A_Namespace' }),
    });
    expect(put.status).to.equal(201);
    await page.waitForSelector(`#clusters tbody tr[data-uuid="${B}"][data-ready="false"]`, { timeout: 30_000 });
    const fixed = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${u.app.clusterConfig}/object/${B}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'Ui_B', namespace: 'fplus-edge' }),
    });
    expect(fixed.status).to.equal(204);
    await page.waitForSelector(`#clusters tbody tr[data-uuid="${B}"][data-ready="true"]`, { timeout: 30_000 });
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    // The row was seen not ready (waited for above) and then ready, live.
    expect(seen, 'B shown ready in the end').to.include('true');
    expect(seen.at(-1)).to.equal('true');
    expect(await rowOf(B).locator('td.mono').textContent()).to.match(/^[0-9a-f]{12}$/);
    await page.screenshot({ path: join(out, 'clusters.png'), fullPage: true });

    // Every cluster the API lists for this caller is on the page.
    const listed = (await (
      await fetch(`${s.url}/v1/cluster`, { headers: { Authorization: s.admin } })
    ).json()) as Array<{
      uuid: string;
    }>;
    expect(listed.length).to.be.at.least(2);
    for (const c of listed) expect(await rowOf(c.uuid).count(), `cluster ${c.uuid} on the page`).to.equal(1);
    expect(await shownError()).to.equal('');
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });

  it('shows a cluster in detail with its sealed keys but no value, and makes a bootstrap URL that serves the script', async () => {
    const B = (await page.locator('#clusters tbody tr', { hasText: 'Ui_B' }).getAttribute('data-uuid'))!;
    // A sealed key: its certificate as Edge Sync reports it, then a seal through the API.
    const cert = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.edgeStatus}/object/${B}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kubeseal_cert: testCert('rsa').certPem }),
    });
    expect(cert.status).to.be.oneOf([201, 204]);
    const sealed = await fetch(`${s.url}/v1/cluster/${B}/secret/app/db/password`, {
      method: 'PUT',
      headers: { Authorization: s.admin },
      body: VALUE,
    });
    expect(sealed.status).to.equal(204);
    await page.waitForSelector(`#clusters tbody tr[data-uuid="${B}"] td.secrets:text-is("1")`);
    await page.click(`a[href="#/cluster/${B}"]`);
    await page.waitForSelector('#detail:not([hidden])');
    expect(await page.textContent('#detail-name')).to.equal('Ui_B');
    await page.waitForSelector('#conditions tbody tr[data-type="Ready"]');
    expect(await page.locator('#conditions tbody tr[data-type="Ready"] td').nth(1).textContent()).to.equal('True');
    // B went to ready while the page was open: the change is in its history.
    const history = await page.locator('#history tbody tr').allTextContents();
    expect(history.some((h) => h.includes('ReadyTrue'))).to.equal(true);
    await page.waitForSelector('#secrets tbody tr');
    const row = await page.locator('#secrets tbody tr td').allTextContents();
    expect(row.slice(0, 4)).to.deep.equal(['app', 'db', 'strict', 'password']);
    expect(row[4]).to.match(/^[0-9a-f]{64}$/);
    expect(await page.content(), 'no sealed value on the page').to.not.contain(VALUE);

    await page.click('#bootstrap');
    await page.waitForSelector('#bootstrap-out:not([hidden])');
    const url = (await page.locator('#bootstrap-out a').getAttribute('href'))!;
    expect(url).to.contain(`/v1/cluster/${B}/bootstrap?token=`);
    const script = await fetch(url);
    expect(script.status).to.equal(200);
    expect(await script.text()).to.match(/^#!/);
    await page.screenshot({ path: join(out, 'cluster-detail.png'), fullPage: true });
    expect(await shownError()).to.equal('');
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });

  it("shows a cluster's stored conditions history, with the failure and recovery from before the page loaded", async () => {
    // Back to the list, and into the cluster that was ready before the page was loaded.
    await page.evaluate(() => {
      location.hash = '';
    });
    await page.click(`a[href="#/cluster/${early}"]`);
    await page.waitForSelector('#detail:not([hidden])');
    await page.waitForSelector('#history tbody tr');
    const cells = async () =>
      (await page
        .locator('#history tbody tr')
        .evaluateAll((trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
        )) as string[][];
    expect(await page.textContent('#detail-name')).to.equal('Ui_Early');
    const rows = await cells();
    const shown = rows.map(([, type, status, reason]) => `${type} ${status} ${reason}`);
    // Newest first: ready now, and before that the bad entry that was fixed before this page existed.
    const ready = shown.findIndex((x) => x.startsWith('Ready '));
    expect(shown[ready], shown.join('\n')).to.equal('Ready True Commissioned');
    const failed = shown.indexOf('Ready False InvalidNamespace');
    expect(failed, shown.join('\n')).to.be.greaterThan(ready);
    expect(rows[failed][4]).to.match(/Not_A_Namespace.* is not a valid Kubernetes namespace/);
    expect(rows[failed][0]).to.match(/ago$|^just now$/);
    expect(await page.locator('#history-note').textContent()).to.equal('');

    // A transition while the page is open joins the stored ones, once, also after the page reads them again.
    const edge = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.edgeStatus}/object/${early}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        hosts: [{ hostname: 'edge-1', arch: 'amd64', k8s_version: 'v1.31.4+k3s1', ready: true }],
      }),
    });
    expect(edge.status).to.equal(201);
    await page.waitForSelector('#history tbody tr:has-text("Reporting")', { timeout: 30_000 });
    await waitFor(
      async () => ((await readHistory(early)).some((h) => h.reason === 'Reporting') ? true : undefined),
      10_000,
      undefined,
      'the transition stored',
    );
    // The page reads the stored history again half a second after a live transition.
    await page.waitForTimeout(1500);
    const after = (await cells()).map(([, type, status, reason]) => `${type} ${status} ${reason}`);
    expect(after[0], after.join('\n')).to.equal('EdgeReporting True Reporting');
    expect(
      after.filter((x) => x === 'EdgeReporting True Reporting'),
      after.join('\n'),
    ).to.have.length(1);
    expect(after.slice(1), 'the stored rows stay as they were').to.deep.equal(shown);
    await page.screenshot({ path: join(out, 'cluster-history.png'), fullPage: true });
    expect(await shownError()).to.equal('');
    expect(problems, problems.join('\n')).to.deep.equal([]);
  });
});
