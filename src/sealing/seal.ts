/*
 * Native `kubeseal --raw` sealing. A typical write: `parseSealingCertificate(kubeseal_cert)`
 * (certificate.ts) → `sealValue(cert.publicKey, body, scopeLabel(scope, ns, name))` →
 * `upsertSealedKey(fileText, {..., certFingerprint: cert.fingerprint})` (manifest.ts) →
 * commit the text at `sealedSecretPath(ns, name)`.
 */
import { constants, createCipheriv, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';

/**
 * How widely a sealed value may be used. The Sealed Secrets controller binds
 * the ciphertext to this through the RSA-OAEP label, so a value sealed for
 * one Secret cannot be replayed into another unless the scope allows it.
 */
export type SealingScope = 'strict' | 'namespace-wide' | 'cluster-wide';

export const SEALING_SCOPES: readonly SealingScope[] = ['strict', 'namespace-wide', 'cluster-wide'];

/** Narrows untrusted input (a query parameter, say) to a scope. */
export function isSealingScope(s: unknown): s is SealingScope {
  return typeof s === 'string' && (SEALING_SCOPES as readonly string[]).includes(s);
}

/**
 * The OAEP label the controller will use when it decrypts: it derives it
 * from the SealedSecret's metadata, so it must be computed from exactly the
 * namespace and name the manifest will carry (`EncryptionLabel` upstream).
 */
export function scopeLabel(scope: SealingScope, namespace: string, name: string): Buffer {
  switch (scope) {
    case 'strict':
      return Buffer.from(`${namespace}/${name}`, 'utf8');
    case 'namespace-wide':
      return Buffer.from(namespace, 'utf8');
    case 'cluster-wide':
      return Buffer.alloc(0);
    default:
      throw new TypeError(`unknown sealing scope: ${String(scope)}`);
  }
}

const SESSION_KEY_BYTES = 32;
const GCM_TAG_BYTES = 16;

/**
 * Seals one value exactly as `kubeseal --raw` does (sealed-secrets
 * `pkg/crypto.HybridEncrypt`), so the in-cluster controller can open it
 * without any help from us and no kubeseal binary is needed here.
 *
 * RSA cannot encrypt arbitrary lengths, so a fresh AES-256 key is wrapped
 * with RSA-OAEP (SHA-256 for both OAEP and MGF1, as Go's `rsa.EncryptOAEP`
 * uses) and the value itself is sealed with AES-256-GCM. The all-zero GCM
 * nonce is what the controller expects and is safe only because every call
 * uses a brand-new key; never reuse the session key.
 *
 * @returns standard padded base64 of `len(rsa) as u16 BE ‖ rsa ‖ aes ‖ tag`,
 *   the value for `spec.encryptedData[key]`.
 */
export function sealValue(publicKey: KeyObject, plaintext: Buffer, label: Buffer): string {
  if (publicKey.type !== 'public' || publicKey.asymmetricKeyType !== 'rsa') {
    throw new TypeError('sealing needs an RSA public key (the Sealed Secrets controller only uses RSA)');
  }
  const sessionKey = randomBytes(SESSION_KEY_BYTES);
  try {
    const wrapped = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label },
      sessionKey,
    );
    const cipher = createCipheriv('aes-256-gcm', sessionKey, Buffer.alloc(12), { authTagLength: GCM_TAG_BYTES });
    const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(wrapped.length);
    return Buffer.concat([length, wrapped, sealed]).toString('base64');
  } finally {
    sessionKey.fill(0);
  }
}
