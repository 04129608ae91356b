/**
 * What one Secret may hold. Every value sealed here ends up, through the
 * controller, in one Kubernetes Secret, and the API server refuses a Secret
 * whose values exceed 1 MiB in total; a SealedSecret past that is committed
 * and synced but never becomes a Secret. The limits also bound what a caller
 * can make this service hold and rewrite on every edit of the file.
 */

/** Kubernetes' `MaxSecretSize`: the sum of the values' lengths (keys not counted). */
export const MAX_SECRET_BYTES = 1024 * 1024;

/**
 * Keys per Secret. Kubernetes sets no number, but each key costs far more
 * in the SealedSecret than its value: an RSA-wrapped session key (2 + 512 +
 * 16 bytes for the controller's RSA 4096 key, ~710 characters of base64)
 * plus its name, up to 253 characters, written up to three times (data and
 * the certificate record in both metadata blocks). 1 MiB of values is 1.33
 * MiB of base64, and etcd's default request limit is 1.5 MiB; 100 keys of
 * such overhead (~165 kB) still fit beside the largest allowed values.
 * Secrets with more keys than that are rare and better split.
 */
export const MAX_KEYS_PER_SECRET = 100;

export type SecretLimitReason = 'value-too-large' | 'secret-too-large' | 'too-many-keys';

/** The change would make the Secret bigger than Kubernetes (or this service) accepts; nothing is written. */
export class SecretLimitExceeded extends Error {
  override readonly name = 'SecretLimitExceeded';
  constructor(
    readonly reason: SecretLimitReason,
    message: string,
  ) {
    super(message);
  }
}

const LENGTH_PREFIX = 2;
const GCM_TAG = 16;

/**
 * The plaintext length of a sealed value, from its ciphertext alone:
 * `uint16 RSA length ‖ RSA ‖ AES-GCM ciphertext (as long as the value) ‖ tag`,
 * in padded base64. Only the first four characters are decoded. Text that
 * is not such a blob counts as long as its decoded bytes, never less.
 */
export function sealedPlaintextBytes(ciphertext: unknown): number {
  if (typeof ciphertext !== 'string') return 0;
  const padding = ciphertext.endsWith('==') ? 2 : ciphertext.endsWith('=') ? 1 : 0;
  const bytes = Math.floor((ciphertext.length * 3) / 4) - padding;
  const head = Buffer.from(ciphertext.slice(0, 4), 'base64');
  if (head.length < 2) return Math.max(bytes, 0);
  const plain = bytes - LENGTH_PREFIX - head.readUInt16BE(0) - GCM_TAG;
  return plain >= 0 ? plain : Math.max(bytes, 0);
}

/** Total plaintext and key count of `spec.encryptedData`. */
export function secretSize(encryptedData: Record<string, unknown>): { bytes: number; keys: number } {
  let bytes = 0;
  let keys = 0;
  for (const k of Object.keys(encryptedData)) {
    bytes += sealedPlaintextBytes(encryptedData[k]);
    keys++;
  }
  return { bytes, keys };
}

/**
 * Refuses a change that takes a Secret past a limit. A file already past
 * one (written by hand) may still shrink: only growth beyond a limit is
 * refused, so a caller can always replace a value with a smaller one.
 *
 * @throws SecretLimitExceeded
 */
export function checkSecretLimits(
  before: { bytes: number; keys: number },
  after: { bytes: number; keys: number },
  what: string,
): void {
  if (after.keys > MAX_KEYS_PER_SECRET && after.keys > before.keys) {
    throw new SecretLimitExceeded(
      'too-many-keys',
      `${what} would hold ${after.keys} keys; a Secret written here holds at most ${MAX_KEYS_PER_SECRET}`,
    );
  }
  if (after.bytes > MAX_SECRET_BYTES && after.bytes > before.bytes) {
    throw new SecretLimitExceeded(
      'secret-too-large',
      `${what} would hold ${after.bytes} bytes of values; Kubernetes accepts at most ${MAX_SECRET_BYTES} (1 MiB) in one Secret`,
    );
  }
}
