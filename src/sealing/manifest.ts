import { SizedLru } from '../lib/lru.js';
import { parseMultiDoc, toMultiDoc } from '../repo/yaml.js';
import {
  CERT_ANNOTATION,
  define,
  KEY_CERTS_ANNOTATION,
  readCertRecord,
  writeCertRecord,
  type Annotations,
} from './cert-record.js';
import { checkSecretLimits, sealedPlaintextBytes, secretSize } from './limits.js';
import { assertSecretAddress, InvalidSecretAddress, isSecretKey } from './names.js';
import { isSealingScope, type SealingScope } from './seal.js';

/**
 * Edits of the SealedSecret manifests in a cluster repo. Pure text in, text
 * out, so the git plumbing (clone, commit, push, retry) stays elsewhere and
 * a retry after a rejected push can simply re-apply the edit to the new head.
 *
 * Only the FIRST document of a file is the SealedSecret we manage (as in the
 * original Cluster Manager); any further documents are preserved untouched.
 */

export const NAMESPACE_WIDE_ANNOTATION = 'sealedsecrets.bitnami.com/namespace-wide';
export const CLUSTER_WIDE_ANNOTATION = 'sealedsecrets.bitnami.com/cluster-wide';

export type SealingConflictCode = 'scope-mismatch' | 'identity-mismatch' | 'not-sealed-secret' | 'invalid-manifest';

/**
 * The repo file cannot take the requested change without breaking what is
 * already there. Nothing should be written; the caller's request (or the
 * file) has to change first.
 */
export class SealingConflict extends Error {
  override readonly name = 'SealingConflict';
  constructor(
    readonly code: SealingConflictCode,
    message: string,
  ) {
    super(message);
  }
}

export interface SealedKeyWrite {
  namespace: string;
  name: string;
  key: string;
  /** Output of `sealValue` for `scopeLabel(scope, namespace, name)`. */
  ciphertext: string;
  scope: SealingScope;
  /** `SealingCertificate.fingerprint` of the certificate used to seal. */
  certFingerprint: string;
}

export interface SealedSecretSummary {
  namespace: string;
  name: string;
  scope: SealingScope;
  /** Sorted. */
  keys: string[];
  /** Certificate per key, where known; see cert-record.ts. */
  certFingerprints: Record<string, string>;
}

/** Repo path of a secret's manifest; validates first because the parts become path segments. */
export function sealedSecretPath(namespace: string, name: string): string {
  assertSecretAddress(namespace, name);
  return `edo/secrets/${namespace}/${name}.yaml`;
}

/**
 * Sets one sealed key, creating the manifest if needed.
 *
 * The controller decrypts every key of a SealedSecret with the one label
 * its scope annotations imply, so all keys must share a scope: a write in a
 * different scope is refused while any OTHER key exists (re-writing the only
 * key may change the scope). The manifest's namespace/name must match the
 * request too, since they are part of the label. The Secret must stay
 * within the limits of limits.ts (sizes of the values already there follow
 * from their ciphertexts).
 *
 * @throws SealingConflict, SecretLimitExceeded, InvalidSecretAddress
 */
