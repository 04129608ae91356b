import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/*
 * better-sqlite3 12 wraps its objects in the header-only node::ObjectWrap.
 * Compiled against the headers of Node 24.19.0 or later, a Statement that the
 * garbage collector frees outside a JavaScript context aborts the process
 * (nodejs/node#65446), at a random moment of a long run. Left-over statements
 * collected while I/O callbacks run make it happen within a second, in a
 * child process so that an abort fails this test and not the whole run.
 */
const STATEMENTS_LEFT_TO_GC = `
const db = new (require('better-sqlite3'))(':memory:');
let n = 0;
(function round() {
  for (let i = 0; i < 2000; i++) db.prepare('select ' + n++).get();
  if (n < 200000) setImmediate(round); else process.stdout.write('ok');
})();
`;

describe('better-sqlite3 native addon', function () {
  this.timeout(60_000);

  it('survives statements freed by the garbage collector between I/O callbacks', () => {
    const r = spawnSync(process.execPath, ['-e', STATEMENTS_LEFT_TO_GC], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      encoding: 'utf8',
    });
    const why =
      `Node ${process.version} ${r.signal ?? `exit ${r.status}`}: ${r.stderr.split('\n').find((l) => /Assertion|Error/.test(l)) ?? r.stderr.slice(0, 300)}` +
      ' — on Node 24, build better-sqlite3 against the Node 24.18.1 headers (see .ci/run)';
    expect(r.stdout, why).to.equal('ok');
    expect(r.status, why).to.equal(0);
  });
});
