import { parseAllDocuments, stringify } from 'yaml';
import { READS_SAME_IN_1_1 } from './yaml-compat.js';

/**
 * Multi-document YAML as the Factory+ repos hold it: every document starts
 * with `---` and documents are separated by `...` lines.
 */
export function toMultiDoc(docs: unknown[]): string {
  return docs
    .map(
      (d) =>
        `---\n${stringify(d, { lineWidth: 0, aliasDuplicateObjects: false, blockQuote: false, ...READS_SAME_IN_1_1 })}`,
    )
    .join('...\n');
}

/** Parses multi-document YAML; a syntax error throws with the document's message. */
export function parseMultiDoc(text: string): unknown[] {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return [];
  const out: unknown[] = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`invalid YAML: ${d.errors[0].message}`);
    const v = d.toJS();
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

/** Kubernetes object name from parts: lower case, runs of other characters -> '-'. */
export function k8sName(...parts: string[]): string {
  return parts
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-/, '')
    .replace(/-$/, '');
}

/** RFC 1123 label, as Kubernetes requires of namespaces and most names. */
export function isDnsLabel(s: string): boolean {
  return s.length > 0 && s.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s);
}
