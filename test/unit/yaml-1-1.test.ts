import { expect } from 'chai';
import jsyaml from 'js-yaml';
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { renderClusterRepo } from '../../src/repo/manifests.js';
import { toMultiDoc } from '../../src/repo/yaml.js';
import { isK8sName, isNamespace, isSecretKey } from '../../src/sealing/names.js';
import { upsertSealedKey } from '../../src/sealing/manifest.js';
import { prng } from '../helpers/random.js';
import { embeddedTemplates } from '../helpers/seed.js';

/*
 * Everything the service writes must read back the same in YAML 1.2 and in
 * YAML 1.1, which kubectl, kustomize, kubeseal and PyYAML read. The judges
 * are three YAML 1.1 readers we did not write: PyYAML (safe_load_all),
 * js-yaml 3 and the `yaml` library in its 1.1 mode, and the library's 1.2
 * mode for the other side. Names, keys and values come from a corpus of
 * scalars that YAML 1.1 resolves to something other than a string, and
 * from random joins of them.
 */

/** Reads each text as a list of documents; a text that cannot be read gives an Error. */
type Reader = (texts: string[]) => Array<unknown[] | Error>;

const each =
  (read: (text: string) => unknown[]): Reader =>
  (texts) =>
    texts.map((t) => {
      try {
        return read(t);
      } catch (err) {
        return err as Error;
      }
    });

function yamlLib(version: '1.1' | '1.2'): Reader {
  return each((text) =>
    parseAllDocuments(text, { version }).map((d) => {
      if (d.errors.length > 0) throw new Error(d.errors.map((e) => e.message).join('; '));
      return d.toJS();
    }),
  );
}

/*
 * PyYAML answers in JSON, which would hide a date, a number key or a
 * boolean key (JSON keys are strings): anything but a string key or a JSON
 * value comes back marked with its Python type, so it cannot pass for one.
 */
const PYYAML = `
import json, sys, yaml
def plain(o):
    if isinstance(o, dict):
        return {(k if isinstance(k, str) else '!!%s %r' % (type(k).__name__, k)): plain(v) for k, v in o.items()}
    if isinstance(o, list):
        return [plain(v) for v in o]
    if o is None or isinstance(o, (str, bool, int, float)):
        return o
    return {'!!' + type(o).__name__: repr(o)}
out = []
for text in json.load(sys.stdin):
    try:
        out.append(plain(list(yaml.safe_load_all(text))))
    except Exception as e:
        out.append({'error': str(e)})
json.dump(out, sys.stdout)
`;

const pyyaml: Reader = (texts) => {
  const out = JSON.parse(
    execFileSync('python3', ['-c', PYYAML], { input: JSON.stringify(texts), maxBuffer: 256 * 1024 * 1024 }).toString(),
  ) as unknown[];
  return out.map((r) => (Array.isArray(r) ? r : new Error((r as { error: string }).error)));
};

const READERS: Record<string, Reader> = {
  'yaml 1.2': yamlLib('1.2'),
  'yaml 1.1': yamlLib('1.1'),
  'js-yaml 3 (YAML 1.1)': each((text) => jsyaml.safeLoadAll(text)),
  'PyYAML (YAML 1.1)': pyyaml,
};

/** Reads one text as YAML 1.2, as the service means it. */
function meant(text: string): unknown[] {
  const [docs] = READERS['yaml 1.2']([text]);
  if (docs instanceof Error) throw docs;
  return docs;
}

const BOOL_WORDS = ['y', 'n', 'yes', 'no', 'on', 'off', 'true', 'false'];
const caseForms = (w: string) => [...new Set([w, w.toUpperCase(), w[0].toUpperCase() + w.slice(1)])];

