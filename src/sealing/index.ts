/**
 * Native `kubeseal --raw` sealing and the SealedSecret manifests it feeds.
 *
 * Typical write: `parseSealingCertificate(kubeseal_cert)` → `sealValue(cert.publicKey,
 * body, scopeLabel(scope, ns, name))` → `upsertSealedKey(fileText, {..., certFingerprint:
 * cert.fingerprint})` → commit the text at `sealedSecretPath(ns, name)`.
 */
export { isSealingScope, scopeLabel, sealValue, SEALING_SCOPES, type SealingScope } from './seal.js';
export {
  CertificateError,
  describeCertificate,
  parseSealingCertificate,
  type CertificateDescription,
  type CertificateErrorCode,
  type SealingCertificate,
} from './certificate.js';
export {
  CLUSTER_WIDE_ANNOTATION,
  describeSealedSecret,
  NAMESPACE_WIDE_ANNOTATION,
  removeSealedKey,
  SealingConflict,
  sealedSecretPath,
  upsertSealedKey,
  type SealedKeyWrite,
  type SealedSecretSummary,
  type SealingConflictCode,
} from './manifest.js';
export { CERT_ANNOTATION, KEY_CERTS_ANNOTATION } from './cert-record.js';
export {
  assertSecretAddress,
  InvalidSecretAddress,
  isK8sName,
  isNamespace,
  isSecretKey,
  isSecretName,
} from './names.js';
export { pemBlocks, type PemBlock } from './pem.js';
export {
  checkSecretLimits,
  MAX_KEYS_PER_SECRET,
  MAX_SECRET_BYTES,
  SecretLimitExceeded,
  sealedPlaintextBytes,
  secretSize,
  type SecretLimitReason,
} from './limits.js';
