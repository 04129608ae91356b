import { expect } from 'chai';
import { MemFs } from '../../src/repo/mem-fs.js';

describe('in-memory file system for working stores', () => {
  it('removes one subtree and leaves its siblings and their listings intact', async () => {
    const m = new MemFs();
    const fs = m.client.promises;
    for (const repo of ['a', 'ab', 'b']) {
      await fs.mkdir(`/co/${repo}/objects/12`, { recursive: true });
      await fs.writeFile(`/co/${repo}/objects/12/3456`, `blob of ${repo}`);
      await fs.writeFile(`/co/${repo}/HEAD`, 'ref: refs/heads/main\n');
    }
    m.rmrf('/co/a');
    expect(m.exists('/co/a')).to.equal(false);
    expect(m.exists('/co/a/objects/12/3456')).to.equal(false);
    expect(await fs.readdir('/co')).to.deep.equal(['ab', 'b']);
    expect(await fs.readFile('/co/ab/objects/12/3456', 'utf8')).to.equal('blob of ab');
    const head = 'ref: refs/heads/main\n'.length;
    expect(m.bytes).to.equal('blob of ab'.length + 'blob of b'.length + 2 * head);
    await fs.writeFile('/co/a', 'now a file');
    expect(await fs.readFile('/co/a', 'utf8')).to.equal('now a file');
  });

  it('answers missing paths and non-empty directories with the usual error codes', async () => {
    const fs = new MemFs().client.promises;
    await fs.mkdir('/d');
    await fs.writeFile('/d/f', 'x');
    const code = (p: Promise<unknown>) =>
      p.then(
        () => 'none',
        (e: NodeJS.ErrnoException) => e.code,
      );
    expect(await code(fs.readFile('/nope'))).to.equal('ENOENT');
    expect(await code(fs.rmdir('/d'))).to.equal('ENOTEMPTY');
    expect(await code(fs.mkdir('/d'))).to.equal('EEXIST');
    expect(await code(fs.writeFile('/missing/f', 'x'))).to.equal('ENOENT');
  });
});
