/**
 * Checks for the parts of a secret address (`{namespace}/{name}/{key}`).
 * They arrive in URLs and become repo paths (`edo/secrets/<ns>/<name>.yaml`),
 * so they are validated against Kubernetes' own rules before use: anything
 * Kubernetes would reject could never be applied anyway, and the rules
 * happen to exclude `/`, `%`, `..` and other path-traversal material.
 */

const DNS_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS_LABEL}(\\.${DNS_LABEL})*$`);
const DNS1123_LABEL = new RegExp(`^${DNS_LABEL}$`);
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;

/** DNS-1123 subdomain: what Kubernetes requires of most object names (max 253). */
export function isK8sName(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

/** Namespaces are stricter than other names: a DNS-1123 label (max 63, no dots). */
export function isNamespace(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 63 && DNS1123_LABEL.test(s);
}

/** Secret (and SealedSecret) names are DNS-1123 subdomains. */
export function isSecretName(s: unknown): s is string {
  return isK8sName(s);
}

/** A key of a Secret's `data`, by Kubernetes' `IsConfigMapKey` rule. */
export function isSecretKey(s: unknown): s is string {
  // Kubernetes also refuses any key starting with '..' (its hasChDirPrefix check).
  return typeof s === 'string' && s.length <= 253 && SECRET_KEY.test(s) && s !== '.' && !s.startsWith('..');
}

/** A secret address part that failed its check; `field` says which. */
export class InvalidSecretAddress extends Error {
  override readonly name = 'InvalidSecretAddress';
  constructor(
    readonly field: 'namespace' | 'name' | 'key',
    readonly value: unknown,
  ) {
    super(`invalid secret ${field}: ${JSON.stringify(value)}`);
  }
}

/** Throws InvalidSecretAddress unless every given part is valid. */
export function assertSecretAddress(namespace: unknown, name: unknown, key?: unknown): void {
  if (!isNamespace(namespace)) throw new InvalidSecretAddress('namespace', namespace);
  if (!isSecretName(name)) throw new InvalidSecretAddress('name', name);
  if (key !== undefined && !isSecretKey(key)) throw new InvalidSecretAddress('key', key);
}
