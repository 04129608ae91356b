import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { clusterChartTemplate, fluxTemplate, helmReleaseTemplate } from '../../src/embedded/seed/templates.js';
import { renderClusterRepo, SpecError, validateSpec, type ManifestTemplates } from '../../src/repo/manifests.js';

/*
 * Seeded fuzzing of cluster configuration entries through validateSpec and
 * renderClusterRepo with the embedded default templates. Every entry either
 * is refused with a SpecError whose reason an independent oracle predicts,
 * or renders to files that
 *  - all lie under edo/cluster/ (no `..`, no absolute path, no backslash),
 *  - parse as YAML without errors after a UTF-8 round trip (they are stored
 *    in Git as UTF-8),
 *  - carry the given namespace in every manifest that has one, and
 *  - hold a HelmRelease whose values deep-equal the given values merged over
 *    the chart's defaults (json-merge-patch `merge`: nested objects merge,
 *    anything else from the entry replaces, nulls are kept so Helm drops the
 *    default).
 * Entries pass through JSON text first, as they do through the Config Store.
 *
 * RENDER_FUZZ_SEED picks another seed; SOAK=1 runs 20000 entries.
 */

const SEED = Number(process.env.RENDER_FUZZ_SEED ?? 0x5eed1e55) >>> 0;
const COUNT = process.env.SOAK ? 20_000 : 600;
const GIT_BASE = 'http://127.0.0.1:1/';
const HELM_REPO = '11111111-2222-4333-8444-555555555504';

type Obj = Record<string, unknown>;

/** xorshift32; never zero. */
class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.s = x;
    return x;
  }
  /** Uniform in [0, n). */
  int(n: number): number {
    return Math.floor((this.next() / 0x1_0000_0000) * n);
  }
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(16)];
    return s;
  }
  uuid(): string {
    return `${this.hex(8)}-${this.hex(4)}-4${this.hex(3)}-${'89ab'[this.int(4)]}${this.hex(3)}-${this.hex(12)}`;
  }
  from(alphabet: string, n: number): string {
    const a = [...alphabet];
    let s = '';
    for (let i = 0; i < n; i++) s += this.pick(a);
    return s;
  }
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Sets an own enumerable property, even for `__proto__`. */
const define = (o: Obj, k: string, v: unknown) =>
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });

// ---- generators ------------------------------------------------------------

const YAML_CHARS = ': - # & * ! | > \' " % @ ` { } [ ] , ? ~ = \\ <<';
const YAML_WORDS = [
  'null',
  'Null',
  'NULL',
  '~',
  'true',
  'True',
  'FALSE',
  'yes',
  'No',
  'on',
  'OFF',
  'y',
  'n',
  '.inf',
  '-.Inf',
  '.nan',
  'NaN',
  '0x1F',
  '0o17',
  '017',
  '1e3',
  '1_000',
  '+12',
  '-0',
  '0.',
  '2001-12-14',
  '2001-12-14t21:59:43.10-05:00',
  '12:30:45',
  '=',
  '<<',
  '!!binary',
  '!!str',
  '&a',
  '*a',
  '%YAML 1.2',
  '%TAG ! tag:x:',
  '---',
  '...',
  '--- |',
  '- a',
  '? x',
  ': x',
  '#',
  ' #x',
  'a #b',
  'a: b',
  '|',
  '>-',
  "'",
  '"',
  '`',
  '@x',
  '{a: 1}',
  '[1, 2]',
  '{{ name }}',
  '{{uuid}}',
  '{{ values }}',
  '{{ namespace:default }}',
  '$&',
  '$1',
  '\\',
  '\\n',
  '\\u0000',
];
const UNICODE = [
  'é',
  'Zürich',
  '東京',
  'Ω',
  '😀',
  '👩‍👩‍👧',
  '\u202e',
  '\u200b',
  '\ufeff',
  '\u0085',
  '\u2028',
  '\u2029',
  '\u00a0',
  'ﬀ',
  '𝔘',
  '\ud800',
  '\udfff',
  'a\u0300',
];
const CONTROL = ['\n', '\r\n', '\r', '\t', '\0', '\u0007', '\u001b[31m', '\u007f', '\v', '\f'];
const DEFAULT_KEYS = [
  'cluster',
  'name',
  'uuid',
  'domain',
  'directory',
  'krb5',
  'realm',
  'class',
  'edgeAccount',
  'group',
  'edgeSync',
  'edgeMonitor',
];

