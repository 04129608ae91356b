import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/*
 * Bootstrap URLs are fetched with `curl | sh` from a machine that has no
 * Factory+ credentials, so the URL itself is the credential: it carries a
 * token that says "this cluster's script, until this time", signed with a key
 * only this process knows. Nothing is stored per token, so tokens survive a
 * restart as long as the key does, and cannot be revoked one by one (rotate
 * the key file to revoke them all).
 *
 * Token = base64url(payload) "." base64url(HMAC-SHA-256(key, label || payload))
 * payload (33 bytes) = version (1) | cluster UUID (16) | expiry, Unix seconds,
 * uint64 BE (8) | random nonce (8)
 */

const KEY_FILE = 'bootstrap-key';
const KEY_BYTES = 32;

const VERSION = 1;
const UUID_BYTES = 16;
const NONCE_BYTES = 8;
const PAYLOAD_BYTES = 1 + UUID_BYTES + 8 + NONCE_BYTES;
const MAC_BYTES = 32;
/** Domain separation, so a MAC made with this key for anything else can never pass as a token. */
const MAC_LABEL = Buffer.from('factoryplus-cluster-manager/bootstrap-token/v1\0');
/** Real tokens are 88 characters; anything much longer is not worth decoding. */
export const MAX_TOKEN_LENGTH = 256;

const B64URL = /^[A-Za-z0-9_-]+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Returns the signing key, creating it on first use. It is kept on disk so
 * that bootstrap URLs handed out before a restart still work after it; a key
 * file of the wrong size is refused rather than replaced, because silently
 * replacing it would invalidate every outstanding URL and could hide tampering.
 */
export function loadOrCreateKey(dataDir: string): Buffer {
  const path = join(dataDir, KEY_FILE);
  const existing = readKey(path);
  if (existing) return existing;

  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  // Write the whole key under a private name, then link it into place: the
  // key file either does not exist or is complete, and if another process
  // created it meanwhile, link fails and we use that one instead.
  const tmp = join(dataDir, `.${KEY_FILE}.${process.pid}.${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, randomBytes(KEY_BYTES));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    unlinkSync(tmp);
  }
  const key = readKey(path);
  if (!key) throw new Error(`bootstrap key file ${path} vanished while it was being created`);
  return key;
}

function readKey(path: string): Buffer | null {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (data.length !== KEY_BYTES) {
    throw new Error(
      `bootstrap key file ${path} is corrupt: it holds ${data.length} bytes, not ${KEY_BYTES}. ` +
        'Delete it to generate a new key (this invalidates all bootstrap URLs issued so far).',
    );
  }
  return data;
}

export type VerifyResult =
  { ok: true; expires: Date } | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' | 'wrong-cluster' };

function uuidBytes(uuid: string): Buffer | null {
  return UUID.test(uuid) ? Buffer.from(uuid.replace(/-/g, ''), 'hex') : null;
}

/**
 * Decodes base64url only if `s` is the one canonical encoding of its bytes.
 * Node's decoder skips invalid characters and ignores the spare low bits of
 * the last character, so without this check several different strings would
 * decode (and verify) as the same token.
 */
function strictDecode(s: string, bytes: number): Buffer | null {
  if (!B64URL.test(s)) return null;
  const buf = Buffer.from(s, 'base64url');
  if (buf.length !== bytes || buf.toString('base64url') !== s) return null;
  return buf;
}

/** Issues and checks the tokens in bootstrap URLs. */
export class BootstrapTokens {
  private readonly key: Buffer;
  private readonly ttlSeconds: number;
  private readonly now: () => number;

  /** `now` returns milliseconds like `Date.now`; tests inject a clock. */
  constructor(key: Buffer, opts: { ttlSeconds: number; now?: () => number }) {
    if (key.length < 16) throw new Error('bootstrap token key must be at least 16 bytes');
    if (!Number.isInteger(opts.ttlSeconds) || opts.ttlSeconds <= 0) {
      throw new Error(`bootstrap token lifetime must be a positive whole number of seconds, not ${opts.ttlSeconds}`);
    }
    this.key = Buffer.from(key);
    this.ttlSeconds = opts.ttlSeconds;
    this.now = opts.now ?? Date.now;
  }

  /** A fresh token for one cluster; each call gives a different token. */
  issue(cluster: string): { token: string; expires: Date } {
    const id = uuidBytes(cluster);
    if (!id) throw new TypeError(`cannot issue a bootstrap token for ${JSON.stringify(cluster)}: not a UUID`);
    const expiry = Math.floor(this.now() / 1000) + this.ttlSeconds;
    const payload = Buffer.alloc(PAYLOAD_BYTES);
    payload.writeUInt8(VERSION, 0);
    id.copy(payload, 1);
    payload.writeBigUInt64BE(BigInt(expiry), 1 + UUID_BYTES);
    randomBytes(NONCE_BYTES).copy(payload, 1 + UUID_BYTES + 8);
    return {
      token: `${payload.toString('base64url')}.${this.mac(payload).toString('base64url')}`,
      expires: new Date(expiry * 1000),
    };
  }

  /**
   * Checks a token presented for `cluster`. The signature is checked before
   * anything in the payload is believed; the reasons are for logs, a client
   * should only ever learn that the URL is not valid.
   */
  verify(token: string, cluster: string): VerifyResult {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'malformed' };
    const parts = token.split('.');
    if (parts.length !== 2) return { ok: false, reason: 'malformed' };
    const payload = strictDecode(parts[0], PAYLOAD_BYTES);
    const mac = strictDecode(parts[1], MAC_BYTES);
    if (!payload || !mac || payload.readUInt8(0) !== VERSION) return { ok: false, reason: 'malformed' };

    if (!timingSafeEqual(mac, this.mac(payload))) return { ok: false, reason: 'bad-signature' };

    const want = uuidBytes(cluster);
    if (!want || !want.equals(payload.subarray(1, 1 + UUID_BYTES))) return { ok: false, reason: 'wrong-cluster' };
    const expiry = Number(payload.readBigUInt64BE(1 + UUID_BYTES));
    if (this.now() >= expiry * 1000) return { ok: false, reason: 'expired' };
    return { ok: true, expires: new Date(expiry * 1000) };
  }

  private mac(payload: Buffer): Buffer {
    return createHmac('sha256', this.key).update(MAC_LABEL).update(payload).digest();
  }
}
