import { createHash, X509Certificate, type KeyObject } from 'node:crypto';

/**
 * Why a `kubeseal_cert` cannot be used. Each code maps to a different fix
 * for the operator: a missing/garbled upload (Edge Sync), a controller with
 * the wrong key type, or a certificate outside its validity window (clock
 * skew or a controller that has not rotated its key).
 */
export type CertificateErrorCode = 'no-certificate' | 'unparseable' | 'not-rsa' | 'expired' | 'not-yet-valid';

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  constructor(
    readonly code: CertificateErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface SealingCertificate {
  publicKey: KeyObject;
  /** SHA-256 of the DER, lowercase hex without colons: identifies the controller key a value was sealed for. */
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  /** One line, e.g. `CN=sealed-secret, O=sealed-secret`. */
  subject: string;
}

const FIELD = 'kubeseal_cert (Edge cluster status entry)';
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/;

/**
 * Reads the controller's sealing certificate as Edge Sync publishes it.
 * Only the first PEM `CERTIFICATE` block counts: the field may hold a chain
 * and the leaf is the controller's own key. Validity is checked here, before
 * anything is sealed, because a value sealed to a stale key is written to
 * the repo successfully yet can never be decrypted in the cluster.
 *
 * @throws CertificateError
 */
export function parseSealingCertificate(pem: string, now: Date = new Date()): SealingCertificate {
  const block = typeof pem === 'string' ? PEM_CERTIFICATE.exec(pem)?.[0] : undefined;
  if (block === undefined) {
    throw new CertificateError('no-certificate', `${FIELD} does not contain a PEM "CERTIFICATE" block`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(block);
  } catch (err) {
    throw new CertificateError(
      'unparseable',
      `${FIELD}: the first PEM certificate cannot be parsed as X.509 (${(err as Error).message})`,
    );
  }
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    throw new CertificateError('unparseable', `${FIELD}: cannot read the certificate's validity dates`);
  }
  const keyType = cert.publicKey.asymmetricKeyType;
  if (keyType !== 'rsa') {
    throw new CertificateError(
      'not-rsa',
      `${FIELD}: the certificate holds a ${keyType ?? 'unknown'} key; Sealed Secrets needs an RSA key`,
    );
  }
  if (notAfter.getTime() < now.getTime()) {
    throw new CertificateError(
      'expired',
      `${FIELD}: the certificate expired at ${notAfter.toISOString()}; the cluster's Sealed Secrets controller must publish a current one`,
    );
  }
  if (notBefore.getTime() > now.getTime()) {
    throw new CertificateError(
      'not-yet-valid',
      `${FIELD}: the certificate is not valid before ${notBefore.toISOString()}; check the clocks of this server and the cluster`,
    );
  }
  return {
    publicKey: cert.publicKey,
    fingerprint: createHash('sha256').update(cert.raw).digest('hex'),
    notBefore,
    notAfter,
    subject: cert.subject.split('\n').join(', '),
  };
}
