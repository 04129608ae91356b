import { expect } from 'chai';
import { HttpError } from '../../src/lib/http-errors.js';
import {
  evaluatePreconditions,
  parseEtagList,
  parsePreconditions,
  requirePreconditions,
} from '../../src/embedded/configdb/preconditions.js';

const A = '6f1c4c1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f';
const B = '7e2d5d2f-3b4c-4d6e-9fa0-1b2c3d4e5f60';

describe('ConfigDB ETag preconditions', () => {
  it('parses *, single and listed entity tags', () => {
    expect(parseEtagList('*')).to.equal('*');
    expect(parseEtagList(`"${A}"`)).to.deep.equal([{ weak: false, tag: A }]);
    expect(parseEtagList(` "${A}" , W/"${B}"`)).to.deep.equal([
      { weak: false, tag: A },
      { weak: true, tag: B },
    ]);
  });

  for (const bad of [A, `'${A}'`, `"${A}`, 'W/', '""x', ',']) {
    it(`refuses ${JSON.stringify(bad)} with 400`, () => {
      expect(() => parseEtagList(bad))
        .to.throw(HttpError)
        .with.property('status', 400);
    });
  }

  it('evaluates If-Match with strong comparison', () => {
    expect(evaluatePreconditions(parsePreconditions({ ifMatch: `"${A}"` }), A, false)).to.equal('pass');
    expect(evaluatePreconditions(parsePreconditions({ ifMatch: `W/"${A}"` }), A, false)).to.equal('failed');
    expect(evaluatePreconditions(parsePreconditions({ ifMatch: `"${B}"` }), A, false)).to.equal('failed');
    expect(evaluatePreconditions(parsePreconditions({ ifMatch: '*' }), undefined, false)).to.equal('failed');
    expect(evaluatePreconditions(parsePreconditions({ ifMatch: '*' }), A, false)).to.equal('pass');
  });

  it('evaluates If-None-Match: 304 for reads, 412 for writes', () => {
    const p = parsePreconditions({ ifNoneMatch: `W/"${A}", "${B}"` });
    expect(evaluatePreconditions(p, A, true)).to.equal('not-modified');
    expect(evaluatePreconditions(p, A, false)).to.equal('failed');
    expect(evaluatePreconditions(p, undefined, false)).to.equal('pass');
    const star = parsePreconditions({ ifNoneMatch: '*' });
    expect(evaluatePreconditions(star, undefined, false)).to.equal('pass');
    expect(evaluatePreconditions(star, B, false)).to.equal('failed');
  });

  it('passes without headers and throws 412 on failure', () => {
    expect(evaluatePreconditions(parsePreconditions({}), undefined, false)).to.equal('pass');
    expect(() => requirePreconditions(parsePreconditions({ ifMatch: `"${B}"` }), A))
      .to.throw(HttpError)
      .with.property('status', 412);
  });
});