const TRICKY = [
  ...BOOL_WORDS.flatMap(caseForms),
  '1_000',
  '0b101',
  '0B101',
  '0o17',
  '0O17',
  '-0o17',
  '017',
  '09',
  '0x1F',
  '0X1F',
  '0x_1F',
  '+0x1f',
  '1e3',
  '1E3',
  '+1',
  '-1',
  '12e03',
  '1e1_0',
  '1.5',
  '.5',
  '1.',
  '1_0.5',
  '1:20',
  '190:20:30',
  '-1:20',
  '1:20.5',
  '2024-01-01',
  '2024-1-1',
  '2001-12-14t21:59:43.10-05:00',
  '2001-12-14 21:59:43.10 -5',
  '2001-12-14T21:59:43Z',
  '2001-12-14 21:59:43. +39',
  '.inf',
  '-.Inf',
  '+.INF',
  '.NaN',
  '.nan',
  '~',
  'null',
  'Null',
  'NULL',
  '',
  '=',
  '<<',
  ' lead',
  'trail ',
  'a: b',
  'a #b',
  '#c',
  '- d',
  '-',
  '?',
  ':x',
  'x:',
  'a\tb',
  '\tt',
  'line1\nline2',
  'ends\n',
  '\nstarts',
  'a\u2028b',
  'a\u2029b',
  'a\u0085b',
  'a\u0080b',
  '\uFEFFbom',
  'a\uFFFEb',
  '"dq"',
  "'sq'",
  '%p',
  '@a',
  '`b',
  '!t',
  '&a',
  '*r',
  '{m}',
  '[s]',
  '---',
  '...',
  'x\n---\ny',
  'ü',
  '😀',
  '1.2.3',
  'v1',
  'plain',
  'with space',
  'a=b',
  '0',
  '00',
  '0.0.0.0',
  'Infinity',
  'NaN',
];
const NUMBERS = [0, 1, -1, 42, 0.5, -2.5, 3.14, 1e21, -1e21, 1e-7, 1.5e-7, 1e300, 5e-324, 123456789012, 2 ** 53];

const SEED = Number(process.env.YAML_TEST_SEED) || Math.floor(Math.random() * 2 ** 32);
const random = prng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)];
const SEPARATORS = ['', '-', '.', '_', ':', ' ', '\n'];

/** Corpus words, and random joins of them, that `fits` accepts. */
function words(fits: (s: string) => boolean, extra: number): string[] {
  const out = new Set(TRICKY.filter(fits));
  for (let tries = 0; out.size < TRICKY.filter(fits).length + extra && tries < 100 * extra; tries++) {
    const w = pick(TRICKY) + pick(SEPARATORS) + pick(TRICKY);
    if (fits(w)) out.add(w);
  }
  return [...out];
}

const lowerTricky = [...new Set(TRICKY.map((w) => w.toLowerCase()))];
const NAMESPACES = [...new Set([...words(isNamespace, 40), ...lowerTricky.filter(isNamespace)])];
const NAMES = [...new Set([...words(isK8sName, 40), ...lowerTricky.filter(isK8sName)])];
const KEYS = words(isSecretKey, 60);
const ANY = words(() => true, 200);

function randomValue(depth: number): unknown {
  const r = random();
  if (depth > 0 && r < 0.15)
    return Object.fromEntries(
      Array.from({ length: 1 + Math.floor(random() * 4) }, () => [pick(ANY), randomValue(depth - 1)]),
    );
  if (depth > 0 && r < 0.25) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(depth - 1));
  if (r < 0.35) return pick(NUMBERS);
  if (r < 0.4) return random() < 0.5;
  if (r < 0.42) return null;
  return pick(ANY);
}

/** Every reader gives back exactly the documents of each case. */
function expectReadBack(cases: Array<{ text: string; docs: unknown[]; what: string }>): void {
  for (const [name, read] of Object.entries(READERS)) {
    const got = read(cases.map((c) => c.text));
    cases.forEach((c, i) => {
      const g = got[i];
      if (g instanceof Error)
        throw new Error(`${c.what}: ${name} cannot read it (seed ${SEED}): ${g.message}\n${c.text}`);
      expect(g, `${c.what}: read by ${name} (seed ${SEED})\n${c.text}`).to.deep.equal(c.docs);
    });
  }
}