function nastyString(r: Rng, maxParts = 6): string {
  const parts: string[] = [];
  const n = 1 + r.int(maxParts);
  for (let i = 0; i < n; i++) {
    switch (r.int(8)) {
      case 0:
        parts.push(r.pick(YAML_WORDS));
        break;
      case 1:
        parts.push(r.from(YAML_CHARS, 1 + r.int(6)));
        break;
      case 2:
        parts.push(r.pick(UNICODE));
        break;
      case 3:
        parts.push(r.pick(CONTROL));
        break;
      case 4:
        parts.push(' '.repeat(1 + r.int(3)));
        break;
      case 5:
        parts.push(r.from('abcxyz0123456789', 1 + r.int(12)));
        break;
      case 6:
        parts.push(r.pick(['\n---\n', '\n...\n', '---', '...', '\n- ', '\n  key: value\n', '\n#comment\n']));
        break;
      default:
        parts.push(r.from('ABCdef_-.', 1 + r.int(5)));
    }
  }
  let s = parts.join('');
  if (r.chance(0.01)) s = s.repeat(1 + r.int(2000)); // very long
  return s;
}

function key(r: Rng): string {
  const roll = r.int(20);
  if (roll < 5) return r.pick(DEFAULT_KEYS);
  if (roll < 9) return r.from('abcdefghij_', 1 + r.int(10));
  if (roll === 9)
    return r.pick([
      '',
      '__proto__',
      'constructor',
      'toString',
      'hasOwnProperty',
      '0',
      '1e3',
      'null',
      'true',
      '<<',
      '?',
      '- x',
      '#',
    ]);
  return nastyString(r, 3);
}

function number(r: Rng): number {
  return r.pick([
    () => r.int(1000),
    () => -r.int(1_000_000),
    () => r.int(1_000_000) / 1000,
    () => 1e300,
    () => 5e-324,
    () => Number.MAX_SAFE_INTEGER,
    () => Number.MAX_SAFE_INTEGER + 2,
    () => 0.1 + 0.2,
    () => -1.5e-7,
    () => 123456789012,
    () => 0,
  ])();
}

function jsonValue(r: Rng, depth: number): unknown {
  const roll = r.int(depth > 3 ? 6 : 10);
  switch (roll) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return number(r);
    case 3:
    case 4:
    case 5:
      return nastyString(r);
    case 6:
    case 7:
      return object(r, depth + 1);
    default:
      return Array.from({ length: r.int(5) }, () => jsonValue(r, depth + 1));
  }
}

function object(r: Rng, depth: number): Obj {
  const o: Obj = {};
  const n = r.int(depth === 0 ? 8 : 5);
  for (let i = 0; i < n; i++) define(o, key(r), jsonValue(r, depth));
  return o;
}

/** Values aimed at the chart defaults: merging into, replacing and nulling them. */
function values(r: Rng): unknown {
  const roll = r.int(20);
  if (roll === 0) return r.pick([null, [], [{ a: 1 }], 'values', 42, true]);
  const v = object(r, 0);
  if (r.chance(0.5))
    define(
      v,
      'cluster',
      r.pick([
        () => object(r, 1),
        () => null,
        () => nastyString(r),
        () => ({ name: nastyString(r), extra: jsonValue(r, 2) }),
      ])(),
    );
  if (r.chance(0.3)) define(v, 'uuid', r.chance(0.5) ? { group: object(r, 2) } : jsonValue(r, 1));
  if (r.chance(0.2)) define(v, 'krb5', null);
  return v;
}

const NAME_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_';
function name(r: Rng): unknown {
  switch (r.int(14)) {
    case 0:
    case 1:
    case 2:
    case 3:
      return r.from(NAME_CHARS, 1 + r.int(40));
    case 4:
      return r.from(NAME_CHARS, 63);
    case 5:
      return r.pick([
        'true',
        'False',
        'null',
        'NULL',
        'yes',
        'no',
        'on',
        'y',
        'n',
        '0x1F',
        '0o17',
        '1e3',
        '123',
        '017',
        'NaN',
        'inf',
        '_',
        '1_000',
      ]);
    case 6:
      return r.from(NAME_CHARS, 64 + r.int(200));
    case 7:
      return r.pick([
        '',
        'Zürich',
        '東京',
        'Line 7',
        'a-b',
        'a.b',
        'a/b',
        '../x',
        'x\n',
        '\nx',
        'x\u0000',
        '😀',
        'ı',
        'K',
      ]); // K = Kelvin sign
    case 8:
      return `${r.from(NAME_CHARS, 1 + r.int(5))}${r.from(YAML_CHARS.replace(/ /g, ''), 1)}${r.from(NAME_CHARS, r.int(5))}`;
    case 9:
      return r.pick([undefined, null, 7, true, ['a'], { n: 'a' }]);
    case 10:
      return nastyString(r, 2);
    default:
      return r.from(NAME_CHARS, 1 + r.int(12));
  }
}

