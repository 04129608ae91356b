import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { pemBlocks } from './pem.js';

/**
 * Why a `kubeseal_cert` cannot be used. Each code maps to a different fix
 * for the operator: a missing/garbled upload (Edge Sync), a controller with
 * the wrong key type, or a certificate past its expiry (a controller that
 * has not renewed its key, or a clock far ahead).
 */
export type CertificateErrorCode = 'no-certificate' | 'unparseable' | 'not-rsa' | 'expired';

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
  /**
   * One line, e.g. `CN=sealed-secret, O=sealed-secret`; empty for the
   * controller's default certificate, which has an empty subject.
   */
  subject: string;
}

/** What a caller may be shown of a certificate; `notYetValid` makes a clock skew visible. */
export interface CertificateDescription {
  fingerprint: string;
  subject: string;
  notBefore: string;
  notAfter: string;
  notYetValid: boolean;
}

const FIELD = 'kubeseal_cert (Edge cluster status entry)';
const CERTIFICATE = 'CERTIFICATE';

/**
 * Reads the controller's sealing certificate as Edge Sync publishes it,
 * with kubeseal's verdict (`ParseKey` over client-go's `ParseCertsPEM`):
 *
 * - PEM blocks are found as Go finds them (see pem.ts); blocks of another
 *   type, or with headers, are passed over;
 * - every `CERTIFICATE` block must parse as X.509, or the whole field is
 *   refused, though only the first one is used (the controller's own key);
 * - its key must be RSA and it must not have expired. A notBefore in the
 *   future is accepted, as kubeseal does: the controller stamps it from its
 *   own clock at each key renewal, so an edge clock running ahead would
 *   otherwise block sealing for values the controller can open.
 *
 * The subject may be anything, empty included: the controller's default
 * `--my-cn` is empty.
 *
 * @throws CertificateError
 */
export function parseSealingCertificate(pem: string, now: Date = new Date()): SealingCertificate {
  const blocks =
    typeof pem === 'string'
      ? pemBlocks(pem).filter((b) => b.type === CERTIFICATE && Object.keys(b.headers).length === 0)
      : [];
  if (blocks.length === 0) {
    throw new CertificateError('no-certificate', `${FIELD} does not contain a PEM "CERTIFICATE" block`);
  }
  const certs = blocks.map((b, i) => readDer(b.bytes, i));
  const cert = certs[0]!;
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
  return {
    publicKey: cert.publicKey,
    fingerprint: createHash('sha256').update(cert.raw).digest('hex'),
    notBefore,
    notAfter,
    // Node leaves `subject` undefined when the Name is empty.
    subject: (cert.subject ?? '').split('\n').filter(Boolean).join(', '),
  };
}

/** The certificate as a listing shows it. */
export function describeCertificate(cert: SealingCertificate, now: Date = new Date()): CertificateDescription {
  return {
    fingerprint: cert.fingerprint,
    subject: cert.subject,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    notYetValid: cert.notBefore.getTime() > now.getTime(),
  };
}

/**
 * One DER certificate. Go's parser refuses bytes after the certificate's
 * own SEQUENCE; OpenSSL ignores them, so that is checked here.
 */
function readDer(der: Buffer, index: number): X509Certificate {
  const which = index === 0 ? 'the first PEM certificate' : `PEM certificate ${index + 1}`;
  let cert: X509Certificate;
  try {
    if (der[0] !== 0x30 || derLength(der) !== der.length) throw new Error('not a single DER SEQUENCE');
    cert = new X509Certificate(der);
  } catch (err) {
    throw new CertificateError(
      'unparseable',
      `${FIELD}: ${which} cannot be parsed as X.509 (${(err as Error).message})`,
    );
  }
  return cert;
}

/** Total length (header included) of the DER element at the start of `der`, or -1. */
function derLength(der: Buffer): number {
  if (der.length < 2) return -1;
  const first = der[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 4 || der.length < 2 + n) return -1;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!;
  return 2 + n + len;
}
