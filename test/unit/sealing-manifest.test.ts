import { expect } from 'chai';
import { parseMultiDoc, toMultiDoc } from '../../src/repo/yaml.js';
import { CERT_ANNOTATION, KEY_CERTS_ANNOTATION } from '../../src/sealing/cert-record.js';
import {
  CLUSTER_WIDE_ANNOTATION,
  describeSealedSecret,
  NAMESPACE_WIDE_ANNOTATION,
  removeSealedKey,
  SealingConflict,
  sealedSecretPath,
  upsertSealedKey,
  type SealedKeyWrite,
} from '../../src/sealing/manifest.js';
import { InvalidSecretAddress, isK8sName, isNamespace, isSecretKey, isSecretName } from '../../src/sealing/names.js';

const FP1 = 'a'.repeat(64);
const FP2 = 'b'.repeat(64);
const NS = 'fplus-edge';
const NAME = 'edge-agent-sensitive-information-6d0c3a52-8f8e-4c8e-9a55-0e6d1f3b2a10';

type Doc = {
  metadata: { namespace: string; name: string; annotations?: Record<string, string> };
  spec: { encryptedData: Record<string, string> };
};

function write(over: Partial<SealedKeyWrite> = {}): SealedKeyWrite {
  return {
    namespace: NS,
    name: NAME,
    key: 'k1',
    ciphertext: 'AgBciphertext1==',
    scope: 'strict',
    certFingerprint: FP1,
    ...over,
  };
}

function first(text: string | undefined): Doc {
  return parseMultiDoc(text ?? '')[0] as Doc;
}

