import { expect } from 'chai';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { tempDir } from '../helpers/core.js';
import { clone, git, repoUrl } from '../helpers/git.js';
import { waitFor } from '../helpers/processes.js';

/**
 * Entries of a cluster repo that the service did not write come out of its
 * commits exactly as they went in: same mode, same id. Files, an executable,
 * symlinks and submodule entries are pushed with the real git CLI, the
 * service then seals, deletes a key and re-renders, and `git ls-tree -r`
 * (the judge) must show every one of those entries unchanged.
 */

interface Entry {
  mode: string;
  type: string;
  id: string;
}

/** `git ls-tree -r` of a commit: path -> mode, type and id. */
async function lsTree(dir: string, commit: string): Promise<Map<string, Entry>> {
  const out = await git(['ls-tree', '-r', '-z', '--full-tree', commit], dir);
  const entries = new Map<string, Entry>();
  for (const line of out.split('\0').filter(Boolean)) {
    const tab = line.indexOf('\t');
    const [mode, type, id] = line.slice(0, tab).split(' ');
    entries.set(line.slice(tab + 1), { mode: mode!, type: type!, id: id! });
  }
  return entries;
}

describe('git entries the service did not write are kept exactly', function () {
  this.timeout(90_000);
  let s: ApiStack;
  let C: string;

  before(async () => {
    s = await startApiStack();
    C = await s.createCluster('git_entries');
    const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.edgeStatus}/object/${C}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ kubeseal_cert: testCert('rsa').certPem }),
    });
    expect(r.status).to.be.lessThan(300);
  });
  after(async () => {
    await s?.stop();
  });

  const call = (method: string, path: string, body?: string) =>
    fetch(`${s.url}${path}`, {
      method,
      headers: {
        Authorization: s.admin,
        ...(body === undefined ? {} : { 'Content-Type': 'application/octet-stream' }),
      },
      body,
    });
  const seal = async (ns: string, name: string, key: string, value: string) => {
    const r = await call('PUT', `/v1/cluster/${C}/secret/${ns}/${name}/${key}`, value);
    expect(r.status, await r.text()).to.equal(204);
  };

  it('keeps the mode and id of 100644, 100755, 120000 and 160000 entries through a seal, a key deletion and a re-render', async () => {
    const url = repoUrl(s.t.core.endpoints.git, C, s.t.core.credentials.admin);
    await seal('app', 'creds', 'a', 'first');
    await seal('app', 'creds', 'b', 'second');

    // A commit that exists only elsewhere, as a submodule's commit does.
    const other = tempDir('submodule-');
    await git(['init', '-q', other]);
    await git(['commit', '-q', '--allow-empty', '-m', 'elsewhere'], other);
    const subCommit = (await git(['rev-parse', 'HEAD'], other)).trim();

    // Hand-made entries: under by-hand/, and beside the service's own files in a directory it rewrites.
    const dir = await clone(url);
    mkdirSync(join(dir, 'by-hand'), { recursive: true });
    writeFileSync(join(dir, 'by-hand', 'notes.yaml'), 'kind: ConfigMap\n');
    writeFileSync(join(dir, 'by-hand', 'run.sh'), '#!/bin/sh\necho hello\n');
    chmodSync(join(dir, 'by-hand', 'run.sh'), 0o755);
    symlinkSync('notes.yaml', join(dir, 'by-hand', 'current'));
    writeFileSync(join(dir, 'edo', 'secrets', 'app', 'rotate.sh'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(dir, 'edo', 'secrets', 'app', 'rotate.sh'), 0o755);
    symlinkSync('creds.yaml', join(dir, 'edo', 'secrets', 'app', 'latest.yaml'));
    await git(['add', '-A'], dir);
    await git(['update-index', '--add', '--cacheinfo', `160000,${subCommit},by-hand/sub`], dir);
    await git(['update-index', '--add', '--cacheinfo', `160000,${subCommit},edo/secrets/app/vendor`], dir);
    await git(['commit', '-qm', 'by hand'], dir);
    await git(['push', '-q', 'origin', 'HEAD:main'], dir);
    const pushed = (await git(['rev-parse', 'HEAD'], dir)).trim();

    const hand = await lsTree(dir, pushed);
    const ours = (p: string) =>
      p === 'README.md' ||
      p.startsWith('edo/cluster/') ||
      (/^edo\/secrets\/[^/]+\/[^/]+\.yaml$/.test(p) && p !== 'edo/secrets/app/latest.yaml');
    const untouched = new Map([...hand].filter(([p]) => !ours(p)));
    // The setup holds what it should: every kind of entry, as git wrote it.
    expect(untouched.get('by-hand/notes.yaml')?.mode).to.equal('100644');
    expect(untouched.get('by-hand/run.sh')?.mode).to.equal('100755');
    expect(untouched.get('by-hand/current')?.mode).to.equal('120000');
    expect(untouched.get('by-hand/sub')).to.deep.equal({ mode: '160000', type: 'commit', id: subCommit });
    expect(untouched.get('edo/secrets/app/rotate.sh')?.mode).to.equal('100755');
    expect(untouched.get('edo/secrets/app/latest.yaml')?.mode).to.equal('120000');
    expect(untouched.get('edo/secrets/app/vendor')?.mode).to.equal('160000');

    // The service reads that tree (isomorphic-git) and writes on top of it.
    await seal('app', 'creds', 'c', 'third');
    await seal('other', 'token', 'k', 'fourth');
    const del = await call('DELETE', `/v1/cluster/${C}/secret/app/creds/a`);
    expect(del.status, await del.text()).to.equal(204);
    const statusHead = () => (s.m.status.get(C)?.repo as { head?: string } | undefined)?.head;
    const renderedAt = statusHead();
    const spec = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.clusterConfig}/object/${C}`, {
      method: 'PUT',
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'git_entries', namespace: 'fplus-edge', values: { cluster: { tier: 'gold' } } }),
    });
    expect(spec.status).to.be.lessThan(300);
    await waitFor(
      () => {
        const st = s.m.status.get(C);
        return st?.ready === true && statusHead() !== renderedAt;
      },
      30_000,
      undefined,
      're-render',
    );

    const after = await clone(url);
    const head = (await git(['rev-parse', 'HEAD'], after)).trim();
    const log = (await git(['log', '--format=%s', `${pushed}..${head}`], after)).trim().split('\n');
    expect(log, 'the service committed after the hand push').to.have.length.greaterThanOrEqual(3);
    const now = await lsTree(after, head);
    for (const [path, entry] of untouched) expect(now.get(path), path).to.deep.equal(entry);
    // What the service was asked to do, it did.
    expect(now.has('edo/secrets/other/token.yaml')).to.equal(true);
    const creds = await git(['show', `${head}:edo/secrets/app/creds.yaml`], after);
    expect(creds)
      .to.match(/\bc: /)
      .and.to.match(/\bb: /)
      .and.not.to.match(/^\s+a: /m);
    expect(await git(['show', `${head}:edo/cluster/edge-cluster.yaml`], after)).to.include('tier: gold');
    expect(now.get('edo/secrets/other/token.yaml')?.mode).to.equal('100644');
    // The server's copy is well-formed as git sees it.
    await git(['fsck', '--strict', '--full', '--no-dangling'], s.t.core.git.dir(C));
    // And the service still reads the repo: the listing names both secrets.
    const listing = await call('GET', `/v1/cluster/${C}/secret`);
    expect(listing.status).to.equal(200);
    const paths = ((await listing.json()) as Array<{ path: string }>).map((x) => x.path).sort();
    expect(paths).to.deep.equal(['edo/secrets/app/creds.yaml', 'edo/secrets/other/token.yaml']);
  });

  it('answers 409 path-conflict for a secret whose namespace directory is a hand-made submodule, and writes nothing', async () => {
    const url = repoUrl(s.t.core.endpoints.git, C, s.t.core.credentials.admin);
    const dir = await clone(url);
    const head = (await git(['rev-parse', 'HEAD'], dir)).trim();
    await git(['update-index', '--add', '--cacheinfo', `160000,${head},edo/secrets/vendored`], dir);
    await git(['commit', '-qm', 'a submodule where a namespace would go'], dir);
    await git(['push', '-q', 'origin', 'HEAD:main'], dir);
    const pushed = (await git(['rev-parse', 'HEAD'], dir)).trim();
    const r = await call('PUT', `/v1/cluster/${C}/secret/vendored/x/k`, 'v');
    expect(r.status).to.equal(409);
    const body = (await r.json()) as { reason?: string; message?: string };
    expect(body.reason).to.equal('path-conflict');
    expect(body.message).to.match(/edo\/secrets\/vendored is a submodule/);
    expect((await git(['ls-remote', url, 'refs/heads/main'])).split(/\s/)[0]).to.equal(pushed);
  });
});
