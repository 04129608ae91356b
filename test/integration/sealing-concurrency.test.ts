import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { clone as cloneRepo, git, remoteHead as remoteHeadOf, repoUrl } from '../helpers/git.js';
import { unsealValue } from '../helpers/unseal.js';

/**
 * Concurrent sealing through the HTTP API: writes to one cluster repo are
 * coalesced into few commits, and a remote that moves under the writer
 * (someone pushing by hand) loses nobody's change.
 */

type Obj = Record<string, any>;

describe('sealing API under concurrency', function () {
  this.timeout(60_000);
  let s: ApiStack;
  let C: string;
  const cert = () => testCert('rsa');

  const put = (cluster: string, ns: string, name: string, key: string, value: Buffer | string, query = '') =>
    fetch(`${s.url}/v1/cluster/${cluster}/secret/${ns}/${name}/${key}${query}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/octet-stream' },
      body: typeof value === 'string' ? value : new Uint8Array(value),
    }).then(async (r) => ({ status: r.status, text: await r.text() }));

  const cloneUrl = (cluster: string) => repoUrl(s.t.core.endpoints.git, cluster, s.t.core.credentials.admin);
  const remoteHead = (cluster: string) => remoteHeadOf(cloneUrl(cluster));
  const clone = (cluster: string) => cloneRepo(cloneUrl(cluster));
  const manifest = (dir: string, ns: string, name: string): Obj => {
    const docs = parseAllDocuments(readFileSync(join(dir, `edo/secrets/${ns}/${name}.yaml`), 'utf8'));
    if (!Array.isArray(docs) || docs.length === 0) throw new Error('no documents');
    return docs[0].toJS() as Obj;
  };
  const unsealed = (dir: string, ns: string, name: string, key: string): Buffer => {
    const sealed = manifest(dir, ns, name).spec.encryptedData[key] as string | undefined;
    if (sealed === undefined) throw new Error(`${ns}/${name}/${key} is not in the repo`);
    return unsealValue(cert().keyPem, sealed, Buffer.from(`${ns}/${name}`));
  };

  /** Commits and pushes a file from a separate clone, rebasing until the push is accepted. */
  const pushByHand = async (dir: string, path: string, text: string) => {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
    await git(['add', path], dir);
    await git(['commit', '-q', '-m', `by hand: ${path}`], dir);
    for (let attempt = 1; ; attempt++) {
      try {
        await git(['push', '-q', 'origin', 'HEAD:main'], dir);
        return;
      } catch (e) {
        if (attempt >= 20) throw e;
        await git(['pull', '-q', '--rebase', 'origin', 'main'], dir);
      }
    }
  };

  /**
   * Records the writer's "remote moved, retrying" events by swapping in a
   * recording logger; undefined when the writer's internals have changed shape
   * (the end-state assertions do not depend on this).
   */
  const watchRetries = (cluster: string): unknown[] | undefined => {
    const w = (s.m.repos as unknown as { writers?: Map<string, { log?: unknown }> }).writers?.get(cluster);
    if (!w || typeof w.log !== 'object' || w.log === null) return undefined;
    const seen: unknown[] = [];
    const inner = w.log as Record<string, (...a: unknown[]) => void>;
    w.log = new Proxy(inner, {
      get: (target, prop) =>
        prop === 'info' || prop === 'warn'
          ? (obj: unknown, msg?: string) => {
              if (/retry|moved|rejected|failed/i.test(String(msg ?? obj))) seen.push(msg ?? obj);
            }
          : Reflect.get(target, prop),
    });
    return seen;
  };

  before(async () => {
    cert();
    s = await startApiStack();
    C = await s.createCluster('sealing_conc');
    const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.edgeStatus}/object/${C}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kubeseal_cert: cert().certPem }),
    });
    expect(r.status).to.be.oneOf([200, 201, 204]);
  });
  after(async () => {
    await s?.stop();
  });

  it('20 concurrent PUTs all get 204, all land, in fewer commits than requests, with a batch message listing each change', async () => {
    // Warm the writer so the burst meets a busy one rather than a cold clone.
    expect((await put(C, 'conc', 'warm', 'k', 'w')).status).to.equal(204);
    const before = await remoteHead(C);
    const values = Array.from({ length: 20 }, () => randomBytes(48));
    const addr = (i: number) => ({ ns: 'conc', name: `s${i % 6}`, key: `k${i}` });
    const answers = await Promise.all(values.map((v, i) => put(C, addr(i).ns, addr(i).name, addr(i).key, v)));
    answers.forEach((a, i) => expect(a.status, `PUT #${i}: ${a.text}`).to.equal(204));

    const dir = await clone(C);
    values.forEach((v, i) => {
      const { ns, name, key } = addr(i);
      expect(unsealed(dir, ns, name, key).equals(v), `${ns}/${name}/${key}`).to.equal(true);
    });
    for (let f = 0; f < 6; f++) {
      const want = values
        .map((_, i) => i)
        .filter((i) => i % 6 === f)
        .map((i) => `k${i}`)
        .sort();
      expect(Object.keys(manifest(dir, 'conc', `s${f}`).spec.encryptedData).sort()).to.deep.equal(want);
    }
    const commits = Number((await git(['rev-list', '--count', `${before}..HEAD`], dir)).trim());
    expect(commits).to.be.at.least(1);
    expect(commits, 'commits for 20 requests').to.be.lessThan(20);
    const log = await git(['log', '--format=%B%x00', `${before}..HEAD`], dir);
    const bodies = log
      .split('\0')
      .map((b) => b.trim())
      .filter(Boolean);
    const batches = bodies.filter((b) => /^\d+ changes\n/.test(b));
    expect(batches.length, log).to.be.at.least(1);
    for (const b of batches) {
      const [head, , ...lines] = b.split('\n');
      expect(lines.length).to.equal(Number(head.split(' ')[0]));
      for (const l of lines) expect(l).to.match(/^\* Updated sealed secret conc\/s\d\/k\d+$/);
    }
    // Every request's change is named exactly once across the commits.
    for (let i = 0; i < 20; i++) {
      const { ns, name, key } = addr(i);
      const msg = `Updated sealed secret ${ns}/${name}/${key}`;
      const n = bodies.reduce((c, b) => c + b.split('\n').filter((l) => l === msg || l === `* ${msg}`).length, 0);
      expect(n, msg).to.equal(1);
    }
    // The count in the status includes all of them.
    const st = await fetch(`${s.url}/v1/cluster/${C}/status`, { headers: { Authorization: s.admin } }).then(
      (r) => r.json() as Promise<Obj>,
    );
    expect(st.secrets?.count).to.equal(21);
  });

  it('a remote moved by hand while PUTs are in flight loses neither the by-hand commit nor any acknowledged secret', async () => {
    const hand = await clone(C);
    // The writer's warm copy now trusts a head that is about to go stale.
    expect((await put(C, 'moved', 'pre', 'k', 'pre')).status).to.equal(204);
    await git(['pull', '-q', 'origin', 'main'], hand);
    await pushByHand(hand, 'by-hand/x.yaml', 'x: 1\n');
    const retries = watchRetries(C);

    const values = Array.from({ length: 12 }, () => randomBytes(32));
    const addr = (i: number) => ({ ns: 'moved', name: `m${i % 4}`, key: `k${i}` });
    const inFlight = values.map((v, i) => put(C, addr(i).ns, addr(i).name, addr(i).key, v));
    // And once more while the writer is busy with them.
    const byHand = (async () => {
      await new Promise((r) => setTimeout(r, 15));
      await pushByHand(hand, 'by-hand/y.yaml', 'y: 2\n');
    })();
    const [answers] = await Promise.all([Promise.all(inFlight), byHand]);
    answers.forEach((a, i) => expect(a.status, `PUT #${i}: ${a.text}`).to.equal(204));
    // A PUT after everything settled still goes on top.
    expect((await put(C, 'moved', 'post', 'k', 'post')).status).to.equal(204);

    const dir = await clone(C);
    expect(readFileSync(join(dir, 'by-hand/x.yaml'), 'utf8')).to.equal('x: 1\n');
    expect(readFileSync(join(dir, 'by-hand/y.yaml'), 'utf8')).to.equal('y: 2\n');
    values.forEach((v, i) => {
      const { ns, name, key } = addr(i);
      expect(unsealed(dir, ns, name, key).equals(v), `${ns}/${name}/${key}`).to.equal(true);
    });
    expect(unsealed(dir, 'moved', 'pre', 'k').toString()).to.equal('pre');
    expect(unsealed(dir, 'moved', 'post', 'k').toString()).to.equal('post');
    // History is linear: nobody force-pushed over anybody.
    const merges = (await git(['rev-list', '--merges', '--count', 'HEAD'], dir)).trim();
    expect(merges).to.equal('0');
    const subjects = (await git(['log', '--format=%s'], dir)).split('\n');
    expect(subjects).to.include('by hand: by-hand/x.yaml');
    expect(subjects).to.include('by hand: by-hand/y.yaml');
    // The stale head really was pushed against and the write redone (when the writer's log can be observed).
    if (retries) expect(retries.length, 'rejected pushes retried on the new head').to.be.at.least(1);
  });

  it('one refused edit in a batch does not sink the others', async () => {
    expect((await put(C, 'mixed', 'strict', 'first', 'f')).status).to.equal(204);
    const values = Array.from({ length: 6 }, () => randomBytes(16));
    const [bad, ...good] = await Promise.all([
      put(C, 'mixed', 'strict', 'wide', 'x', '?scope=cluster-wide'),
      ...values.map((v, i) => put(C, 'mixed', 'strict', `k${i}`, v)),
    ]);
    expect(bad.status, bad.text).to.equal(409);
    good.forEach((a, i) => expect(a.status, `PUT #${i}: ${a.text}`).to.equal(204));
    const dir = await clone(C);
    const m = manifest(dir, 'mixed', 'strict');
    expect(Object.keys(m.spec.encryptedData).sort()).to.deep.equal(['first', 'k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    values.forEach((v, i) => expect(unsealed(dir, 'mixed', 'strict', `k${i}`).equals(v)).to.equal(true));
    expect(m.metadata.annotations?.['sealedsecrets.bitnami.com/cluster-wide']).to.equal(undefined);
  });

  it('concurrent PUTs and DELETEs of one file end in the state of the acknowledged operations', async () => {
    const keep = Array.from({ length: 5 }, (_, i) => `keep${i}`);
    const drop = Array.from({ length: 5 }, (_, i) => `drop${i}`);
    for (const k of drop) expect((await put(C, 'mixed', 'churn', k, k)).status).to.equal(204);
    const answers = await Promise.all([
      ...keep.map((k) => put(C, 'mixed', 'churn', k, k)),
      ...drop.map((k) =>
        fetch(`${s.url}/v1/cluster/${C}/secret/mixed/churn/${k}`, {
          method: 'DELETE',
          headers: { Authorization: s.admin },
        }).then(async (r) => ({ status: r.status, text: await r.text() })),
      ),
    ]);
    answers.forEach((a, i) => expect(a.status, `#${i}: ${a.text}`).to.equal(204));
    const dir = await clone(C);
    expect(Object.keys(manifest(dir, 'mixed', 'churn').spec.encryptedData).sort()).to.deep.equal(keep);
    for (const k of keep) expect(unsealed(dir, 'mixed', 'churn', k).toString()).to.equal(k);
  });
});
