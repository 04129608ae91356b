import { expect } from 'chai';
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scopeLabel, sealValue, SEALING_SCOPES, type SealingScope } from '../../src/sealing/seal.js';
import { openssl, scratchDir, testCert } from '../helpers/certs.js';
import { aesGcmOpen, splitSealed, unsealValue } from '../helpers/unseal.js';

const NS = 'fplus-edge';
const NAME = 'edge-agent-sensitive-information';

function publicKeyOf(kind: 'rsa' | 'rsa-4096' | 'rsa-subject' = 'rsa') {
  return new X509Certificate(testCert(kind).certPem).publicKey;
}

describe('sealing: sealValue (kubeseal --raw format)', function () {
  this.timeout(60000);

  it('derives the OAEP label from the scope', () => {
    expect(scopeLabel('strict', NS, NAME).toString()).to.equal(`${NS}/${NAME}`);
    expect(scopeLabel('namespace-wide', NS, NAME).toString()).to.equal(NS);
    expect(scopeLabel('cluster-wide', NS, NAME).length).to.equal(0);
  });

  for (const scope of SEALING_SCOPES) {
    it(`round-trips through the controller's decrypt (${scope})`, () => {
      const label = scopeLabel(scope, NS, NAME);
      const sealed = sealValue(publicKeyOf(), Buffer.from('s3cret value'), label);
      expect(unsealValue(testCert('rsa').keyPem, sealed, label).toString()).to.equal('s3cret value');
    });
  }

  it('lays out the blob as length ‖ RSA ‖ AES ‖ tag in padded standard base64', () => {
    const plaintext = Buffer.from('hello');
    const sealed = sealValue(publicKeyOf('rsa-subject'), plaintext, scopeLabel('strict', NS, NAME)); // RSA 2048
    expect(sealed).to.match(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(sealed.length % 4).to.equal(0);
    const blob = Buffer.from(sealed, 'base64');
    expect(blob.readUInt16BE(0)).to.equal(256);
    expect(blob.length).to.equal(2 + 256 + plaintext.length + 16);
  });

  it('looks like real kubeseal output for the 4096-bit controller key ("AgB..." prefix)', () => {
    const label = scopeLabel('strict', NS, NAME);
    const sealed = sealValue(publicKeyOf('rsa-4096'), Buffer.from('x'), label);
    expect(sealed.startsWith('Ag')).to.equal(true);
    expect(Buffer.from(sealed, 'base64').readUInt16BE(0)).to.equal(512);
    expect(unsealValue(testCert('rsa-4096').keyPem, sealed, label).toString()).to.equal('x');
  });

  it('handles every byte value, the empty value and 1 MiB', () => {
    const label = scopeLabel('strict', NS, NAME);
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const big = Buffer.alloc(1024 * 1024, 0xa5);
    big.write('start');
    big.write('end', big.length - 3);
    for (const value of [all, Buffer.alloc(0), big]) {
      const out = unsealValue(testCert('rsa').keyPem, sealValue(publicKeyOf(), value, label), label);
      expect(out.equals(value)).to.equal(true);
    }
  });

  it('fails to decrypt under any other label', () => {
    const labels: Buffer[] = [
      ...SEALING_SCOPES.map((s: SealingScope) => scopeLabel(s, NS, NAME)),
      scopeLabel('strict', NS, 'other-name'),
      scopeLabel('strict', 'other-ns', NAME),
    ];
    for (const sealLabel of labels) {
      const sealed = sealValue(publicKeyOf(), Buffer.from('v'), sealLabel);
      for (const openLabel of labels) {
        if (openLabel.equals(sealLabel)) continue;
        expect(() => unsealValue(testCert('rsa').keyPem, sealed, openLabel)).to.throw();
      }
    }
  });

  it('fails to decrypt with another private key or a tampered tag', () => {
    const label = scopeLabel('strict', NS, NAME);
    const sealed = sealValue(publicKeyOf(), Buffer.from('v'), label);
    expect(() => unsealValue(testCert('rsa-other').keyPem, sealed, label)).to.throw();
    const blob = Buffer.from(sealed, 'base64');
    blob[blob.length - 1] ^= 1;
    expect(() => unsealValue(testCert('rsa').keyPem, blob.toString('base64'), label)).to.throw();
  });

  it('uses a fresh session key every call', () => {
    const label = scopeLabel('strict', NS, NAME);
    const a = Buffer.from(sealValue(publicKeyOf(), Buffer.from('same'), label), 'base64');
    const b = Buffer.from(sealValue(publicKeyOf(), Buffer.from('same'), label), 'base64');
    expect(a.equals(b)).to.equal(false);
    expect(splitSealed(a).rsaCiphertext.equals(splitSealed(b).rsaCiphertext)).to.equal(false);
    expect(splitSealed(a).aesCiphertext.equals(splitSealed(b).aesCiphertext)).to.equal(false);
  });

  it('refuses non-RSA keys', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(() => sealValue(ec.publicKey, Buffer.from('v'), Buffer.alloc(0))).to.throw(TypeError, /RSA/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(() => sealValue(rsa.privateKey, Buffer.from('v'), Buffer.alloc(0))).to.throw(TypeError);
    expect(() => sealValue(createPublicKey(rsa.privateKey), Buffer.from('v'), Buffer.alloc(0))).not.to.throw();
  });

  describe('cross-check with the OpenSSL CLI (the parameters Go uses)', () => {
    for (const scope of SEALING_SCOPES) {
      it(`openssl pkeyutl recovers the session key (${scope})`, () => {
        const { keyPath } = testCert('rsa');
        const label = scopeLabel(scope, NS, NAME);
        const value = Buffer.from(`value for ${scope} \u00e9\u0000\u00ff`);
        const { rsaCiphertext, aesCiphertext } = splitSealed(
          Buffer.from(sealValue(publicKeyOf(), value, label), 'base64'),
        );
        const inPath = join(scratchDir(), `rsa-part-${scope}.bin`);
        writeFileSync(inPath, rsaCiphertext);
        const args = ['pkeyutl', '-decrypt', '-inkey', keyPath, '-in', inPath];
        args.push(
          '-pkeyopt',
          'rsa_padding_mode:oaep',
          '-pkeyopt',
          'rsa_oaep_md:sha256',
          '-pkeyopt',
          'rsa_mgf1_md:sha256',
        );
        if (label.length > 0) args.push('-pkeyopt', `rsa_oaep_label:${label.toString('hex')}`);
        const sessionKey = openssl(args);
        expect(sessionKey.length).to.equal(32);
        expect(aesGcmOpen(sessionKey, aesCiphertext).equals(value)).to.equal(true);
      });
    }

    it('openssl rejects the RSA part when MGF1 uses SHA-1 (so MGF1-SHA256 is really in use)', () => {
      const { keyPath } = testCert('rsa');
      const label = scopeLabel('strict', NS, NAME);
      const { rsaCiphertext } = splitSealed(Buffer.from(sealValue(publicKeyOf(), Buffer.from('v'), label), 'base64'));
      const inPath = join(scratchDir(), 'rsa-part-mgf1.bin');
      writeFileSync(inPath, rsaCiphertext);
      const args = ['pkeyutl', '-decrypt', '-inkey', keyPath, '-in', inPath, '-pkeyopt', 'rsa_padding_mode:oaep'];
      args.push(
        '-pkeyopt',
        'rsa_oaep_md:sha256',
        '-pkeyopt',
        'rsa_mgf1_md:sha1',
        '-pkeyopt',
        `rsa_oaep_label:${label.toString('hex')}`,
      );
      expect(() => openssl(args)).to.throw();
    });
  });
});