const NS_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789-';
function namespace(r: Rng): unknown {
  const label = (n: number) => {
    if (n === 1) return r.from('abcdefghijklmnopqrstuvwxyz0123456789', 1);
    return (
      r.from('abcdefghijklmnopqrstuvwxyz0123456789', 1) +
      r.from(NS_CHARS, n - 2) +
      r.from('abcdefghijklmnopqrstuvwxyz0123456789', 1)
    );
  };
  switch (r.int(12)) {
    case 0:
    case 1:
    case 2:
    case 3:
      return label(1 + r.int(30));
    case 4:
      return label(63);
    case 5:
      return r.pick(['true', 'null', 'no', 'y', 'on', '123', '1e3', '0x1f', '017', 'nan', 'inf', '0']);
    case 6:
      return label(64 + r.int(10));
    case 7:
      return r.pick([
        '',
        'Edge',
        '-edge',
        'edge-',
        'edge.ns',
        'edge_ns',
        'édge',
        'edge\n',
        ' edge',
        'edge ns',
        '..',
        'a/b',
        'ｅｄｇｅ',
        'edge\u0000',
      ]);
    case 8:
      return r.pick([undefined, null, 1, false, ['edge'], { ns: 'edge' }]);
    case 9:
      return nastyString(r, 2);
    default:
      return label(1 + r.int(12));
  }
}

function entry(r: Rng): unknown {
  if (r.chance(0.02)) return r.pick([null, [], 'spec', 12, [{ name: 'a', namespace: 'b' }]]);
  const e: Obj = {};
  const n = name(r);
  const ns = namespace(r);
  if (n !== undefined) e.name = n;
  if (ns !== undefined) e.namespace = ns;
  if (r.chance(0.3))
    e.chart = r.chance(0.8) ? r.pick([r.uuid(), nastyString(r, 2), '']) : r.pick([1, null, { uuid: 'x' }]);
  if (r.chance(0.4)) e.bare = r.chance(0.9) ? r.chance(0.5) : r.pick(['true', 1, null, 'false']);
  if (r.chance(0.8)) e.values = values(r);
  if (r.chance(0.1)) e[nastyString(r, 2)] = jsonValue(r, 2); // unrelated keys are ignored
  return e;
}

// ---- oracle ----------------------------------------------------------------

/** Levels of nesting, `{}` and `[]` being 1 (the README's rule for MAX_VALUES_DEPTH). */
function nesting(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  return 1 + Math.max(0, ...(Array.isArray(v) ? v : Object.values(v)).map(nesting));
}

/** The SpecError reason validateSpec must give, or undefined for a valid entry; written from the rules, not the code. */
function expectedReason(e: unknown): string | undefined {
  if (!isObj(e)) return 'InvalidSpec';
  if (typeof e.name !== 'string' || e.name === '') return 'MissingName';
  if (!/^[A-Za-z0-9_]+$/.test(e.name) || e.name.length > 63) return 'InvalidName';
  const ns = e.namespace;
  if (typeof ns !== 'string' || ns.length < 1 || ns.length > 63 || !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(ns))
    return 'InvalidNamespace';
  // A chart is a UUID, in either case.
  if (
    e.chart !== undefined &&
    (typeof e.chart !== 'string' || !/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/i.test(e.chart))
  )
    return 'InvalidChart';
  if (e.bare !== undefined && typeof e.bare !== 'boolean') return 'InvalidSpec';
  if (e.values !== undefined && !isObj(e.values)) return 'InvalidValues';
  // The default limits: 64 levels, 256 KiB of JSON.
  if (e.values !== undefined && (nesting(e.values) > 64 || Buffer.byteLength(JSON.stringify(e.values)) > 256 * 1024))
    return 'InvalidValues';
  return undefined;
}

