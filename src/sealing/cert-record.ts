/**
 * Which controller certificate each sealed key was encrypted for.
 *
 * The controller's key rotates (and a cluster can be rebuilt with a new
 * one); values sealed for an old certificate then stop decrypting without
 * any error in the repo. Recording the certificate per key lets a caller
 * compare against the current `kubeseal_cert` and tell exactly which keys
 * must be re-sealed. The record lives in the SealedSecret's own
 * `metadata.annotations` (the controller acts only on its own
 * `sealedsecrets.bitnami.com/*` annotations), in one of two forms, never both:
 *
 * - `cluster-manager.factoryplus/cert-sha256: <hex>` when every key in
 *   `spec.encryptedData` is known to be sealed for that one certificate.
 *   This is the normal case, so the common file stays readable.
 * - `cluster-manager.factoryplus/key-certs: '{"<key>":"<hex>",...}'` (JSON,
 *   keys sorted) as soon as keys differ, i.e. during a rotation, or when
 *   some keys predate this record (files written by the original Cluster
 *   Manager or by hand). Keys absent from the JSON are of unknown origin and
 *   should be treated as needing a re-seal.
 *
 * `<hex>` is the lowercase SHA-256 of the certificate's DER. Writers call
 * `writeCertRecord` after every change so the form collapses back to the
 * single annotation once all keys agree again.
 */

export const CERT_ANNOTATION = 'cluster-manager.factoryplus/cert-sha256';
export const KEY_CERTS_ANNOTATION = 'cluster-manager.factoryplus/key-certs';

export type Annotations = Record<string, unknown>;

/** Known certificate per key, for the given keys only; unknown keys are omitted. */
export function readCertRecord(annotations: Annotations, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const perKey = parsePerKey(annotations[KEY_CERTS_ANNOTATION]);
  const shared = annotations[CERT_ANNOTATION];
  for (const key of keys) {
    const fp = perKey ? (Object.hasOwn(perKey, key) ? perKey[key] : undefined) : shared;
    if (typeof fp === 'string' && fp !== '') define(out, key, fp);
  }
  return out;
}

/** Rewrites both annotations in place to describe `record` for exactly `keys`. */
export function writeCertRecord(
  annotations: Annotations,
  record: Record<string, string>,
  keys: readonly string[],
): void {
  delete annotations[CERT_ANNOTATION];
  delete annotations[KEY_CERTS_ANNOTATION];
  if (keys.length === 0) return;
  const known = keys.filter((k) => Object.hasOwn(record, k));
  const distinct = new Set(known.map((k) => record[k]));
  if (known.length === keys.length && distinct.size === 1) {
    annotations[CERT_ANNOTATION] = record[known[0]];
  } else if (known.length > 0) {
    const sorted: Record<string, string> = {};
    for (const k of [...known].sort()) define(sorted, k, record[k]);
    annotations[KEY_CERTS_ANNOTATION] = JSON.stringify(sorted);
  }
}

/** A hand-edited, unparseable record degrades to "unknown", never to an error. */
function parsePerKey(value: unknown): Record<string, unknown> | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** Plain assignment would treat a key named `__proto__` as the prototype. */
export function define(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
