import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/index.js';
import { Local } from '../../src/embedded/seed/local-uuids.js';
import { RepoWriter } from '../../src/repo/writer.js';
import { adminAuth, startTestCore, tempDir, type TestCore } from '../helpers/core.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { clone, git, gitEnv, repoUrl } from '../helpers/git.js';

const run = promisify(execFile);
const u = loadConfig({ env: {} }).uuids;

describe('repo writer over smart HTTP', function () {
  this.timeout(60_000);
  let t: TestCore;
  let repo: string;
  let cloneUrl: string;

  const newRepo = async (path: string) => {
    const { configdb } = t.core.endpoints;
    const h = { Authorization: adminAuth(t.core), 'Content-Type': 'application/json' };
    const uuid = (
      await (
        await fetch(`${configdb}/v2/object`, {
          method: 'POST',
          headers: h,
          body: JSON.stringify({ class: u.class.edgeCluster }),
        })
      ).json()
    ).uuid;
    await fetch(`${configdb}/v2/app/${u.app.gitRepoConfig}/object/${uuid}`, {
      method: 'PUT',
      headers: h,
      body: JSON.stringify({ path }),
    });
    await fetch(`${configdb}/v2/class/${Local.repoGroup.cluster}/direct/member/${uuid}`, { method: 'PUT', headers: h });
    return uuid;
  };

  const writer = (uuid: string, opts: { base?: string; timeoutMs?: number } = {}) => {
    const cm = t.core.credentials.clusterManager;
    return new RepoWriter(
      join(tempDir('wc-'), uuid),
      {
        url: `${opts.base ?? t.core.endpoints.git}/uuid/${uuid}`,
        headers: async (_fresh) => ({
          Authorization: `Basic ${Buffer.from(`${cm.username}:${cm.password}`).toString('base64')}`,
        }),
        timeoutMs: opts.timeoutMs,
      },
      { name: 'Edge deployment operator', email: 'cm@test' },
    );
  };

  const log = async (dir: string) => (await git(['-C', dir, 'log', '--format=%s'])).trim().split('\n');

  /**
   * Pushes a commit made by hand to the repo `uuid`: `edit` changes a fresh
   * clone's work tree and `gitlink` names a submodule entry to add, pointing
   * at the clone's head. Resolves with that head.
   */
  const pushByHand = async (uuid: string, edit: (dir: string) => void, gitlink?: string): Promise<string> => {
    const dir = await clone(repoUrl(t.core.endpoints.git, uuid, t.core.credentials.admin));
    edit(dir);
    await git(['-C', dir, 'add', '-A']);
    const head = (await git(['-C', dir, 'rev-parse', 'HEAD'])).trim();
    if (gitlink) await git(['-C', dir, 'update-index', '--add', '--cacheinfo', `160000,${head},${gitlink}`]);
    await git(['-C', dir, 'commit', '-qm', 'by hand']);
    await git(['-C', dir, 'push', '-q', 'origin', 'HEAD:main']);
    return head;
  };

  before(async () => {
    t = await startTestCore();
    repo = await newRepo('cluster/Writer_Test');
    cloneUrl = repoUrl(t.core.endpoints.git, repo, t.core.credentials.admin);
  });
  after(async () => {
    await t.stop();
  });

  it('makes the first commit of an empty repo, then commits only when content changes', async () => {
    const w = writer(repo);
    const first = await w.submit({
      message: 'Cluster flux update',
      apply: async (f) => {
        await f.write('README.md', 'hello\n');
        await f.write('edo/cluster/a.yaml', 'a: 1\n');
      },
    });
    expect(first.committed).to.equal(true);
    const same = await w.submit({
      message: 'Cluster flux update',
      apply: async (f) => {
        await f.write('README.md', 'hello\n');
      },
    });
    expect(same.committed).to.equal(false);
    expect(same.head).to.equal(first.head);
    const c = await clone(cloneUrl);
    expect(readFileSync(join(c, 'edo/cluster/a.yaml'), 'utf8')).to.equal('a: 1\n');
    expect(await log(c)).to.deep.equal(['Cluster flux update']);
  });

  it('coalesces concurrent edits into one commit that lists each change', async () => {
    const w = writer(repo);
    await w.submit({
      message: 'warm up',
      apply: async (f) => {
        await f.write('warm', '1');
      },
    });
    const edits = Array.from({ length: 20 }, (_, i) =>
      w.submit({
        message: `Updated sealed secret ns/s${i}/k`,
        apply: async (f) => {
          await f.write(`edo/secrets/ns/s${i}.yaml`, `n: ${i}\n`);
        },
      }),
    );
    const results = await Promise.all(edits);
    expect(results.every((r) => r.committed)).to.equal(true);
    const heads = new Set(results.map((r) => r.head));
    expect(heads.size).to.be.lessThan(5);
    const c = await clone(cloneUrl);
    for (let i = 0; i < 20; i++)
      expect(readFileSync(join(c, `edo/secrets/ns/s${i}.yaml`), 'utf8')).to.equal(`n: ${i}\n`);
    const subjects = await log(c);
    expect(subjects.length).to.be.lessThan(2 + 20);
    expect(subjects.some((s) => /^\d+ changes$/.test(s))).to.equal(true);
  });

  it('rejects only the edit that throws and keeps the rest of the batch', async () => {
    const w = writer(repo);
    const bad = w.submit({
      message: 'bad',
      apply: async () => {
        throw new Error('broken edit');
      },
    });
    const good = w.submit({
      message: 'good',
      apply: async (f) => {
        await f.write('good.txt', 'ok');
      },
    });
    await expectRejected(bad, /broken edit/);
    expect((await good).committed).to.equal(true);
  });

  it('redoes a write on the new head when someone pushed meanwhile, keeping both changes', async () => {
    const w = writer(repo);
    await w.submit({
      message: 'before',
      apply: async (f) => {
        await f.write('before.txt', 'x');
      },
    });
    await pushByHand(repo, (h) => {
      mkdirSync(join(h, 'by-hand'), { recursive: true });
      writeFileSync(join(h, 'by-hand', 'extra.yaml'), 'kind: ConfigMap\n');
    });
    // The writer still believes its own last head; its push is refused and redone.
    const r = await w.submit({
      message: 'after',
      apply: async (f) => {
        await f.write('after.txt', 'y');
      },
    });
    expect(r.committed).to.equal(true);
    const c = await clone(cloneUrl);
    expect(readFileSync(join(c, 'by-hand/extra.yaml'), 'utf8')).to.equal('kind: ConfigMap\n');
    expect(readFileSync(join(c, 'after.txt'), 'utf8')).to.equal('y');
  });

  it('pushes objects git itself accepts as well-formed (git fsck --strict), with trees in git order', async () => {
    const fresh = await newRepo('cluster/Fsck_Test');
    const w = writer(fresh);
    // Names that sort differently as files and as directories ('a' < 'a-b' < 'a.b' < 'a/'), nested trees, non-ASCII.
    const files: Record<string, string> = {
      'a-b': '1\n',
      'a.b': '2\n',
      'a/x.yaml': '3\n',
      'a/b/c/d.txt': '4\n',
      'ünï/cødé.txt': '5\n',
      z: '',
    };
    await w.submit({
      message: 'many shapes',
      apply: async (f) => {
        for (const [p, c] of Object.entries(files)) await f.write(p, c);
      },
    });
    await w.submit({
      message: 'change one',
      apply: async (f) => {
        await f.write('a/b/c/d.txt', '4b\n');
        f.remove('z');
      },
    });
    const bare = t.core.git.dir(fresh);
    const fsck = await run('git', ['-C', bare, 'fsck', '--strict', '--no-dangling', '--full'], { env: gitEnv });
    expect(fsck.stderr.trim(), 'git fsck findings').to.equal('');
    const listed = (await git(['-C', bare, '-c', 'core.quotepath=off', 'ls-tree', '-r', '--name-only', 'main']))
      .trim()
      .split('\n');
    expect(listed).to.deep.equal(['a-b', 'a.b', 'a/b/c/d.txt', 'a/x.yaml', 'ünï/cødé.txt']);
    const content = await git(['-C', bare, 'show', 'main:a/b/c/d.txt']);
    expect(content).to.equal('4b\n');
  });

  it('overwriting keeps an executable executable and turns a symlink or submodule into a file; a submodule reads as no file', async () => {
    const fresh = await newRepo('cluster/Modes_Test');
    const w = writer(fresh);
    await w.submit({
      message: 'start',
      apply: async (f) => {
        await f.write('README.md', 'r\n');
      },
    });
    await pushByHand(
      fresh,
      (h) => {
        writeFileSync(join(h, 'tool.sh'), '#!/bin/sh\n');
        chmodSync(join(h, 'tool.sh'), 0o755);
        symlinkSync('README.md', join(h, 'link.yaml'));
      },
      'mod',
    );
    const seen = await w.read(async (f) => ({
      link: await f.read('link.yaml'),
      mod: await f.read('mod'),
      modOid: f.oid('mod'),
      list: f.list(''),
    }));
    expect(seen).to.deep.equal({
      link: 'README.md',
      mod: undefined,
      modOid: undefined,
      list: ['README.md', 'link.yaml', 'mod', 'tool.sh'],
    });
    await w.submit({
      message: 'overwrite',
      apply: async (f) => {
        for (const p of ['tool.sh', 'link.yaml', 'mod']) await f.write(p, `${p}\n`);
      },
    });
    const tree = await git(['-C', t.core.git.dir(fresh), 'ls-tree', 'main']);
    const modes = Object.fromEntries(
      tree
        .trim()
        .split('\n')
        .map((l) => [l.split('\t')[1], l.split(' ')[0]]),
    );
    expect(modes).to.deep.equal({ 'README.md': '100644', 'link.yaml': '100644', mod: '100644', 'tool.sh': '100755' });
  });

  it('refuses a write that a hand-made entry stands in the way of (a submodule or file above it, a directory at its place) and writes nothing', async () => {
    const fresh = await newRepo('cluster/Conflict_Test');
    const w = writer(fresh);
    await w.submit({
      message: 'start',
      apply: async (f) => {
        await f.write('d/inner.txt', 'i\n');
      },
    });
    const head = await pushByHand(fresh, (h) => writeFileSync(join(h, 'plain'), 'p\n'), 'mod');
    const bare = t.core.git.dir(fresh);
    const before = (await git(['-C', bare, 'rev-parse', 'main'])).trim();
    for (const [message, path, refusal] of [
      ['under a submodule', 'mod/x.yaml', /mod is a submodule/],
      ['under a file', 'plain/x.yaml', /plain is a file/],
      ['over a directory', 'd', /d is a directory/],
    ] as const)
      await expectRejected(
        w.submit({
          message,
          apply: async (f) => {
            await f.write(path, 'x\n');
          },
        }),
        refusal,
      );
    expect((await git(['-C', bare, 'rev-parse', 'main'])).trim()).to.equal(before);
    // Writes beside them still land, and git finds the result well-formed.
    expect(
      (
        await w.submit({
          message: 'beside',
          apply: async (f) => {
            await f.write('d/other.txt', 'o\n');
          },
        })
      ).committed,
    ).to.equal(true);
    await git(['-C', bare, 'fsck', '--strict', '--no-dangling', '--full']);
    const tree = await git(['-C', bare, 'ls-tree', '-r', 'main']);
    expect(tree)
      .to.include(`160000 commit ${head}\tmod\n`)
      .and.to.include('\tplain\n')
      .and.to.include('\td/inner.txt\n')
      .and.to.include('\td/other.txt\n');
  });

  it('a warm write is a single receive-pack request; a stale head is refused by the server, then fetched and redone', async () => {
    const proxy = await startFaultProxy(t.core.endpoints.git);
    try {
      const fresh = await newRepo('cluster/One_Request');
      const w = writer(fresh, { base: proxy.url.replace(/\/$/, '') });
      await w.submit({
        message: 'first',
        apply: async (f) => {
          await f.write('one.txt', '1');
        },
      });
      proxy.seen.length = 0;
      await w.submit({
        message: 'second',
        apply: async (f) => {
          await f.write('two.txt', '2');
        },
      });
      expect(proxy.seen).to.deep.equal([`POST /uuid/${fresh}/git-receive-pack`]);

      // Someone else moves the branch; the writer's next push names the old head and is refused.
      await pushByHand(fresh, (h) => writeFileSync(join(h, 'hand.txt'), 'h'));
      proxy.seen.length = 0;
      const r = await w.submit({
        message: 'third',
        apply: async (f) => {
          await f.write('three.txt', '3');
        },
      });
      expect(r.committed).to.equal(true);
      expect(
        proxy.seen.filter((l) => l.startsWith('POST') && l.endsWith('/git-receive-pack')),
        'pushes',
      ).to.have.length(2);
      expect(
        proxy.seen.some((l) => l.includes('service=git-upload-pack')),
        'a fetch between them',
      ).to.equal(true);
      const tree = (await git(['-C', t.core.git.dir(fresh), 'ls-tree', '--name-only', 'main'])).trim().split('\n');
      expect(tree).to.deep.equal(['hand.txt', 'one.txt', 'three.txt', 'two.txt']);
    } finally {
      await proxy.close();
    }
  });

  it('waits for an edit announced with expect() and commits it together with the one already queued', async () => {
    const w = writer(repo);
    await w.submit({
      message: 'warm',
      apply: async (f) => {
        await f.write('warm', '2');
      },
    });
    const arrived = w.expect();
    const first = w.submit({
      message: 'queued first',
      apply: async (f) => {
        await f.write('exp/a.txt', 'a');
      },
    });
    await new Promise((r) => setTimeout(r, 20));
    arrived();
    const second = w.submit({
      message: 'announced',
      apply: async (f) => {
        await f.write('exp/b.txt', 'b');
      },
    });
    const [a, b] = await Promise.all([first, second]);
    expect(a.committed && b.committed).to.equal(true);
    expect(a.head, 'one commit for both').to.equal(b.head);
  });

  it('gives up on a Git server that stops answering, with an error saying so', async () => {
    const proxy = await startFaultProxy(t.core.endpoints.git);
    try {
      const w = writer(repo, { base: proxy.url.replace(/\/$/, ''), timeoutMs: 300 });
      proxy.set({ fault: { kind: 'hang' }, every: 1 });
      await expectRejected(
        w.submit({
          message: 'x',
          apply: async (f) => {
            await f.write('hang.txt', 'x');
          },
        }),
        /did not answer .* within 300 ms/,
      );
      proxy.set(null);
      const r = await w.submit({
        message: 'after the outage',
        apply: async (f) => {
          await f.write('hang.txt', 'y');
        },
      });
      expect(r.committed).to.equal(true);
    } finally {
      await proxy.close();
    }
  });

  it('gives an edit with a deadline only what is left of it: a hanging server fails it by then, not after the Git timeout', async () => {
    const proxy = await startFaultProxy(t.core.endpoints.git);
    try {
      const w = writer(repo, { base: proxy.url.replace(/\/$/, ''), timeoutMs: 8_000 });
      await w.submit({
        message: 'warm',
        apply: async (f) => {
          await f.write('deadline.txt', '0');
        },
      });
      proxy.set({ fault: { kind: 'hang' }, every: 1 });
      const t0 = performance.now();
      await expectRejected(
        w.submit(
          {
            message: 'x',
            apply: async (f) => {
              await f.write('deadline.txt', '1');
            },
          },
          { deadlineMs: 700 },
        ),
        /within \d+ ms/,
      );
      const took = performance.now() - t0;
      expect(took, 'failed by its deadline').to.be.within(600, 2_000);
      // Queued behind the hung write, an edit whose time is gone by its turn never reaches the server.
      const hung = w.submit(
        {
          message: 'y',
          apply: async (f) => {
            await f.write('deadline.txt', '2');
          },
        },
        { deadlineMs: 500 },
      );
      const late = w.submit(
        {
          message: 'z',
          apply: async (f) => {
            await f.write('deadline.txt', '3');
          },
        },
        { deadlineMs: 500 },
      );
      await expectRejected(hung, /within \d+ ms|ran out of time/);
      await expectRejected(late, /within \d+ ms|ran out of time/);
      // Reads too: behind a write that hangs, and with their own fetch.
      const blocking = w.submit({
        message: 'blocks',
        apply: async (f) => {
          await f.write('deadline.txt', '5');
        },
      });
      const r0 = performance.now();
      await expectRejected(
        w.read(async (f) => f.read('deadline.txt'), { deadlineMs: 700 }),
        /busy for 700 ms|within \d+ ms/,
      );
      expect(performance.now() - r0, 'read failed by its deadline').to.be.within(600, 2_000);
      proxy.set(null);
      await blocking.catch(() => undefined);
      expect(await w.read(async (f) => f.read('deadline.txt'), { deadlineMs: 5_000 })).to.be.oneOf(['0', '5']);
      const r = await w.submit(
        {
          message: 'after',
          apply: async (f) => {
            await f.write('deadline.txt', '4');
          },
        },
        { deadlineMs: 5_000 },
      );
      expect(r.committed).to.equal(true);
    } finally {
      await proxy.close();
    }
  });

  it('fails cleanly without push permission and writes nothing', async () => {
    const other = await newRepo('cluster/Not_Mine');
    await fetch(`${t.core.endpoints.configdb}/v2/class/${Local.repoGroup.cluster}/direct/member/${other}`, {
      method: 'DELETE',
      headers: { Authorization: adminAuth(t.core) },
    });
    const w = writer(other);
    await expectRejected(
      w.submit({
        message: 'x',
        apply: async (f) => {
          await f.write('x', 'x');
        },
      }),
      /403|denied|HTTP Error/i,
    );
    const branches = await (
      await fetch(`${t.core.endpoints.git}/v1/status/${other}`, { headers: { Authorization: adminAuth(t.core) } })
    ).json();
    expect(branches).to.deep.equal({});
  });
});

async function expectRejected(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect((e as Error).message).to.match(pattern);
    return;
  }
  expect.fail('expected a rejection');
}