/** json-merge-patch `merge` over own properties. */
function merge(a: unknown, b: unknown): unknown {
  if (!isObj(a) || !isObj(b)) return b;
  const out: Obj = {};
  for (const k of Object.keys(a)) define(out, k, a[k]);
  for (const k of Object.keys(b))
    define(
      out,
      k,
      Object.prototype.hasOwnProperty.call(out, k) && isObj(out[k]) && isObj(b[k]) ? merge(out[k], b[k]) : b[k],
    );
  return out;
}

// Installation values full of YAML-significant characters, without placeholders.
const OPTS = {
  realm: 'R.LOCAL: #&*!|>',
  domain: 'd.local\'"%@`',
  directoryUrl: 'http://dir:80/x?a=b&c=#d',
  edgeAccountClass: '- a',
  edgeSyncRole: '? b',
  edgeMonitorRole: '---',
};
const TEMPLATES: ManifestTemplates = {
  flux: fluxTemplate,
  helmRelease: helmReleaseTemplate,
  chart: clusterChartTemplate(OPTS),
};
/** The chart's default values for a cluster, written out from templates.ts rather than rendered. */
const chartDefaults = (nm: string, uuid: string): Obj => ({
  cluster: { name: nm, uuid, domain: OPTS.domain, directory: OPTS.directoryUrl },
  krb5: { realm: OPTS.realm },
  uuid: {
    class: { edgeAccount: OPTS.edgeAccountClass },
    group: { edgeSync: OPTS.edgeSyncRole, edgeMonitor: OPTS.edgeMonitorRole },
  },
});

const short = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
};

/** What is wrong with one entry's outcome; empty when all holds. */
function checkEntry(raw: unknown, uuid: string): { problems: string[]; reason?: string } {
  // Through JSON text, as the Config Store stores and serves it.
  const text = JSON.stringify(raw);
  const e: unknown = text === undefined ? undefined : JSON.parse(text);
  const want = expectedReason(e);
  const problems: string[] = [];
  let spec;
  try {
    spec = validateSpec(e);
  } catch (err) {
    if (!(err instanceof SpecError))
      return { problems: [`validateSpec threw ${(err as Error)?.name}: ${(err as Error)?.message}`] };
    if (want === undefined) return { problems: [`refused a valid entry (${err.reason}: ${err.message})`] };
    if (err.reason !== want) problems.push(`reason ${err.reason}, expected ${want}`);
    if (!err.message) problems.push('SpecError without a message');
    return { problems, reason: err.reason };
  }
  if (want !== undefined) return { problems: [`accepted an entry that should be ${want}`] };

  let out;
  try {
    out = renderClusterRepo({ uuid, spec, templates: TEMPLATES, gitBase: GIT_BASE, helmRepo: HELM_REPO });
  } catch (err) {
    return { problems: [`renderClusterRepo threw ${(err as Error).name}: ${(err as Error).message}`] };
  }
  const ent = e as Obj;
  const ns = ent.namespace as string;
  const files = [...out.files.keys()].sort();
  const expectedFiles = [
    'edge-cluster.yaml',
    ...(ent.bare === true ? [] : ['flux-system.yaml']),
    'helm-charts.yaml',
    'self-link.yaml',
  ].map((f) => `edo/cluster/${f}`);
  if (JSON.stringify(files) !== JSON.stringify(expectedFiles))
    problems.push(`files ${short(files)}, expected ${short(expectedFiles)}`);
  if (out.selfLink !== out.files.get('edo/cluster/self-link.yaml'))
    problems.push('selfLink differs from self-link.yaml');
  let release: Obj | undefined;
  for (const [path, body] of out.files) {
    if (
      !path.startsWith('edo/cluster/') ||
      path.includes('..') ||
      path.startsWith('/') ||
      path.includes('\\') ||
      /^[A-Za-z]:/.test(path)
    )
      problems.push(`unsafe path ${short(path)}`);
    const docs = parseAllDocuments(Buffer.from(body, 'utf8').toString('utf8'));
    if (!Array.isArray(docs)) {
      problems.push(`${path}: not a document stream`);
      continue;
    }
    for (const [i, d] of docs.entries()) {
      if (d.errors.length) problems.push(`${path}#${i}: YAML error ${d.errors[0]!.message.split('\n')[0]}`);
      const m = d.toJS({ maxAliasCount: -1 }) as unknown;
      if (!isObj(m)) {
        problems.push(`${path}#${i}: not a manifest object`);
        continue;
      }
      if (typeof m.apiVersion !== 'string' || typeof m.kind !== 'string')
        problems.push(`${path}#${i}: no apiVersion/kind`);
      const md = m.metadata;
      if (isObj(md) && 'namespace' in md && md.namespace !== ns)
        problems.push(`${path}#${i}: namespace ${short(md.namespace)}, expected ${short(ns)}`);
      if (m.kind === 'HelmRelease') release = m;
    }
  }
  if (!release) {
    problems.push('no HelmRelease rendered');
  } else {
    const md = release.metadata as Obj;
    if (md.namespace !== ns) problems.push(`HelmRelease namespace ${short(md.namespace)}`);
    if (md.name !== `edge-cluster-${uuid}`) problems.push(`HelmRelease name ${short(md.name)}`);
    const got = (release.spec as Obj).values;
    const wantValues = merge(chartDefaults(ent.name as string, uuid), ent.values ?? {});
    try {
      expect(got).to.deep.equal(wantValues);
    } catch {
      problems.push(`HelmRelease values differ: ${firstDifference(got, wantValues)}`);
    }
  }
  return { problems };
}

