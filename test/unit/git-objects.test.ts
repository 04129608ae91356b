import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { commitObject, gitObject, packObjects, treeObject, type GitObject } from '../../src/repo/git-objects.js';
import { parsePktLines } from '../../src/repo/git-push.js';
import { tempDir } from '../helpers/core.js';

const run = promisify(execFile);

/** Runs git with `input` on stdin; resolves with stdout. */
function gitWith(args: string[], input: Buffer | string, cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`git ${args.join(' ')}: ${err}`))));
    // git may exit without reading stdin (ls-tree): its closed pipe is no failure of the test.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

describe('git objects built with node:crypto and node:zlib', () => {
  let repo: string;
  before(async () => {
    repo = tempDir('git-objects-');
    await run('git', ['init', '-q', '--bare', repo]);
  });

  it('a blob has the id git gives it, for text, empty and binary content', async () => {
    for (const body of [Buffer.from('hello\n'), Buffer.alloc(0), Buffer.from([0, 255, 10, 13, 0x80])]) {
      const expected = (await gitWith(['hash-object', '-t', 'blob', '--stdin'], body)).trim();
      expect(gitObject('blob', body).oid).to.equal(expected);
    }
  });

  it("a tree has the id git mktree gives the same entries, with git's order of files and directories", async () => {
    const blob = gitObject('blob', Buffer.from('x\n'));
    await gitWith(['hash-object', '-w', '-t', 'blob', '--stdin'], blob.body, repo);
    const sub = treeObject([{ name: 'inner.txt', oid: blob.oid, mode: '100644' }]);
    await gitWith(['hash-object', '-w', '-t', 'tree', '--stdin'], sub.body, repo);
    const names = ['a', 'a-b', 'a.b', 'b', 'ünï', 'A', 'a0'];
    // 'a' is a directory: it sorts as 'a/', after 'a-b' and 'a.b' but before 'a0'.
    const entries = names.map((name) =>
      name === 'a' || name === 'ünï'
        ? { name, oid: sub.oid, mode: '40000' as const }
        : { name, oid: blob.oid, mode: '100644' as const },
    );
    const ours = treeObject([...entries].reverse());
    const listing = entries
      .map((e) => `${e.mode === '40000' ? '040000 tree' : '100644 blob'} ${e.oid}\t${e.name}`)
      .join('\n');
    const expected = (await gitWith(['mktree'], `${listing}\n`, repo)).trim();
    expect(ours.oid).to.equal(expected);
  });

  it("a tree keeps each entry's mode (file, executable, symlink, submodule, directory) as git mktree does, a submodule sorting as a file", async () => {
    const blob = gitObject('blob', Buffer.from('#!/bin/sh\n'));
    const link = gitObject('blob', Buffer.from('target'));
    for (const o of [blob, link]) await gitWith(['hash-object', '-w', '-t', 'blob', '--stdin'], o.body, repo);
    const dir = treeObject([{ name: 'f', oid: blob.oid, mode: '100644' }]);
    await gitWith(['hash-object', '-w', '-t', 'tree', '--stdin'], dir.body, repo);
    // A commit of another repository: git keeps a submodule's id without having the commit.
    const elsewhere = 'c0ffee'.padEnd(40, '1');
    const entries = [
      { name: 'plain', oid: blob.oid, mode: '100644' as const },
      { name: 'run.sh', oid: blob.oid, mode: '100755' as const },
      { name: 'link', oid: link.oid, mode: '120000' as const },
      // 'sub' the submodule sorts before 'sub-x' and 'sub.d'; 'sub.d/' the directory sorts after 'sub.d.txt'.
      { name: 'sub', oid: elsewhere, mode: '160000' as const },
      { name: 'sub-x', oid: blob.oid, mode: '100644' as const },
      { name: 'sub.d', oid: dir.oid, mode: '40000' as const },
      { name: 'sub.d.txt', oid: blob.oid, mode: '100644' as const },
    ];
    const type = { '100644': 'blob', '100755': 'blob', '120000': 'blob', '160000': 'commit', '40000': 'tree' } as const;
    const listing = entries.map((e) => `${e.mode.padStart(6, '0')} ${type[e.mode]} ${e.oid}\t${e.name}`).join('\n');
    const expected = (await gitWith(['mktree'], `${listing}\n`, repo)).trim();
    const ours = treeObject([...entries].reverse());
    expect(ours.oid).to.equal(expected);
    const shown = await gitWith(['ls-tree', expected], '', repo);
    expect(shown)
      .to.include(`160000 commit ${elsewhere}\tsub\n`)
      .and.to.include(`100755 blob ${blob.oid}\trun.sh\n`)
      .and.to.include(`120000 blob ${link.oid}\tlink\n`);
  });

  it('refuses names, modes and ids a tree cannot hold', () => {
    const oid = gitObject('blob', Buffer.from('')).oid;
    for (const name of ['', '.', '..', 'a/b', 'nul\0']) {
      expect(() => treeObject([{ name, oid, mode: '100644' }]), JSON.stringify(name)).to.throw(/not a valid file name/);
    }
    for (const mode of ['100664', '040000', '644', '']) {
      expect(() => treeObject([{ name: 'a', oid, mode: mode as '100644' }]), mode).to.throw(/not a valid mode/);
    }
    for (const id of ['', oid.slice(1), oid.toUpperCase(), `${oid.slice(1)}g`]) {
      expect(() => treeObject([{ name: 'a', oid: id, mode: '100644' }]), id).to.throw(/not an object id/);
    }
  });

  it('a commit has the id git commit-tree gives it, with and without a parent', async () => {
    const tree = treeObject([]);
    await gitWith(['hash-object', '-w', '-t', 'tree', '--stdin'], tree.body, repo);
    const who = { name: 'Edge deployment operator', email: 'cm@example.com', timestamp: 1_700_000_000 };
    const env = {
      ...process.env,
      GIT_AUTHOR_NAME: who.name,
      GIT_AUTHOR_EMAIL: who.email,
      GIT_AUTHOR_DATE: `${who.timestamp} +0000`,
      GIT_COMMITTER_NAME: who.name,
      GIT_COMMITTER_EMAIL: who.email,
      GIT_COMMITTER_DATE: `${who.timestamp} +0000`,
    };
    const root = (await run('git', ['-C', repo, 'commit-tree', tree.oid, '-m', 'first'], { env })).stdout.trim();
    expect(commitObject({ tree: tree.oid, parents: [], author: who, committer: who, message: 'first\n' }).oid).to.equal(
      root,
    );
    const child = (
      await run('git', ['-C', repo, 'commit-tree', tree.oid, '-p', root, '-m', '2 changes\n\n* a\n* b'], { env })
    ).stdout.trim();
    expect(
      commitObject({ tree: tree.oid, parents: [root], author: who, committer: who, message: '2 changes\n\n* a\n* b\n' })
        .oid,
    ).to.equal(child);
  });

  it('a pack is read by git index-pack, object for object, including objects over 16 bytes and over 2 KiB', async () => {
    const objects: GitObject[] = [
      gitObject('blob', Buffer.from('short')),
      gitObject('blob', Buffer.from('x'.repeat(5000))),
      gitObject('blob', Buffer.alloc(0)),
    ];
    const tree = treeObject(objects.map((o, i) => ({ name: `f${i}`, oid: o.oid, mode: '100644' as const })));
    objects.push(tree);
    const who = { name: 'n', email: 'e@x', timestamp: 1 };
    objects.push(commitObject({ tree: tree.oid, parents: [], author: who, committer: who, message: 'm\n' }));
    const target = tempDir('git-pack-');
    await run('git', ['init', '-q', '--bare', target]);
    await gitWith(['index-pack', '--stdin', '--strict'], packObjects(objects), target);
    for (const o of objects) {
      const type = (await run('git', ['-C', target, 'cat-file', '-t', o.oid])).stdout.trim();
      expect(type).to.equal(o.type);
      const body = await new Promise<Buffer>((resolve, reject) =>
        execFile('git', ['-C', target, 'cat-file', o.type, o.oid], { encoding: 'buffer' }, (e, out) =>
          e ? reject(e) : resolve(out),
        ),
      );
      expect(body.equals(o.body), `${o.type} ${o.oid} content`).to.equal(true);
    }
  });

  it('pkt-lines of a report-status answer are split, flushes dropped; malformed input is an error', () => {
    const answer = Buffer.from('000eunpack ok\n0017ok refs/heads/main\n0000');
    expect(parsePktLines(answer)).to.deep.equal(['unpack ok', 'ok refs/heads/main']);
    expect(() => parsePktLines(Buffer.from('zzzzunpack ok'))).to.throw(/malformed/);
    expect(() => parsePktLines(Buffer.from('0040unpack ok\n'))).to.throw(/truncated/);
  });
});
