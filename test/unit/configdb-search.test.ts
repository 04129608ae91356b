import { expect } from 'chai';
import { HttpError } from '../../src/lib/http-errors.js';
import type { Json } from '../../src/lib/merge-patch.js';
import {
  evaluateSearch,
  matchesQuery,
  parseSearchQuery,
  selectResults,
  valueAtPath,
} from '../../src/embedded/configdb/search.js';

function parseError(q: string): HttpError {
  try {
    parseSearchQuery(q);
  } catch (e) {
    expect(e).to.be.instanceOf(HttpError);
    return e as HttpError;
  }
  throw new Error(`query ${q} parsed`);
}

describe('ConfigDB search query parser', () => {
  it('parses PATH=JSON scalar pairs', () => {
    const q = parseSearchQuery('name=%22cluster%2FBuilding_1%22&spec.replicas=3&bare=false&x=null&neg=-1.5');
    expect(q.select).to.deep.equal([]);
    expect(q.where).to.deep.equal([
      { path: ['name'], value: 'cluster/Building_1' },
      { path: ['spec', 'replicas'], value: 3 },
      { path: ['bare'], value: false },
      { path: ['x'], value: null },
      { path: ['neg'], value: -1.5 },
    ]);
  });

  it('accepts a leading question mark and an empty query', () => {
    expect(parseSearchQuery('?a=1').where).to.deep.equal([{ path: ['a'], value: 1 }]);
    expect(parseSearchQuery('')).to.deep.equal({ where: [], select: [] });
  });

  it('treats the bare word undefined as "property absent"', () => {
    const q = parseSearchQuery('chart=undefined');
    expect(q.where).to.have.length(1);
    expect(q.where[0]!.path).to.deep.equal(['chart']);
    expect(q.where[0]!.value).to.equal(undefined);
  });

  it('parses @NAME=PATH selections', () => {
    const q = parseSearchQuery('@ns=namespace&@grp=sparkplug.group_id&name=%22a%22');
    expect(q.select).to.deep.equal([
      { name: 'ns', path: ['namespace'] },
      { name: 'grp', path: ['sparkplug', 'group_id'] },
    ]);
    expect(q.where).to.deep.equal([{ path: ['name'], value: 'a' }]);
  });

  it('accepts already-split pairs', () => {
    const q = parseSearchQuery(new URLSearchParams([['a.b', '"x"']]));
    expect(q.where).to.deep.equal([{ path: ['a', 'b'], value: 'x' }]);
  });

  for (const [label, query] of [
    ['an unquoted string value', 'name=cluster'],
    ['an empty value', 'name='],
    ['an object value', 'name=%7B%7D'],
    ['an array value', 'name=%5B1%5D'],
    ['a path with a dash', 'a-b=1'],
    ['a path starting with a digit', '1a=1'],
    ['a path with an empty step', 'a..b=1'],
    ['@uuid', '@uuid=name'],
    ['@NAME with a bad path', '@n=a.'],
    ['@ with no name', '@=name'],
    ['a repeated key', 'a=1&a=2'],
    ['truncated JSON', 'a=%22abc'],
  ] as const) {
    it(`refuses ${label} with 400`, () => {
      const e = parseError(query);
      expect(e.status).to.equal(400);
      expect(e.message).to.match(/bad search query/);
    });
  }
});

describe('ConfigDB search evaluation', () => {
  const entries: Array<[string, Json]> = [
    ['o1', { name: 'one', group: { id: 'g1' }, n: 1 }],
    ['o2', { name: 'two', group: { id: 'g2' } }],
    ['o3', { name: 'three', group: { id: 'g1' }, n: null }],
    ['o4', 'a string entry'],
    ['o5', [1, 2, 3]],
  ];

  it('walks dotted paths through objects only', () => {
    expect(valueAtPath({ a: { b: 2 } }, ['a', 'b'])).to.equal(2);
    expect(valueAtPath({ a: [{ b: 2 }] }, ['a', 'b'])).to.equal(undefined);
    expect(valueAtPath('x', ['length'])).to.equal(undefined);
    expect(valueAtPath({ a: null }, ['a'])).to.equal(null);
  });

  it('requires every condition to hold', () => {
    expect(evaluateSearch(parseSearchQuery('group.id=%22g1%22'), entries)).to.deep.equal(['o1', 'o3']);
    expect(evaluateSearch(parseSearchQuery('group.id=%22g1%22&n=1'), entries)).to.deep.equal(['o1']);
    expect(evaluateSearch(parseSearchQuery('n=null'), entries)).to.deep.equal(['o3']);
  });

  it('matches absent properties with undefined (null is present)', () => {
    expect(evaluateSearch(parseSearchQuery('n=undefined'), entries)).to.deep.equal(['o2', 'o4', 'o5']);
  });

  it('returns every entry for an empty query', () => {
    expect(evaluateSearch(parseSearchQuery(''), entries)).to.deep.equal(['o1', 'o2', 'o3', 'o4', 'o5']);
  });

  it('compares by JSON value, not by text', () => {
    const q = parseSearchQuery('n=1.0');
    expect(matchesQuery(q, { n: 1 })).to.equal(true);
    expect(matchesQuery(q, { n: '1' })).to.equal(false);
  });

  it('returns a map of selected properties when @ pairs are given', () => {
    const q = parseSearchQuery('group.id=%22g1%22&@name=name&@count=n&@missing=nope.deeper');
    expect(evaluateSearch(q, entries)).to.deep.equal({
      o1: { name: 'one', count: 1 },
      o3: { name: 'three', count: null },
    });
    expect(selectResults(q, { other: 1 })).to.deep.equal({});
  });
});
