import { expect } from 'chai';
import { applyMergePatch, composeMergePatches, jsonEqual, type Json } from '../../src/lib/merge-patch.js';

/** Small seeded PRNG so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

function randomJson(r: () => number, depth: number, patch: boolean): Json {
  const x = r();
  if (depth > 0 && x < 0.5) {
    const o: { [k: string]: Json } = {};
    for (let i = Math.floor(r() * 4); i > 0; i--) o['abc'[Math.floor(r() * 3)]!] = randomJson(r, depth - 1, patch);
    return o;
  }
  if (patch && x < 0.65) return null;
  if (x < 0.8) return Math.floor(r() * 3);
  return x < 0.9 ? 'v' : [1];
}

describe('merge patch composition', () => {
  it('applying the composed patch equals applying both in turn, whenever it composes', () => {
    const r = prng(20261124);
    let composed = 0;
    let refused = 0;
    for (let i = 0; i < 5000; i++) {
      const target = randomJson(r, 3, false);
      const a = { ...(randomJson(r, 3, true) as object) } as Json;
      const b = { ...(randomJson(r, 3, true) as object) } as Json;
      const c = composeMergePatches(a, b);
      if (c === undefined) {
        refused++;
        continue;
      }
      composed++;
      const inTurn = applyMergePatch(applyMergePatch(target, a), b);
      expect(jsonEqual(applyMergePatch(target, c), inTurn), JSON.stringify({ target, a, b, c })).to.equal(true);
    }
    expect(composed).to.be.greaterThan(1000);
    expect(refused).to.be.greaterThan(10);
  });

  it('refuses to compose a patch into a key the first one deleted', () => {
    expect(composeMergePatches({ k: null }, { k: { q: 2 } })).to.equal(undefined);
    expect(composeMergePatches({ n: 1 }, { k: { q: 2 } })).to.deep.equal({ n: 1, k: { q: 2 } });
  });
});
