import { createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';

/**
 * Self-signed X.509 certificates made with node:crypto alone: node can make
 * keys and signatures but not certificates, so the few DER structures of a
 * certificate are encoded here (RFC 5280). Enough for a sealing certificate
 * as the Sealed Secrets controller makes one: RSA or EC key, a subject
 * common name and organisation (or an empty subject), validity dates, and
 * optionally the controller's two extensions.
 */

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, item: Buffer) => tlv(0xa0 | n, item);
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const bitString = (bytes: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
const NULL = Buffer.from([0x05, 0x00]);

/** A non-negative INTEGER from big-endian bytes. */
function unsigned(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  return tlv(0x02, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [40 * a! + b!];
  for (const arc of rest) {
    const groups: number[] = [];
    let v = arc;
    do {
      groups.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    out.push(...groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g)));
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime after, as RFC 5280 asks. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`, 'latin1'))
    : tlv(0x18, Buffer.from(`${iso}Z`, 'latin1'));
}

/** A Name with one RDN per non-empty part; with none it is the empty SEQUENCE Go writes for an empty CN. */
function name(commonName: string, organisation: string): Buffer {
  const rdns: Buffer[] = [];
  if (commonName) rdns.push(set(sequence(oid('2.5.4.3'), utf8(commonName))));
  if (organisation) rdns.push(set(sequence(oid('2.5.4.10'), utf8(organisation))));
  return sequence(...rdns);
}

const TRUE = Buffer.from([0x01, 0x01, 0xff]);
const octets = (b: Buffer) => tlv(0x04, b);

/**
 * The extensions the controller's certificate carries (sealed-secrets
 * `pkg/crypto/keys.go` asks Go for KeyUsageEncipherOnly and a CA basic
 * constraint; Go marks both critical and encodes the usage as one byte).
 */
function controllerExtensions(): Buffer {
  const keyUsage = sequence(oid('2.5.29.15'), TRUE, octets(Buffer.from([0x03, 0x02, 0x00, 0x01])));
  const basicConstraints = sequence(oid('2.5.29.19'), TRUE, octets(sequence(TRUE)));
  return explicit(3, sequence(keyUsage, basicConstraints));
}

export interface SelfSignedOptions {
  privateKey: KeyObject;
  /** Default `sealed-secret`; `''` leaves it out. */
  commonName?: string;
  /** Default `sealed-secret`; `''` leaves it out. */
  organisation?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Adds the controller's key usage and basic constraints extensions. */
  controllerExtensions?: boolean;
}

const TEN_YEARS_MS = 10 * 365 * 86_400_000;

/**
 * A certificate as the Sealed Secrets controller makes one by default:
 * empty subject and issuer (`--my-cn` defaults to ''), notBefore now and
 * valid for `--key-ttl`, 10 × 365 days, with its two extensions.
 */
export function controllerCertificate(privateKey: KeyObject, notBefore: Date = new Date()): string {
  return selfSignedCertificate({
    privateKey,
    commonName: '',
    organisation: '',
    notBefore,
    notAfter: new Date(notBefore.getTime() + TEN_YEARS_MS),
    controllerExtensions: true,
  });
}

/** A self-signed certificate for the key pair, as PEM. */
export function selfSignedCertificate(o: SelfSignedOptions): string {
  const publicKey = createPublicKey(o.privateKey);
  const type = o.privateKey.asymmetricKeyType;
  // sha256WithRSAEncryption takes NULL parameters; ecdsa-with-SHA256 takes none.
  const algorithm =
    type === 'rsa'
      ? sequence(oid('1.2.840.113549.1.1.11'), NULL)
      : type === 'ec'
        ? sequence(oid('1.2.840.10045.4.3.2'))
        : undefined;
  if (!algorithm) throw new Error(`cannot sign a certificate with a ${type} key`);
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = o.notAfter ?? new Date(Date.now() + TEN_YEARS_MS);
  const subject = name(o.commonName ?? 'sealed-secret', o.organisation ?? 'sealed-secret');
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const tbs = sequence(
    explicit(0, tlv(0x02, Buffer.from([2]))), // v3
    unsigned(serial),
    algorithm,
    subject,
    sequence(time(notBefore), time(notAfter)),
    subject,
    publicKey.export({ type: 'spki', format: 'der' }),
    ...(o.controllerExtensions ? [controllerExtensions()] : []),
  );
  const signature = sign('sha256', tbs, o.privateKey);
  const der = sequence(tbs, algorithm, bitString(signature));
  const lines = der.toString('base64').match(/.{1,64}/g)!;
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}
