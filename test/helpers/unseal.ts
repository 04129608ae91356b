import { constants, createDecipheriv, createPrivateKey, privateDecrypt, type KeyObject } from 'node:crypto';

/**
 * The Sealed Secrets controller's decryption (`pkg/crypto.HybridDecrypt`),
 * written independently of src/sealing so tests can prove a sealed value
 * really opens in a cluster. Throws on any mismatch (label, key, tampering).
 */
export function unsealValue(privateKey: KeyObject | string, sealed: string, label: Buffer): Buffer {
  const blob = Buffer.from(sealed, 'base64');
  if (blob.toString('base64') !== sealed) throw new Error('not canonical standard base64');
  const { rsaCiphertext, aesCiphertext } = splitSealed(blob);
  const key = typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  const sessionKey = privateDecrypt(
    { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label },
    rsaCiphertext,
  );
  return aesGcmOpen(sessionKey, aesCiphertext);
}

/** `u16 BE length ‖ RSA part ‖ AES part`, as the controller reads it. */
export function splitSealed(blob: Buffer): { rsaCiphertext: Buffer; aesCiphertext: Buffer } {
  if (blob.length < 2) throw new Error('sealed value too short');
  const rsaLength = blob.readUInt16BE(0);
  if (blob.length < 2 + rsaLength + 16) throw new Error('sealed value truncated');
  return { rsaCiphertext: blob.subarray(2, 2 + rsaLength), aesCiphertext: blob.subarray(2 + rsaLength) };
}

/** AES-256-GCM with the all-zero nonce, no AAD, 16-byte tag appended. */
export function aesGcmOpen(sessionKey: Buffer, sealed: Buffer): Buffer {
  if (sessionKey.length !== 32) throw new Error(`session key is ${sessionKey.length} bytes, want 32`);
  const decipher = createDecipheriv('aes-256-gcm', sessionKey, Buffer.alloc(12), { authTagLength: 16 });
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
}
