import { expect } from 'chai';
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CertificateError, parseSealingCertificate } from '../../src/sealing/certificate.js';
import { openssl, scratchDir } from '../helpers/certs.js';
import { controllerCertificate, selfSignedCertificate } from '../helpers/x509.js';

/** The certificate helper is test code the interoperability test rests on; openssl and node judge its output. */
describe('test helper: self-signed certificates from node:crypto', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

  it('makes an RSA certificate that node and openssl read and verify, with its subject, dates and key', () => {
    const notBefore = new Date('2026-01-02T03:04:05Z');
    const notAfter = new Date('2060-01-02T03:04:05Z'); // past 2049: GeneralizedTime
    const pem = selfSignedCertificate({
      privateKey: rsa.privateKey,
      commonName: 'sealed-secret',
      organisation: 'sealed-secret',
      notBefore,
      notAfter,
    });
    const cert = new X509Certificate(pem);
    expect(cert.subject).to.equal('CN=sealed-secret\nO=sealed-secret');
    expect(cert.issuer).to.equal(cert.subject);
    expect(new Date(cert.validFrom).toISOString()).to.equal(notBefore.toISOString());
    expect(new Date(cert.validTo).toISOString()).to.equal(notAfter.toISOString());
    expect(cert.verify(createPublicKey(rsa.privateKey)), 'signature').to.equal(true);
    expect(cert.checkPrivateKey(rsa.privateKey)).to.equal(true);
    expect(
      cert.publicKey
        .export({ type: 'spki', format: 'der' })
        .equals(rsa.publicKey.export({ type: 'spki', format: 'der' })),
    ).to.equal(true);

    const file = join(scratchDir(), 'x509-helper-rsa.pem');
    writeFileSync(file, pem);
    const text = openssl(['x509', '-in', file, '-noout', '-text']).toString();
    expect(text).to.include('Version: 3').and.include('sha256WithRSAEncryption').and.include('Public-Key: (2048 bit)');
    expect(openssl(['verify', '-no-CApath', '-no-CAstore', '-CAfile', file, file]).toString().trim()).to.equal(
      `${file}: OK`,
    );
  });

  it("makes EC certificates too, and the sealing code judges the helper's certificates as it should", () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ecPem = selfSignedCertificate({ privateKey: ec.privateKey });
    expect(new X509Certificate(ecPem).verify(createPublicKey(ec.privateKey))).to.equal(true);
    const reason = (pem: string) => {
      try {
        parseSealingCertificate(pem);
        return 'ok';
      } catch (e) {
        return (e as CertificateError).code;
      }
    };
    expect(reason(selfSignedCertificate({ privateKey: rsa.privateKey }))).to.equal('ok');
    expect(reason(ecPem)).to.equal('not-rsa');
    expect(
      reason(
        selfSignedCertificate({
          privateKey: rsa.privateKey,
          notBefore: new Date('2020-01-01Z'),
          notAfter: new Date('2021-01-01Z'),
        }),
      ),
    ).to.equal('expired');
    // kubeseal checks only the expiry, so a certificate valid from 2090 is usable.
    expect(
      reason(
        selfSignedCertificate({
          privateKey: rsa.privateKey,
          notBefore: new Date('2090-01-01Z'),
          notAfter: new Date('2091-01-01Z'),
        }),
      ),
    ).to.equal('ok');
  });

  it("makes the controller's default certificate: empty subject and issuer, 10 years, its two critical extensions", () => {
    const notBefore = new Date('2026-03-04T05:06:07Z');
    const pem = controllerCertificate(rsa.privateKey, notBefore);
    const cert = new X509Certificate(pem);
    expect(cert.subject).to.equal(undefined);
    expect(cert.issuer).to.equal(undefined);
    expect(new Date(cert.validTo).getTime() - new Date(cert.validFrom).getTime()).to.equal(3650 * 86_400_000);
    expect(cert.verify(createPublicKey(rsa.privateKey))).to.equal(true);
    const file = join(scratchDir(), 'x509-helper-controller.pem');
    writeFileSync(file, pem);
    const text = openssl(['x509', '-in', file, '-noout', '-text']).toString();
    expect(text)
      .to.match(/Issuer:\s*\n/)
      .and.match(/Subject:\s*\n/);
    expect(text).to.match(/X509v3 Key Usage: critical\s+Encipher Only/);
    expect(text).to.match(/X509v3 Basic Constraints: critical\s+CA:TRUE/);
    expect(text).to.include('Not Before: Mar  4 05:06:07 2026 GMT').and.include('Not After : Mar  1 05:06:07 2036 GMT');
  });
});
