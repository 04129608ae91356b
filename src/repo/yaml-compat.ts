import { Scalar, Schema, stringify, type CollectionTag, type ScalarTag, type Tags } from 'yaml';
import { stringTag } from 'yaml/util';

/*
 * YAML the readers of a cluster repo take as we meant it. We write YAML 1.2,
 * but kubectl and Flux's kustomize (sigs.k8s.io/yaml over go-yaml v2),
 * kubeseal and PyYAML read YAML 1.1, where a plain `on`, `y`, `0b101`,
 * `1_000` or `2024-01-01` is not a string: a key collapses into a boolean
 * or a number, and one such key makes a whole `kubectl kustomize` build fail.
 * The `yaml` library quotes a string whose plain form any tag of its
 * `compat` schema would resolve, so `compat` lists how 1.1 readers resolve
 * plain scalars: the library's own YAML 1.1 schema plus what it leaves out.
 * Ordinary text stays plain, so documents of ordinary names are unchanged.
 */

/** A plain scalar that some 1.1 reader resolves to `tag`; only its test is used. */
function resolvedBy(tag: string, test: RegExp): ScalarTag {
  return { tag: `tag:yaml.org,2002:${tag}`, default: true, test, resolve: (s) => s };
}

/**
 * go-yaml v2 (resolve.go) drops every `_` from a plain scalar that starts
 * with a digit or sign and then accepts what Go's `strconv.ParseInt(s, 0,
 * 64)` and its own float pattern accept: any case of `0x`/`0b`/`0o`, signed
 * `0o`, `_` anywhere (`0X1F`, `-0o17`, `1e1_0`), and a sign after `0b`
 * (`0b-1`). A few it refuses (out of range) are quoted all the same.
 */
class GoYamlNumber extends RegExp {
  constructor() {
    super(
      /^[-+]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$|^(?:0b[-+]?|-0b)[01]+$/,
    );
  }

  override test(s: string): boolean {
    return /^[-+0-9]/.test(s) && super.test(s.replace(/_/g, ''));
  }
}

const COMPAT: Tags = [
  ...new Schema({ schema: 'yaml-1.1' }).tags,
  resolvedBy('int', new GoYamlNumber()),
  // PyYAML's and js-yaml's timestamps also allow an empty fraction and a one-digit or `+39` offset.
  resolvedBy(
    'timestamp',
    /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?$/,
  ),
  // PyYAML resolves a plain `=` to the 1.1 `value` type, which its safe loader refuses.
  resolvedBy('value', /^=$/),
];

/*
 * In YAML 1.1 U+0085, U+2028 and U+2029 are line breaks (go-yaml and PyYAML
 * break a scalar there), go-yaml drops a U+FEFF that starts a line, and the
 * other C1 controls, U+FFFE and U+FFFF may not appear in a stream at all. A
 * string holding any of them is written double-quoted with each of them
 * escaped: the library quotes some of them but escapes with JSON.stringify,
 * which leaves them as they are. PyYAML also ends a plain scalar at a tab,
 * so a tab is never left in a plain scalar.
 */
const UNSAFE_IN_1_1 = /[\x7F-\x9F\u2028\u2029\uFEFF\uFFFE\uFFFF]/;

const string11: ScalarTag = {
  ...stringTag,
  stringify(item, ctx, onComment, onChompKeep) {
    const value = String(item.value);
    const render = stringTag.stringify!;
    if (!UNSAFE_IN_1_1.test(value)) {
      const out = render(item, ctx, onComment, onChompKeep);
      if (!value.includes('\t') || /^["'|>]/.test(out)) return out;
    }
    return render({ ...item, type: Scalar.QUOTE_DOUBLE } as Scalar, ctx, onComment, onChompKeep).replace(
      new RegExp(UNSAFE_IN_1_1, 'g'),
      (c) => `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`,
    );
  },
};

/*
 * JSON.stringify writes 1e21 and 1e-7 without a fraction, and PyYAML's 1.1
 * float needs one (it reads `1e+21` as a string), so the mantissa gets `.0`.
 */
function number11(tag: ScalarTag): ScalarTag {
  const render = tag.stringify!;
  return { ...tag, stringify: (...args) => render(...args).replace(/^([-+]?[0-9]+)e/, '$1.0e') };
}

const isNumberTag = (t: ScalarTag | CollectionTag): t is ScalarTag =>
  /:(int|float)$/.test(t.tag) && !t.collection && t.stringify !== undefined;

/** The tags that write each string and number so that every 1.1 reader reads it as we mean. */
const FOR_1_1 = new Map<Tags[number], ScalarTag>([
  [stringTag, string11],
  ...new Schema({ schema: 'core' }).tags.filter(isNumberTag).map((t) => [t, number11(t)] as const),
]);

/**
 * Options of `stringify` under which every document reads back the same in
 * YAML 1.2 and in YAML 1.1 as go-yaml v2, PyYAML and js-yaml 3 read it.
 */
export const READS_SAME_IN_1_1 = {
  compat: COMPAT,
  customTags: (tags: Tags): Tags => tags.map((t) => FOR_1_1.get(t) ?? t),
} as const;

/**
 * Whether `s` written as a plain scalar reads back as this string in YAML
 * 1.2 and in every 1.1 reader above: exactly when the writer leaves it plain.
 */
export function readsAsItselfPlain(s: string): boolean {
  return stringify(s, { lineWidth: 0, ...READS_SAME_IN_1_1 }) === `${s}\n`;
}