export function upsertSealedKey(existingText: string | undefined, write: SealedKeyWrite): string {
  const { namespace, name, key, ciphertext, scope, certFingerprint } = write;
  assertSecretAddress(namespace, name, key);
  if (!isSealingScope(scope)) throw new TypeError(`unknown sealing scope: ${String(scope)}`);
  if (typeof ciphertext !== 'string' || ciphertext === '') throw new TypeError('ciphertext must be a non-empty string');
  if (!/^[0-9a-f]{64}$/.test(certFingerprint)) throw new TypeError('certFingerprint must be 64 lowercase hex digits');

  const docs = parse(existingText);
  if (docs.length === 0) docs.push(freshSealedSecret(namespace, name));
  const { metadata, spec, encryptedData } = firstSealedSecret(docs);

  for (const [field, want] of [
    ['namespace', namespace],
    ['name', name],
  ] as const) {
    if (metadata[field] === undefined) metadata[field] = want;
    else if (metadata[field] !== want) {
      throw new SealingConflict(
        'identity-mismatch',
        `the SealedSecret in ${sealedSecretPath(namespace, name)} has metadata.${field} ${JSON.stringify(metadata[field])}, not ${JSON.stringify(want)}`,
      );
    }
  }

  const annotations = annotationsOf(metadata);
  const oldKeys = Object.keys(encryptedData);
  const others = oldKeys.filter((k) => k !== key);
  const current = scopeOf(annotations);
  if (others.length > 0 && current !== scope) {
    throw new SealingConflict(
      'scope-mismatch',
      `${namespace}/${name} already holds keys sealed ${current} (${others.join(', ')}); ` +
        `cannot add ${JSON.stringify(key)} sealed ${scope}: all keys of one SealedSecret share one scope`,
    );
  }

  const before = secretSize(encryptedData);
  const replaced = Object.hasOwn(encryptedData, key) ? sealedPlaintextBytes(encryptedData[key]) : 0;
  checkSecretLimits(
    before,
    {
      bytes: before.bytes - replaced + sealedPlaintextBytes(ciphertext),
      keys: before.keys + (Object.hasOwn(encryptedData, key) ? 0 : 1),
    },
    `${namespace}/${name}`,
  );

  const record = readCertRecord(annotations, oldKeys);
  define(record, key, certFingerprint);
  define(encryptedData, key, ciphertext);
  delete annotations[NAMESPACE_WIDE_ANNOTATION];
  delete annotations[CLUSTER_WIDE_ANNOTATION];
  if (scope === 'namespace-wide') annotations[NAMESPACE_WIDE_ANNOTATION] = 'true';
  if (scope === 'cluster-wide') annotations[CLUSTER_WIDE_ANNOTATION] = 'true';
  writeCertRecord(annotations, record, Object.keys(encryptedData));
  storeAnnotations(metadata, annotations);
  shapeTemplate(metadata, spec);
  return render(docs);
}

/**
 * Deletes one sealed key. When it was the last key and the file holds
 * nothing else, the result is `text: undefined`: delete the file (an empty
 * SealedSecret is noise). Other documents are never dropped, so then the
 * emptied SealedSecret stays. A missing file or key is not an error, it is
 * `changed: false` with the text as given.
 *
 * @throws SealingConflict, InvalidSecretAddress
 */
export function removeSealedKey(
  existingText: string | undefined,
  key: string,
): { text: string | undefined; changed: boolean } {
  if (!isSecretKey(key)) throw new InvalidSecretAddress('key', key);
  const docs = parse(existingText);
  if (docs.length === 0) return { text: existingText, changed: false };
  const { metadata, spec, encryptedData } = firstSealedSecret(docs);
  if (!Object.hasOwn(encryptedData, key)) return { text: existingText, changed: false };

  const annotations = annotationsOf(metadata);
  const record = readCertRecord(annotations, Object.keys(encryptedData));
  delete encryptedData[key];
  const remaining = Object.keys(encryptedData);
  if (remaining.length === 0 && docs.length === 1) return { text: undefined, changed: true };
  writeCertRecord(annotations, record, remaining);
  storeAnnotations(metadata, annotations);
  shapeTemplate(metadata, spec);
  return { text: render(docs), changed: true };
}

/**
 * What a manifest holds, safe to show to anyone allowed to list secrets:
 * ciphertext is deliberately left out. `undefined` for a file without
 * documents.
 *
 * @throws SealingConflict
 */
