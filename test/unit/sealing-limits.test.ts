import { expect } from 'chai';
import { randomBytes, X509Certificate } from 'node:crypto';
import { describeSealedSecret, upsertSealedKey } from '../../src/sealing/manifest.js';
import {
  MAX_KEYS_PER_SECRET,
  MAX_SECRET_BYTES,
  SecretLimitExceeded,
  sealedPlaintextBytes,
  type SecretLimitReason,
} from '../../src/sealing/limits.js';
import { scopeLabel, sealValue } from '../../src/sealing/seal.js';
import { testCert } from '../helpers/certs.js';
import { unsealValue } from '../helpers/unseal.js';

const FP = 'c'.repeat(64);
const NS = 'limits-ns';
const NAME = 'limits';
const label = scopeLabel('strict', NS, NAME);

function reasonOf(fn: () => unknown): SecretLimitReason | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(SecretLimitExceeded);
    return (e as SecretLimitExceeded).reason;
  }
  return undefined;
}

describe('sealing: what one Secret can hold', function () {
  this.timeout(120_000);
  const key4096 = () => new X509Certificate(testCert('rsa').certPem).publicKey;
  const key2048 = () => new X509Certificate(testCert('rsa-subject').certPem).publicKey;

  it("reads each value's length from its ciphertext, as the controller's decryption gives it back", () => {
    for (const [bits, pub, keyPem] of [
      [4096, key4096(), testCert('rsa').keyPem],
      [2048, key2048(), testCert('rsa-subject').keyPem],
    ] as const) {
      for (const n of [0, 1, 2, 3, 31, 1000, 65_537, 300_001]) {
        const sealed = sealValue(pub, randomBytes(n), label);
        // The oracle is the independent implementation of the controller's decrypt.
        expect(sealedPlaintextBytes(sealed), `RSA ${bits}, ${n} bytes`).to.equal(
          unsealValue(keyPem, sealed, label).length,
        );
      }
    }
    // Text that is no sealed value never counts as less than its bytes.
    expect(sealedPlaintextBytes('AAAA')).to.equal(3);
    expect(sealedPlaintextBytes('')).to.equal(0);
  });

  it(`refuses a value that takes the Secret past ${MAX_SECRET_BYTES} bytes in total, and lets it shrink again`, () => {
    const pub = key4096();
    const seal = (n: number) => sealValue(pub, Buffer.alloc(n, 1), label);
    const put = (text: string | undefined, key: string, n: number) =>
      upsertSealedKey(text, {
        namespace: NS,
        name: NAME,
        key,
        ciphertext: seal(n),
        scope: 'strict',
        certFingerprint: FP,
      });
    let text = put(undefined, 'a', 600_000);
    expect(reasonOf(() => put(text, 'b', MAX_SECRET_BYTES - 600_000 + 1))).to.equal('secret-too-large');
    text = put(text, 'b', MAX_SECRET_BYTES - 600_000); // exactly 1 MiB is what Kubernetes still takes
    expect(describeSealedSecret(text)!.keys).to.deep.equal(['a', 'b']);
    expect(reasonOf(() => put(text, 'c', 1))).to.equal('secret-too-large');
    expect(reasonOf(() => put(text, 'a', 600_001))).to.equal('secret-too-large');
    // Replacing a value with one no larger is fine at the limit.
    text = put(text, 'a', 600_000);
    text = put(text, 'a', 10);
    text = put(text, 'c', 599_990);
    expect(describeSealedSecret(text)!.keys).to.deep.equal(['a', 'b', 'c']);
  });

  it(`refuses key number ${MAX_KEYS_PER_SECRET + 1}, while an existing key can still be rewritten`, () => {
    const pub = key2048();
    const one = sealValue(pub, Buffer.from('v'), label);
    const put = (text: string | undefined, key: string) =>
      upsertSealedKey(text, { namespace: NS, name: NAME, key, ciphertext: one, scope: 'strict', certFingerprint: FP });
    let text: string | undefined;
    for (let i = 0; i < MAX_KEYS_PER_SECRET; i++) text = put(text, `k${i}`);
    expect(describeSealedSecret(text!)!.keys).to.have.length(MAX_KEYS_PER_SECRET);
    expect(reasonOf(() => put(text, 'one-too-many'))).to.equal('too-many-keys');
    expect(reasonOf(() => put(text, 'k0'))).to.equal(undefined);
  });
});
