import { expect } from 'chai';
import { renderTemplate, templateKeys } from '../../src/repo/template.js';
import { isDnsLabel, k8sName, parseMultiDoc, toMultiDoc } from '../../src/repo/yaml.js';
import { readFixture } from '../fixtures/cluster-repo.js';

describe('template expansion', () => {
  it('keeps the type of a whole-string placeholder', () => {
    const out = renderTemplate(
      { a: '{{ helm }}', b: ' {{n}} ', c: ['{{list}}'] },
      { helm: { kind: 'HelmRelease' }, n: 3, list: [1, 2] },
    );
    expect(out).to.deep.equal({ a: { kind: 'HelmRelease' }, b: 3, c: [[1, 2]] });
  });

  it('replaces embedded placeholders as text, missing ones as empty', () => {
    expect(renderTemplate('x-{{a.b}}-{{missing}}-{{n}}', { a: { b: 'y' }, n: 0 })).to.equal('x-y--0');
  });

  it('uses defaults and templates object keys', () => {
    expect(renderTemplate({ '{{k}}.yaml': '{{v:dflt}}' }, { k: 'file' })).to.deep.equal({ 'file.yaml': 'dflt' });
  });

  it('inserts replacement text literally', () => {
    expect(renderTemplate('a {{v}} b', { v: '$& $1' })).to.equal('a $& $1 b');
  });

  it('calls function-valued context entries and stringifies dates', () => {
    expect(renderTemplate('{{f}} {{d}}', { f: () => 'called', d: new Date(0) })).to.equal(
      'called 1970-01-01T00:00:00.000Z',
    );
  });

  it('lists the keys a template uses', () => {
    expect([...templateKeys({ a: ['{{ url.self }}', 'x{{namespace}}'], '{{k}}': 1 })].sort()).to.deep.equal([
      'k',
      'namespace',
      'url.self',
    ]);
  });
});

describe('multi-document YAML', () => {
  it('serialises exactly as the cluster repo files', () => {
    const text = readFixture('edo/cluster/self-link.yaml');
    const docs = parseMultiDoc(text);
    expect(docs).to.have.length(2);
    expect(toMultiDoc(docs)).to.equal(text);
  });

  it('rejects malformed YAML with a message', () => {
    expect(() => parseMultiDoc('a: [1, 2\n')).to.throw(/invalid YAML/);
  });

  it('makes Kubernetes names and checks labels', () => {
    expect(k8sName('edge-cluster', '0B9E2C1E-6A0F')).to.equal('edge-cluster-0b9e2c1e-6a0f');
    expect(k8sName('-A b_c-')).to.equal('a-b-c');
    expect(isDnsLabel('fplus-edge')).to.equal(true);
    for (const bad of ['', 'Upper', '-x', 'x-', 'a.b', 'a/b', 'x'.repeat(64)])
      expect(isDnsLabel(bad), bad).to.equal(false);
  });
});