export function describeSealedSecret(text: string): SealedSecretSummary | undefined {
  const docs = parse(text);
  if (docs.length === 0) return undefined;
  const { metadata, encryptedData } = firstSealedSecret(docs);
  const annotations = annotationsOf(metadata);
  const keys = Object.keys(encryptedData).sort();
  return {
    namespace: typeof metadata.namespace === 'string' ? metadata.namespace : '',
    name: typeof metadata.name === 'string' ? metadata.name : '',
    scope: scopeOf(annotations),
    keys,
    certFingerprints: readCertRecord(annotations, keys),
  };
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * A new file: the original Cluster Manager's layout, without its
 * `template.data: null` (kubeseal never writes `data`, it is `omitempty`);
 * `shapeTemplate` fills in the template's metadata.
 */
function freshSealedSecret(namespace: string, name: string): Obj {
  return {
    apiVersion: 'bitnami.com/v1alpha1',
    kind: 'SealedSecret',
    metadata: { namespace, name },
    spec: {
      encryptedData: {},
      template: { metadata: {}, type: 'Opaque' },
    },
  };
}

/** Annotations this module owns; the template carries the same values as `metadata`. */
const MANAGED_ANNOTATIONS = [NAMESPACE_WIDE_ANNOTATION, CLUSTER_WIDE_ANNOTATION, CERT_ANNOTATION, KEY_CERTS_ANNOTATION];

/**
 * Gives `spec.template.metadata` what kubeseal gives it. kubeseal copies
 * the Secret's whole metadata into the template, scope annotations
 * included, and keeps only name, namespace and those annotations outside
 * (sealed-secrets `NewSealedSecret`), so for a plain Secret both blocks are
 * equal. Three readers depend on that:
 * - the controller makes the Secret from the template, so the Secret
 *   carries its scope annotation only if the template does;
 * - `kubeseal --re-encrypt` (the controller's `Rotate`) compares the two
 *   blocks, warns when they differ and then overwrites the template with
 *   `metadata`; so the certificate record is mirrored too, keeping the
 *   blocks equal and the warning away;
 * - `kubeseal --merge-into` writes the new template annotations into the
 *   existing template's annotations, which must therefore exist for a
 *   namespace-wide or cluster-wide secret.
 * Anything else in the template (labels, further annotations, `type`, a
 * non-empty `data`) is the author's and stays. A `data: null` left by the
 * original shape is dropped, so old files take this shape on their next edit.
 */
function shapeTemplate(metadata: Obj, spec: Obj): void {
  const template = isObj(spec.template) ? spec.template : (spec.template = {});
  if (template.data === null) delete template.data;
  const meta = isObj(template.metadata) ? template.metadata : (template.metadata = {});
  for (const field of ['namespace', 'name']) {
    if (metadata[field] === undefined) delete meta[field];
    else meta[field] = metadata[field];
  }
  const outer = annotationsOf(metadata);
  const inner = annotationsOf(meta);
  for (const k of MANAGED_ANNOTATIONS) {
    if (Object.hasOwn(outer, k)) define(inner, k, outer[k]);
    else delete inner[k];
  }
  storeAnnotations(meta, inner);
}

/**
 * Documents by the text they were parsed from or rendered to. A file is
 * mostly edited again in the form this module last wrote it, and parsing a
 * manifest of many keys costs several times more than cloning its
 * documents. Entries are never handed out, only copies of them.
 */
const parsed = new SizedLru<string, unknown[]>(8 * 1024 * 1024, (text) => text.length);

function parse(text: string | undefined): unknown[] {
  if (text === undefined) return [];
  const known = parsed.get(text);
  if (known) return structuredClone(known);
  let docs: unknown[];
  try {
    docs = parseMultiDoc(text);
  } catch (err) {
    throw new SealingConflict(
      'invalid-manifest',
      `the existing SealedSecret file is not valid YAML: ${(err as Error).message}`,
    );
  }
  parsed.set(text, structuredClone(docs));
  return docs;
}

/** Renders documents that the caller no longer touches, and remembers them by their text. */
function render(docs: unknown[]): string {
  const text = toMultiDoc(docs);
  parsed.set(text, docs);
  return text;
}

/** Locates (creating empty containers where absent) the parts we edit, in place. */
function firstSealedSecret(docs: unknown[]): { metadata: Obj; spec: Obj; encryptedData: Obj } {
  const doc = docs[0];
  if (!isObj(doc) || doc.kind !== 'SealedSecret') {
    throw new SealingConflict('not-sealed-secret', 'the first document of the file is not a SealedSecret');
  }
  if (doc.metadata == null) doc.metadata = {};
  if (doc.spec == null) doc.spec = {};
  const { metadata, spec } = doc;
  if (!isObj(metadata) || !isObj(spec)) {
    throw new SealingConflict('invalid-manifest', 'the SealedSecret has a malformed metadata or spec');
  }
  if (spec.encryptedData == null) spec.encryptedData = {};
  if (!isObj(spec.encryptedData)) {
    throw new SealingConflict('invalid-manifest', 'the SealedSecret has a malformed spec.encryptedData');
  }
  return { metadata, spec, encryptedData: spec.encryptedData };
}

function annotationsOf(metadata: Obj): Annotations {
  return isObj(metadata.annotations) ? { ...metadata.annotations } : {};
}

/** Drops an empty `annotations` so untouched strict files keep the original's shape. */
function storeAnnotations(metadata: Obj, annotations: Annotations): void {
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  else delete metadata.annotations;
}

/** Same precedence as the controller's label choice: cluster-wide wins. */
function scopeOf(annotations: Annotations): SealingScope {
  if (annotations[CLUSTER_WIDE_ANNOTATION] === 'true') return 'cluster-wide';
  if (annotations[NAMESPACE_WIDE_ANNOTATION] === 'true') return 'namespace-wide';
  return 'strict';
}
