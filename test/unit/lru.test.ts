import { expect } from 'chai';
import { SizedLru } from '../../src/lib/lru.js';

describe('SizedLru', () => {
  const lru = () => new SizedLru<string, string>(10, (_k, v) => v.length);

  it('drops the least recently used entries once the values outgrow the bound', () => {
    const c = lru();
    c.set('a', 'aa');
    c.set('b', 'bb');
    c.set('c', 'cc');
    expect(c.get('a')).to.equal('aa'); // a is now the most recent
    c.set('d', 'dd');
    c.set('e', 'ee'); // 10: still fits
    expect(c.count).to.equal(5);
    c.set('f', 'ff'); // 12: b goes, being the oldest untouched
    expect(c.get('b')).to.equal(undefined);
    expect(c.get('a')).to.equal('aa');
    expect(c.count).to.equal(5);
  });

  it('replaces a value and counts only its new size', () => {
    const c = lru();
    c.set('a', 'x');
    c.set('a', 'yy');
    c.set('b', 'bb');
    c.set('c', 'cc');
    c.set('d', 'dd');
    c.set('e', 'e'); // 2+2+2+2+1 = 9
    expect(c.count).to.equal(5);
    expect(c.get('a')).to.equal('yy');
  });

  it('does not keep a value bigger than a quarter of the bound', () => {
    const c = lru();
    c.set('a', 'aa');
    c.set('big', 'bbb');
    expect(c.get('big')).to.equal(undefined);
    expect(c.get('a')).to.equal('aa');
  });
});