describe('sealing: SealedSecret manifests', () => {
  it('edits every text afresh: an edit never shows in another edit of the same text, however often a text comes back', () => {
    const base = upsertSealedKey(undefined, write());
    for (let round = 0; round < 3; round++) {
      const withK2 = upsertSealedKey(base, write({ key: 'k2', ciphertext: `two${round}` }));
      const withK3 = upsertSealedKey(base, write({ key: 'k3', ciphertext: `three${round}`, certFingerprint: FP2 }));
      expect(Object.keys(first(withK2).spec.encryptedData)).to.deep.equal(['k1', 'k2']);
      expect(Object.keys(first(withK3).spec.encryptedData)).to.deep.equal(['k1', 'k3']);
      expect(first(withK3).metadata.annotations).to.not.have.property(CERT_ANNOTATION);
      expect(removeSealedKey(withK2, 'k1').text).to.equal(
        toMultiDoc([
          {
            ...first(withK2),
            metadata: { ...first(withK2).metadata, annotations: { [CERT_ANNOTATION]: FP1 } },
            spec: { ...first(withK2).spec, encryptedData: { k2: `two${round}` } },
          },
        ]),
      );
      // The text this module wrote, edited again, is the same as that text parsed and edited.
      const again = upsertSealedKey(withK2, write({ key: 'k4' }));
      expect(again).to.equal(upsertSealedKey(`${withK2}`.split('').join(''), write({ key: 'k4' })));
      expect(first(base).spec.encryptedData).to.deep.equal({ k1: 'AgBciphertext1==' });
    }
  });

  it('builds the file path and refuses traversal', () => {
    expect(sealedSecretPath(NS, NAME)).to.equal(`edo/secrets/${NS}/${NAME}.yaml`);
    expect(() => sealedSecretPath('..', 'x')).to.throw(InvalidSecretAddress);
    expect(() => sealedSecretPath('ns', '../x')).to.throw(InvalidSecretAddress);
  });

  /**
   * Facts from sealed-secrets (86671a8), in our words:
   * - pkg/apis/sealedsecrets/v1alpha1/sealedsecret_expansion.go,
   *   NewSealedSecret (l. 209-263): the SealedSecret's own metadata gets the
   *   Secret's name and namespace, then UpdateScopeAnnotations (l. 173-187)
   *   adds `namespace-wide: "true"` or `cluster-wide: "true"`; the template's
   *   metadata is a deep copy of the Secret's metadata, and kubeseal's Seal
   *   (pkg/kubeseal/kubeseal.go l. 250-252) put the same scope annotation on
   *   the Secret first, so it is in both blocks. The template gets the
   *   Secret's type; its `data` is `omitempty` (types.go l. 64), never null.
   * - pkg/controller/controller.go, Rotate (l. 573-576, `kubeseal
   *   --re-encrypt`): warns and overwrites the template's metadata unless it
   *   deep-equals the SealedSecret's metadata.
   * - pkg/kubeseal/kubeseal.go, SealMergingInto (l. 463-465): writes the
   *   update's template annotations into the file's template annotations
   *   map, which must exist when there are any (a nil map in Go panics).
   */
  const kubesealShape = (doc: Record<string, any>, scopeAnnotation: string | undefined) => {
    const t = doc.spec.template;
    expect(Object.hasOwn(t, 'data'), 'template.data').to.equal(false);
    expect(t.type).to.equal('Opaque');
    expect(t.metadata, 'template metadata deep-equals metadata (Rotate)').to.deep.equal(doc.metadata);
    expect(t.metadata.name).to.equal(doc.metadata.name);
    expect(t.metadata.namespace).to.equal(doc.metadata.namespace);
    if (scopeAnnotation) {
      expect(doc.metadata.annotations[scopeAnnotation]).to.equal('true');
      expect(
        t.metadata.annotations[scopeAnnotation],
        'scope annotation in the template (controller, merge-into)',
      ).to.equal('true');
    }
    for (const other of [NAMESPACE_WIDE_ANNOTATION, CLUSTER_WIDE_ANNOTATION].filter((a) => a !== scopeAnnotation)) {
      expect(t.metadata.annotations?.[other]).to.equal(undefined);
    }
  };

  it("starts a new file in kubeseal's shape, in every scope, without `data: null`", () => {
    for (const [scope, annotation] of [
      ['strict', undefined],
      ['namespace-wide', NAMESPACE_WIDE_ANNOTATION],
      ['cluster-wide', CLUSTER_WIDE_ANNOTATION],
    ] as const) {
      const text = upsertSealedKey(undefined, write({ scope }));
      expect(text.startsWith('---\n')).to.equal(true);
      expect(text).not.to.match(/\bdata:\s*null/);
      const docs = parseMultiDoc(text) as Array<Record<string, any>>;
      expect(docs).to.have.length(1);
      expect(docs[0].apiVersion).to.equal('bitnami.com/v1alpha1');
      expect(docs[0].kind).to.equal('SealedSecret');
      expect(docs[0].metadata).to.deep.equal({
        namespace: NS,
        name: NAME,
        annotations: { ...(annotation ? { [annotation]: 'true' } : {}), [CERT_ANNOTATION]: FP1 },
      });
      kubesealShape(docs[0], annotation);
    }
    expect(upsertSealedKey('', write())).to.equal(upsertSealedKey(undefined, write()));
  });

  it('converts a file written the old way on its next edit, keeping what else the template holds', () => {
    // The original Cluster Manager's shape: `data: null`, no annotations in the template.
    const old = [
      '---',
      'apiVersion: bitnami.com/v1alpha1',
      'kind: SealedSecret',
      'metadata:',
      `  namespace: ${NS}`,
      `  name: ${NAME}`,
      '  annotations:',
      `    ${NAMESPACE_WIDE_ANNOTATION}: "true"`,
      'spec:',
      '  encryptedData:',
      '    old: AgBold==',
      '    gone: AgBgone==',
      '  template:',
      '    data: null',
      '    metadata:',
      `      namespace: ${NS}`,
      `      name: ${NAME}`,
      '      labels:',
      '        app: kept',
      '      annotations:',
      '        note: kept',
      '    type: Opaque',
      '',
    ].join('\n');
    for (const edit of [
      (t: string) => upsertSealedKey(t, write({ key: 'new', scope: 'namespace-wide' })),
      (t: string) => removeSealedKey(t, 'gone').text!,
    ]) {
      const text = edit(old);
      expect(text).not.to.match(/\bdata:\s*null/);
      const doc = (parseMultiDoc(text) as Array<Record<string, any>>)[0]!;
      const t = doc.spec.template;
      expect(Object.hasOwn(t, 'data')).to.equal(false);
      expect(t.metadata.labels).to.deep.equal({ app: 'kept' });
      expect(t.metadata.annotations.note).to.equal('kept');
      expect(t.metadata.annotations[NAMESPACE_WIDE_ANNOTATION]).to.equal('true');
      for (const k of [NAMESPACE_WIDE_ANNOTATION, CERT_ANNOTATION, KEY_CERTS_ANNOTATION])
        expect(t.metadata.annotations[k], k).to.equal(doc.metadata.annotations[k]);
    }
    // A file with nothing of its own in the template ends up with both blocks equal.
    const plain = old.replace('      labels:\n        app: kept\n      annotations:\n        note: kept\n', '');
    kubesealShape(
      (
        parseMultiDoc(upsertSealedKey(plain, write({ key: 'new', scope: 'namespace-wide' }))) as Array<
          Record<string, any>
        >
      )[0]!,
      NAMESPACE_WIDE_ANNOTATION,
    );
  });

  it('keeps both metadata blocks equal through scope changes, rotations and removals', () => {
    let text = upsertSealedKey(undefined, write({ scope: 'cluster-wide' }));
    kubesealShape(parseMultiDoc(text)[0] as Record<string, unknown>, CLUSTER_WIDE_ANNOTATION);
    text = upsertSealedKey(text, write({ scope: 'strict' })); // the only key may change scope
    kubesealShape(parseMultiDoc(text)[0] as Record<string, unknown>, undefined);
    text = upsertSealedKey(text, write({ key: 'k2', certFingerprint: FP2 }));
    const doc = parseMultiDoc(text)[0] as Doc & { spec: { template: { metadata: Record<string, unknown> } } };
    expect(doc.metadata.annotations?.[KEY_CERTS_ANNOTATION]).to.be.a('string');
    kubesealShape(doc as unknown as Record<string, unknown>, undefined);
    text = removeSealedKey(text, 'k2').text!;
    const after = parseMultiDoc(text)[0] as Doc;
    expect(after.metadata.annotations).to.deep.equal({ [CERT_ANNOTATION]: FP1 });
    kubesealShape(after as unknown as Record<string, unknown>, undefined);
  });

  it('adds and replaces keys in the first document and keeps the other documents', () => {
    const other = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { a: '1' } };
    let text = toMultiDoc([parseMultiDoc(upsertSealedKey(undefined, write()))[0], other]);
    text = upsertSealedKey(text, write({ key: 'k2', ciphertext: 'two' }));
    text = upsertSealedKey(text, write({ key: 'k1', ciphertext: 'one-new' }));
    const docs = parseMultiDoc(text);
    expect(docs).to.have.length(2);
    expect(docs[1]).to.deep.equal(other);
    expect((docs[0] as Doc).spec.encryptedData).to.deep.equal({ k1: 'one-new', k2: 'two' });
    expect(text).to.include('\n...\n---\n');
  });

  it('keeps unrelated metadata and keys that need YAML quoting', () => {
    const base = first(upsertSealedKey(undefined, write()));
    (base.metadata as Record<string, unknown>).labels = { app: 'x' };
    base.metadata.annotations!['example.com/note'] = 'keep me';
    let text = toMultiDoc([base]);
    for (const key of ['true', '1', '__proto__', '.dot', 'a-b_c.d'])
      text = upsertSealedKey(text, write({ key, ciphertext: `c-${key}` }));
    const doc = first(text);
    expect(Object.keys(doc.spec.encryptedData).sort()).to.deep.equal([
      '.dot',
      '1',
      '__proto__',
      'a-b_c.d',
      'k1',
      'true',
    ]);
    expect(Object.getOwnPropertyDescriptor(doc.spec.encryptedData, '__proto__')?.value).to.equal('c-__proto__');
    expect((doc.metadata as Record<string, unknown>).labels).to.deep.equal({ app: 'x' });
    expect(doc.metadata.annotations!['example.com/note']).to.equal('keep me');
  });

  it('sets the scope annotations the controller reads', () => {
    const ann = (scope: SealedKeyWrite['scope']) =>
      first(upsertSealedKey(undefined, write({ scope }))).metadata.annotations;
    expect(ann('strict')).to.deep.equal({ [CERT_ANNOTATION]: FP1 });
    expect(ann('namespace-wide')).to.deep.equal({ [NAMESPACE_WIDE_ANNOTATION]: 'true', [CERT_ANNOTATION]: FP1 });
    expect(ann('cluster-wide')).to.deep.equal({ [CLUSTER_WIDE_ANNOTATION]: 'true', [CERT_ANNOTATION]: FP1 });
    expect(upsertSealedKey(undefined, write({ scope: 'cluster-wide' }))).to.include(
      `${CLUSTER_WIDE_ANNOTATION}: "true"`,
    );
  });

  it('refuses a scope that differs from the other keys, but lets the only key change scope', () => {
    const text = upsertSealedKey(undefined, write({ scope: 'namespace-wide' }));
    expect(() => upsertSealedKey(text, write({ key: 'k2', scope: 'strict' })))
      .to.throw(SealingConflict, /namespace-wide/)
      .with.property('code', 'scope-mismatch');
    expect(() => upsertSealedKey(text, write({ key: 'k2', scope: 'cluster-wide' }))).to.throw(SealingConflict);
    expect(
      describeSealedSecret(upsertSealedKey(text, write({ key: 'k2', scope: 'namespace-wide' })))!.keys,
    ).to.deep.equal(['k1', 'k2']);

    const strict = upsertSealedKey(text, write({ scope: 'strict' }));
    expect(first(strict).metadata.annotations).to.deep.equal({ [CERT_ANNOTATION]: FP1 });
    expect(describeSealedSecret(strict)!.scope).to.equal('strict');
    const legacy = toMultiDoc([{ ...first(strict), metadata: { namespace: NS, name: NAME } }]);
    expect(() => upsertSealedKey(legacy, write({ key: 'k2', scope: 'cluster-wide' }))).to.throw(
      SealingConflict,
      /strict/,
    );
  });

  it('refuses a file whose SealedSecret names another secret, or is no SealedSecret', () => {
    const text = upsertSealedKey(undefined, write());
    expect(() => upsertSealedKey(text, write({ name: 'other' })))
      .to.throw(SealingConflict)
      .with.property('code', 'identity-mismatch');
    const cm = toMultiDoc([{ kind: 'ConfigMap', metadata: { name: 'x' } }]);
    expect(() => upsertSealedKey(cm, write()))
      .to.throw(SealingConflict)
      .with.property('code', 'not-sealed-secret');
    expect(() => upsertSealedKey('a: [', write()))
      .to.throw(SealingConflict)
      .with.property('code', 'invalid-manifest');
  });

  it('records the certificate per key once keys were sealed for different certificates', () => {
    let text = upsertSealedKey(undefined, write());
    text = upsertSealedKey(text, write({ key: 'k2' }));
    expect(first(text).metadata.annotations).to.deep.equal({ [CERT_ANNOTATION]: FP1 });

    text = upsertSealedKey(text, write({ key: 'k2', certFingerprint: FP2 }));
    const ann = first(text).metadata.annotations!;
    expect(ann).not.to.have.property(CERT_ANNOTATION);
    expect(JSON.parse(ann[KEY_CERTS_ANNOTATION])).to.deep.equal({ k1: FP1, k2: FP2 });
    expect(describeSealedSecret(text)!.certFingerprints).to.deep.equal({ k1: FP1, k2: FP2 });

    text = upsertSealedKey(text, write({ key: 'k1', certFingerprint: FP2 }));
    expect(first(text).metadata.annotations).to.deep.equal({ [CERT_ANNOTATION]: FP2 });
  });

  it('treats keys without a record (written by the original) as unknown', () => {
    const legacy = toMultiDoc([
      { ...first(upsertSealedKey(undefined, write({ key: 'old' }))), metadata: { namespace: NS, name: NAME } },
    ]);
    expect(describeSealedSecret(legacy)!.certFingerprints).to.deep.equal({});
    const text = upsertSealedKey(legacy, write({ key: 'new' }));
    expect(describeSealedSecret(text)!.certFingerprints).to.deep.equal({ new: FP1 });
    expect(JSON.parse(first(text).metadata.annotations![KEY_CERTS_ANNOTATION])).to.deep.equal({ new: FP1 });
    const collapsed = removeSealedKey(text, 'old').text!;
    expect(first(collapsed).metadata.annotations).to.deep.equal({ [CERT_ANNOTATION]: FP1 });
  });

  it('removes keys, and the file with the last one', () => {
    let text = upsertSealedKey(undefined, write());
    text = upsertSealedKey(text, write({ key: 'k2', certFingerprint: FP2 }));
    const one = removeSealedKey(text, 'k2');
    expect(one.changed).to.equal(true);
    expect(first(one.text).spec.encryptedData).to.deep.equal({ k1: 'AgBciphertext1==' });
    expect(first(one.text).metadata.annotations).to.deep.equal({ [CERT_ANNOTATION]: FP1 });
    expect(removeSealedKey(one.text, 'k1')).to.deep.equal({ text: undefined, changed: true });
  });

  it('leaves the file alone when the key or file does not exist', () => {
    const text = upsertSealedKey(undefined, write());
    expect(removeSealedKey(text, 'missing')).to.deep.equal({ text, changed: false });
    expect(removeSealedKey(undefined, 'k1')).to.deep.equal({ text: undefined, changed: false });
    expect(removeSealedKey('', 'k1')).to.deep.equal({ text: '', changed: false });
    expect(removeSealedKey(text, 'constructor')).to.deep.equal({ text, changed: false });
    expect(() => removeSealedKey(text, '../x')).to.throw(InvalidSecretAddress);
  });

  it('keeps other documents when the last key goes', () => {
    const other = { kind: 'ConfigMap', metadata: { name: 'cm' } };
    const text = toMultiDoc([first(upsertSealedKey(undefined, write())), other]);
    const out = removeSealedKey(text, 'k1');
    expect(out.changed).to.equal(true);
    const docs = parseMultiDoc(out.text!);
    expect((docs[0] as Doc).spec.encryptedData).to.deep.equal({});
    expect(docs[1]).to.deep.equal(other);
  });

  it('describes a manifest without any ciphertext', () => {
    let text = upsertSealedKey(undefined, write({ key: 'zeta', ciphertext: 'SECRETCIPHER1', scope: 'namespace-wide' }));
    text = upsertSealedKey(text, write({ key: 'alpha', ciphertext: 'SECRETCIPHER2', scope: 'namespace-wide' }));
    const summary = describeSealedSecret(text)!;
    expect(summary).to.deep.equal({
      namespace: NS,
      name: NAME,
      scope: 'namespace-wide',
      keys: ['alpha', 'zeta'],
      certFingerprints: { alpha: FP1, zeta: FP1 },
    });
    expect(JSON.stringify(summary)).not.to.include('SECRETCIPHER');
    expect(describeSealedSecret('')).to.equal(undefined);
  });

  it('validates its inputs before writing', () => {
    expect(() => upsertSealedKey(undefined, write({ key: 'a/b' })))
      .to.throw(InvalidSecretAddress)
      .with.property('field', 'key');
    expect(() => upsertSealedKey(undefined, write({ namespace: 'A' })))
      .to.throw(InvalidSecretAddress)
      .with.property('field', 'namespace');
    expect(() => upsertSealedKey(undefined, write({ certFingerprint: 'AA:BB' }))).to.throw(TypeError);
    expect(() => upsertSealedKey(undefined, write({ ciphertext: '' }))).to.throw(TypeError);
    expect(() => upsertSealedKey(undefined, write({ scope: 'global' as never }))).to.throw(TypeError);
  });

  describe('name validation', () => {
    const bad = ['', '..', '.', 'a/b', '%2F', 'a%2Fb', 'Upper', '-a', 'a-', 'a_b', 'a b', 'é', 'a..b', '.a', 'a\n'];
    it('namespaces are DNS-1123 labels', () => {
      for (const s of ['a', 'fplus-edge', '0', 'a'.repeat(63)]) expect(isNamespace(s), s).to.equal(true);
      for (const s of [...bad, 'a.b', 'a'.repeat(64)]) expect(isNamespace(s), s).to.equal(false);
      expect(isNamespace(undefined)).to.equal(false);
    });
    it('secret names are DNS-1123 subdomains', () => {
      for (const s of [
        'a',
        'a.b',
        'edge-agent.v1',
        'a'.repeat(63),
        `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`,
      ]) {
        expect(isSecretName(s), s).to.equal(true);
        expect(isK8sName(s), s).to.equal(true);
      }
      for (const s of [...bad, 'a'.repeat(254), 'a.-b']) expect(isSecretName(s), s).to.equal(false);
    });
    it('secret keys follow the ConfigMap key rule', () => {
      for (const s of ['a', 'A_b-c.d', '.hidden', '__FPSI__7f1f0c2e-3a4b-4c5d-8e9f-a0b1c2d3e4f5', 'x'.repeat(253)])
        expect(isSecretKey(s), s).to.equal(true);
      for (const s of [
        '',
        '.',
        '..',
        '..a',
        '..data',
        'a/b',
        '../a',
        '%2F',
        'a%2Fb',
        'a b',
        'é',
        'a:b',
        'x'.repeat(254),
      ])
        expect(isSecretKey(s), s).to.equal(false);
      expect(isSecretKey(42)).to.equal(false);
    });
  });
});
