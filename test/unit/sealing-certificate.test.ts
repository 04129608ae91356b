import { expect } from 'chai';
import { CertificateError, parseSealingCertificate, scopeLabel, sealValue, type CertificateErrorCode } from '../../src/sealing/index.js';
import { openssl, testCert } from '../helpers/certs.js';
import { unsealValue } from '../helpers/unseal.js';

function codeOf(fn: () => unknown): CertificateErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(CertificateError);
    expect((err as Error).message).to.include('kubeseal_cert');
    return (err as CertificateError).code;
  }
  return undefined;
}

describe('sealing: parseSealingCertificate', function () {
  this.timeout(60000);

  it('returns the RSA key, validity, subject and DER fingerprint of a valid certificate', () => {
    const { certPem, keyPem, certPath } = testCert('rsa');
    const cert = parseSealingCertificate(certPem);
    expect(cert.publicKey.asymmetricKeyType).to.equal('rsa');
    expect(cert.subject).to.equal('CN=sealed-secret, O=sealed-secret');
    expect(cert.notBefore.getTime()).to.be.below(Date.now());
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).to.equal(30 * 24 * 3600 * 1000);
    const out = openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', certPath]).toString();
    const expected = out.trim().replace(/^.*=/, '').replace(/:/g, '').toLowerCase();
    expect(cert.fingerprint).to.match(/^[0-9a-f]{64}$/).and.equal(expected);
    const label = scopeLabel('strict', 'ns', 'name');
    expect(unsealValue(keyPem, sealValue(cert.publicKey, Buffer.from('ok'), label), label).toString()).to.equal('ok');
  });

  it('uses the first certificate of a chain', () => {
    const first = testCert('rsa');
    const second = testCert('rsa-other');
    const chain = `some preamble\n${first.certPem}\n${second.certPem}`;
    expect(parseSealingCertificate(chain).fingerprint).to.equal(parseSealingCertificate(first.certPem).fingerprint);
    const reversed = `${second.certPem}${first.certPem}`;
    expect(parseSealingCertificate(reversed).fingerprint).to.equal(parseSealingCertificate(second.certPem).fingerprint);
    expect(parseSealingCertificate(first.certPem).fingerprint).not.to.equal(parseSealingCertificate(second.certPem).fingerprint);
  });

  it('ignores a private key block before the certificate', () => {
    const { certPem, keyPem } = testCert('rsa');
    expect(parseSealingCertificate(keyPem + certPem).fingerprint).to.equal(parseSealingCertificate(certPem).fingerprint);
  });

  it('reports each unusable certificate with its own code', () => {
    const cases: [string, () => unknown, CertificateErrorCode][] = [
      ['empty', () => parseSealingCertificate(''), 'no-certificate'],
      ['only a key', () => parseSealingCertificate(testCert('rsa').keyPem), 'no-certificate'],
      ['not a string', () => parseSealingCertificate(undefined as unknown as string), 'no-certificate'],
      ['garbage body', () => parseSealingCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), 'unparseable'],
      ['EC key', () => parseSealingCertificate(testCert('ec').certPem), 'not-rsa'],
      ['RSA-PSS key', () => parseSealingCertificate(testCert('rsa-pss').certPem), 'not-rsa'],
      ['expired', () => parseSealingCertificate(testCert('expired').certPem), 'expired'],
      ['not yet valid', () => parseSealingCertificate(testCert('not-yet-valid').certPem), 'not-yet-valid'],
    ];
    for (const [what, fn, code] of cases) expect(codeOf(fn), what).to.equal(code);
  });

  it('judges validity against the given time', () => {
    const expired = testCert('expired').certPem;
    expect(parseSealingCertificate(expired, new Date('2020-06-01T00:00:00Z')).notAfter.toISOString()).to.equal('2021-01-01T00:00:00.000Z');
    expect(codeOf(() => parseSealingCertificate(expired, new Date('2019-12-31T23:59:59Z')))).to.equal('not-yet-valid');
    expect(codeOf(() => parseSealingCertificate(expired, new Date('2021-01-01T00:00:01Z')))).to.equal('expired');
    const future = testCert('not-yet-valid').certPem;
    expect(parseSealingCertificate(future, new Date('2090-06-01T00:00:00Z')).notBefore.toISOString()).to.equal('2090-01-01T00:00:00.000Z');
  });

  it('names the dates in expiry messages', () => {
    expect(() => parseSealingCertificate(testCert('expired').certPem)).to.throw(CertificateError, /expired at 2021-01-01T00:00:00.000Z/);
    expect(() => parseSealingCertificate(testCert('not-yet-valid').certPem)).to.throw(CertificateError, /not valid before 2090-01-01/);
  });
});