describe('YAML output reads the same under YAML 1.1 and 1.2', () => {
  it('covers every YAML 1.1 boolean word in all its cases, and names, keys and values of each kind', () => {
    for (const w of [
      'y',
      'Y',
      'yes',
      'Yes',
      'YES',
      'n',
      'N',
      'no',
      'No',
      'NO',
      'on',
      'On',
      'ON',
      'off',
      'Off',
      'OFF',
      'true',
      'True',
      'TRUE',
      'false',
      'False',
      'FALSE',
    ]) {
      expect(TRICKY).to.include(w);
    }
    for (const w of ['yes', 'on', 'no', '0b101', '2024-01-01']) expect(NAMESPACES).to.include(w);
    for (const w of ['y', 'on', 'Yes', '2024-01-01', '0b101', '1_000', '.inf']) expect(KEYS).to.include(w);
  });

  it('writes every corpus string as a key and as a value, in block maps, lists and nested maps', () => {
    const doc = {
      flat: Object.fromEntries(TRICKY.map((w) => [w, w])),
      list: TRICKY,
      nested: Object.fromEntries(TRICKY.map((w) => [w, { [w]: [w, { [w]: w }] }])),
      numbers: NUMBERS,
      other: [true, false, null, {}, []],
    };
    expectReadBack([
      { text: toMultiDoc([doc, { second: doc.list }]), docs: [doc, { second: doc.list }], what: 'corpus document' },
    ]);
  });

  it('writes SealedSecrets whose namespace, name, keys, values and annotations come from the corpus', () => {
    const cases = [];
    for (let i = 0; i < 60; i++) {
      const encryptedData = Object.fromEntries(
        Array.from({ length: 1 + Math.floor(random() * 8) }, () => [pick(KEYS), pick(ANY)]),
      );
      const annotations = Object.fromEntries(
        Array.from({ length: Math.floor(random() * 4) }, () => [pick(ANY), pick(ANY)]),
      );
      const doc = {
        apiVersion: 'bitnami.com/v1alpha1',
        kind: 'SealedSecret',
        metadata: { namespace: pick(NAMESPACES), name: pick(NAMES), annotations },
        spec: {
          encryptedData,
          template: {
            metadata: { namespace: pick(NAMESPACES), name: pick(NAMES), labels: { [pick(KEYS)]: pick(ANY) } },
            type: 'Opaque',
          },
        },
      };
      cases.push({ text: toMultiDoc([doc]), docs: [doc], what: `SealedSecret ${i}` });
    }
    expectReadBack(cases);
  });

  it('keeps every key apart when the service seals keys like y, on, Yes and 2024-01-01 into one manifest', () => {
    const cases = [];
    for (let i = 0; i < 20; i++) {
      const namespace = pick(NAMESPACES);
      const name = pick(NAMES);
      const want: Record<string, string> = {};
      const scope = pick(['strict', 'namespace-wide', 'cluster-wide'] as const);
      let text: string | undefined;
      for (const key of [...KEYS].sort(() => random() - 0.5).slice(0, 12)) {
        const ciphertext = `Ag${pick(KEYS)}==`;
        want[key] = ciphertext;
        text = upsertSealedKey(text, {
          namespace,
          name,
          key,
          ciphertext,
          scope,
          certFingerprint: pick(['c', 'd']).repeat(64),
        });
      }
      const docs = meant(text!);
      cases.push({ text: text!, docs, what: `sealed manifest ${namespace}/${name}` });
      const m = docs[0] as {
        metadata: { namespace: string; name: string };
        spec: { encryptedData: Record<string, string> };
      };
      expect([m.metadata.namespace, m.metadata.name]).to.deep.equal([namespace, name]);
      expect(m.spec.encryptedData).to.deep.equal(want);
    }
    expectReadBack(cases);
  });

  it('writes cluster manifests from templates with a tricky namespace and Helm values from the corpus', () => {
    const templates = embeddedTemplates();
    const cases = [];
    for (let i = 0; i < 30; i++) {
      const values = Object.fromEntries(
        Array.from({ length: 1 + Math.floor(random() * 6) }, () => [pick(ANY), randomValue(3)]),
      );
      const namespace = pick(NAMESPACES);
      const out = renderClusterRepo({
        uuid: '0b9e2c1e-6a0f-4a8e-9d3c-2f4b5a6c7d8e',
        spec: { name: 'Line_7', namespace, values: values as never },
        templates,
        gitBase: 'http://127.0.0.1:1/',
        helmRepo: 'h',
      });
      for (const [file, text] of out.files) {
        const docs = meant(text);
        cases.push({ text, docs, what: `${file} (namespace ${JSON.stringify(namespace)})` });
        for (const d of docs)
          expect((d as { metadata: { namespace: unknown } }).metadata.namespace, file).to.equal(namespace);
      }
      const release = meant(out.files.get('edo/cluster/edge-cluster.yaml')!)[0] as {
        spec: { values: Record<string, unknown> };
      };
      // Objects are merged into the chart's values (nulls in them drop keys); everything else is taken as it is.
      for (const [k, v] of Object.entries(values)) {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) expect(release.spec.values[k], k).to.deep.equal(v);
      }
    }
    expectReadBack(cases);
  });
});