/** A short description of where two JSON-like values first differ. */
function firstDifference(got: unknown, want: unknown, path = 'values'): string {
  if (isObj(got) && isObj(want)) {
    for (const k of new Set([...Object.keys(want), ...Object.keys(got)])) {
      if (!Object.prototype.hasOwnProperty.call(got, k))
        return `${path}[${JSON.stringify(k)}] missing (want ${short(want[k])})`;
      if (!Object.prototype.hasOwnProperty.call(want, k))
        return `${path}[${JSON.stringify(k)}] unexpected (${short(got[k])})`;
      if (JSON.stringify(got[k]) !== JSON.stringify(want[k]))
        return firstDifference(got[k], want[k], `${path}[${JSON.stringify(k)}]`);
    }
    return `${path}: differs (prototype or key order)`;
  }
  if (Array.isArray(got) && Array.isArray(want)) {
    for (let i = 0; i < Math.max(got.length, want.length); i++) {
      if (JSON.stringify(got[i]) !== JSON.stringify(want[i])) return firstDifference(got[i], want[i], `${path}[${i}]`);
    }
  }
  return `${path}: got ${short(got)}, want ${short(want)}`;
}

describe('resilience: cluster repo rendering under fuzzed configuration entries', function () {
  this.timeout(process.env.SOAK ? 0 : 30_000);

  it(`${COUNT} seeded random entries: refused with the right SpecError, or rendered to safe, parseable, faithful manifests`, () => {
    const r = new Rng(SEED);
    const reasons: Record<string, number> = {};
    const failures: Array<{ i: number; problems: string[]; entry: string }> = [];
    let rendered = 0;
    for (let i = 0; i < COUNT; i++) {
      const e = entry(r);
      const { problems, reason } = checkEntry(e, r.uuid());
      if (reason) reasons[reason] = (reasons[reason] ?? 0) + 1;
      else if (!problems.length) rendered++;
      if (problems.length) failures.push({ i, problems, entry: short(e) });
    }
    const byKind = new Map<string, number>();
    for (const f of failures) {
      for (const p of f.problems) {
        const kind = `${p.replace(/\[.*$|: .*$/s, '')}${p.includes('__proto__') || f.entry.includes('"__proto__"') ? ' (entry has a __proto__ key)' : ''}`;
        byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
      }
    }
    console.log(
      `    [render-fuzz] seed 0x${SEED.toString(16)}: injected ${COUNT} entries; checked ${rendered} rendered (paths, YAML, namespace, values) and refusals ${JSON.stringify(reasons)}; ${failures.length} failed`,
    );
    for (const [k, n] of byKind) console.log(`    [render-fuzz]   ${n} x ${k}`);
    expect(rendered, 'enough valid entries to be meaningful').to.be.at.least(COUNT / 5);
    expect(
      Object.values(reasons).reduce((a, b) => a + b, 0),
      'enough invalid entries to be meaningful',
    ).to.be.at.least(COUNT / 5);
    expect(
      failures.length,
      `failures (seed 0x${SEED.toString(16)}), first ones:\n${failures
        .slice(0, 8)
        .map((f) => `  #${f.i}: ${f.problems.join('; ')}\n    entry ${f.entry}`)
        .join('\n')}`,
    ).to.equal(0);
  });

  describe('edge cases on their own', () => {
    const U = '0b9e2c1e-6a0f-4a8e-9d3c-2f4b5a6c7d8e';
    const one = (what: string, e: unknown) => {
      const { problems, reason } = checkEntry(e, U);
      console.log(
        `    [render-fuzz] injected ${what}; checked ${reason ? `refusal ${reason}` : 'render'}${problems.length ? `: ${problems.join('; ')}` : ''}`,
      );
      expect(problems).to.deep.equal([]);
    };

    it('YAML keywords as name, namespace and values stay strings', () => {
      one('name "true", namespace "null", values of YAML keywords', {
        name: 'true',
        namespace: 'null',
        values: Object.fromEntries(YAML_WORDS.map((w, i) => [`k${i}`, w])),
      });
      one('name "0x1F", namespace "123"', {
        name: '0x1F',
        namespace: '123',
        values: { '1e3': '1e3', null: 'null', '': '' },
      });
    });

    it('document markers, comments and block scalars inside values', () => {
      one('values with ---/.../#/|/> on their own lines', {
        name: 'Markers',
        namespace: 'edge',
        values: { a: '---\nkind: Secret\n...\n', b: '# x\n| y\n> z\n', c: ['---', '...', '- -', ': :'] },
      });
    });

    it('unicode, control characters and lone surrogates in values', () => {
      one('values with emoji, RTL override, NEL, U+2028, NUL, ESC, lone surrogates', {
        name: 'Uni',
        namespace: 'edge',
        values: { s: `${UNICODE.join('|')}${CONTROL.join('|')}`, [UNICODE.join('')]: CONTROL.join('') },
      });
    });

    it('whitespace-only lines in a string value survive', () => {
      // yaml's stringify writes '  \n' as a `|+` block scalar without an
      // indentation indicator, so a reader takes the spaces for indentation.
      one('values {"a": "  \\n", "b": "x\\n  \\n", "c": [" \\n\\n"]}', {
        name: 'Blank',
        namespace: 'edge',
        values: { a: '  \n', b: 'x\n  \n', c: [' \n\n'] },
      });
    });

    it('values that override, extend and null the chart defaults', () => {
      one('cluster.extra, krb5 null, uuid replaced by a string', {
        name: 'Merge',
        namespace: 'edge',
        values: { cluster: { extra: { deep: [1, { x: null }] }, name: 'Other' }, krb5: null, uuid: 'flat' },
      });
    });

    it('a values key named __proto__ is rendered like any other key', () => {
      try {
        one(
          'values {"cluster": {"__proto__": {"a": 1}}, "__proto__": {"polluted": true}}',
          JSON.parse(
            '{"name":"Proto","namespace":"edge","values":{"cluster":{"__proto__":{"a":1}},"__proto__":{"polluted":true}}}',
          ),
        );
      } finally {
        expect(({} as Obj).polluted, 'Object.prototype untouched').to.equal(undefined);
      }
    });

    it('a values key __proto__ holding a list does not wipe the other values', () => {
      one(
        'values {"__proto__": [], "keep": "me"}',
        JSON.parse('{"name":"ProtoList","namespace":"edge","values":{"__proto__":[],"keep":"me"}}'),
      );
    });

    it('a 200 KB string value renders; a 1 MB one is refused', () => {
      one('values.big = 200 KB of ": -#\\n"', {
        name: 'Big',
        namespace: 'edge',
        values: { big: ': -#\n'.repeat(40_000) },
      });
      one('values.big = 1 MB of ": -#\\n"', {
        name: 'Big',
        namespace: 'edge',
        values: { big: ': -#\n'.repeat(250_000) },
      });
    });

    it('values nested to the depth limit render; one level more is refused', () => {
      const nest = (n: number): Obj => (n <= 1 ? { leaf: 'x' } : { a: nest(n - 1) });
      one('values 64 levels deep', { name: 'Deep', namespace: 'edge', values: nest(64) });
      one('values 65 levels deep', { name: 'Deeper', namespace: 'edge', values: nest(65) });
    });

    it('a chart UUID in upper case is the same chart; another string is refused', () => {
      one('chart in upper case', { name: 'Upper', namespace: 'edge', chart: U.toUpperCase() });
      one('chart "../x"', { name: 'Path', namespace: 'edge', chart: '../x' });
    });
  });
});
