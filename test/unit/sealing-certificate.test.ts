import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CertificateError,
  describeCertificate,
  parseSealingCertificate,
  type CertificateErrorCode,
} from '../../src/sealing/certificate.js';
import { scopeLabel, sealValue } from '../../src/sealing/seal.js';
import { openssl, scratchDir, testCert } from '../helpers/certs.js';
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

const opensslFingerprint = (certPath: string) =>
  openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', certPath])
    .toString()
    .trim()
    .replace(/^.*=/, '')
    .replace(/:/g, '')
    .toLowerCase();

/** The base64 lines of a PEM block. */
const bodyOf = (pem: string) => pem.replace(/-----[A-Z ]+-----/g, '').trim();
const block = (type: string, body: string, headers = '') =>
  `-----BEGIN ${type}-----\n${headers}${body}\n-----END ${type}-----\n`;
const wrap = (der: Buffer) =>
  der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');

describe('sealing: parseSealingCertificate', function () {
  this.timeout(120_000);

  it("reads the controller's default certificate: RSA 4096, empty subject and issuer, 10 years", () => {
    const { certPem, keyPem, certPath } = testCert('rsa');
    // The material is what the controller makes by default: node and openssl see no subject at all.
    const x509 = new X509Certificate(certPem);
    expect(x509.subject).to.equal(undefined);
    expect(x509.issuer).to.equal(undefined);
    expect(openssl(['x509', '-in', certPath, '-noout', '-subject', '-issuer']).toString()).to.match(
      /^subject=\s*\nissuer=\s*\n$/,
    );
    expect(openssl(['x509', '-in', certPath, '-noout', '-text']).toString()).to.include('Public-Key: (4096 bit)');

    const cert = parseSealingCertificate(certPem);
    expect(cert.subject).to.equal('');
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).to.equal(4096);
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).to.equal(3650 * 24 * 3600 * 1000);
    expect(cert.fingerprint)
      .to.match(/^[0-9a-f]{64}$/)
      .and.equal(opensslFingerprint(certPath));
    const label = scopeLabel('strict', 'ns', 'name');
    expect(unsealValue(keyPem, sealValue(cert.publicKey, Buffer.from('ok'), label), label).toString()).to.equal('ok');
    expect(describeCertificate(cert)).to.deep.include({
      subject: '',
      fingerprint: cert.fingerprint,
      notYetValid: false,
    });
  });

  it('reads a certificate with a subject too', () => {
    const { certPem, keyPem, certPath } = testCert('rsa-subject');
    const cert = parseSealingCertificate(certPem);
    expect(cert.subject).to.equal('CN=sealed-secret, O=sealed-secret');
    expect(cert.notBefore.getTime()).to.be.below(Date.now());
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).to.equal(30 * 24 * 3600 * 1000);
    expect(cert.fingerprint).to.equal(opensslFingerprint(certPath));
    const label = scopeLabel('strict', 'ns', 'name');
    expect(unsealValue(keyPem, sealValue(cert.publicKey, Buffer.from('ok'), label), label).toString()).to.equal('ok');
  });

  it('accepts a certificate whose notBefore is ahead, as kubeseal does (it checks only the expiry), and says so', () => {
    const future = testCert('not-yet-valid').certPem; // 2090-01-01 .. 2091-01-01
    const cert = parseSealingCertificate(future);
    expect(cert.notBefore.toISOString()).to.equal('2090-01-01T00:00:00.000Z');
    const d = describeCertificate(cert);
    expect(d.notYetValid).to.equal(true);
    expect(d.notBefore).to.equal('2090-01-01T00:00:00.000Z');
    expect(d.notAfter).to.equal('2091-01-01T00:00:00.000Z');
    expect(describeCertificate(cert, new Date('2090-06-01Z')).notYetValid).to.equal(false);
  });

  it('judges the expiry against the given time', () => {
    const expired = testCert('expired').certPem; // 2020-01-01 .. 2021-01-01
    expect(parseSealingCertificate(expired, new Date('2020-06-01T00:00:00Z')).notAfter.toISOString()).to.equal(
      '2021-01-01T00:00:00.000Z',
    );
    expect(parseSealingCertificate(expired, new Date('2019-12-31T23:59:59Z')).notBefore.toISOString()).to.equal(
      '2020-01-01T00:00:00.000Z',
    );
    expect(codeOf(() => parseSealingCertificate(expired, new Date('2021-01-01T00:00:01Z')))).to.equal('expired');
    expect(() => parseSealingCertificate(expired)).to.throw(CertificateError, /expired at 2021-01-01T00:00:00.000Z/);
  });

  it('reports each unusable certificate with its own code', () => {
    const cases: [string, () => unknown, CertificateErrorCode][] = [
      ['empty', () => parseSealingCertificate(''), 'no-certificate'],
      ['only a key', () => parseSealingCertificate(testCert('rsa').keyPem), 'no-certificate'],
      ['not a string', () => parseSealingCertificate(undefined as unknown as string), 'no-certificate'],
      [
        'garbage body',
        () => parseSealingCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
        'unparseable',
      ],
      ['EC key', () => parseSealingCertificate(testCert('ec').certPem), 'not-rsa'],
      ['RSA-PSS key', () => parseSealingCertificate(testCert('rsa-pss').certPem), 'not-rsa'],
      ['expired', () => parseSealingCertificate(testCert('expired').certPem), 'expired'],
    ];
    for (const [what, fn, code] of cases) expect(codeOf(fn), what).to.equal(code);
  });

  /**
   * kubeseal's verdict on certificate bundles. Expected results follow from
   * the Go code kubeseal runs, read at sealed-secrets 86671a8 and client-go
   * 32ce75a:
   *
   * - sealed-secrets pkg/kubeseal/kubeseal.go, ParseKey (l. 42-68): the
   *   bundle goes to client-go's ParseCertsPEM; only certs[0] is then looked
   *   at: it must hold an RSA key (l. 58) and not be past NotAfter (l. 63);
   *   NotBefore is never compared.
   * - client-go util/cert/pem.go, ParseCertsPEM (l. 35-62): it asks
   *   encoding/pem's Decode for block after block and stops at the first
   *   nil (l. 40-43); a block whose type is not CERTIFICATE, or that has
   *   headers, is passed over (l. 45-47); every other block goes through
   *   x509.ParseCertificate and the first failure fails the whole bundle
   *   (l. 49-52), wherever the block stands; no certificate at all is an
   *   error (l. 58-60).
   * - Go's encoding/pem Decode: a BEGIN counts only at the start of the
   *   text or after a newline; a candidate whose BEGIN line lacks its
   *   dashes, whose END is missing, names another type or has more text on
   *   its line, or whose body is not padded standard base64 (spaces, tabs,
   *   CR and LF aside) is not returned: Decode carries on looking for the
   *   next BEGIN, so a later good block is still found.
   * - Go's x509.ParseCertificate refuses bytes after the certificate
   *   ("x509: trailing data").
   */
  it("gives kubeseal's verdict on every bundle variant", () => {
    const A = testCert('rsa').certPem;
    const B = testCert('rsa-other').certPem;
    const fpA = parseSealingCertificate(A).fingerprint;
    const fpB = parseSealingCertificate(B).fingerprint;
    const der = new X509Certificate(A).raw;
    const bodyA = bodyOf(A);
    const notACertificate = block('CERTIFICATE', wrap(Buffer.from('this is not DER at all, only text')));
    const keyAsCertificate = block('CERTIFICATE', bodyOf(testCert('rsa-subject').keyPem));
    const brokenBase64 = block('CERTIFICATE', `${bodyA.slice(0, 100)}!${bodyA.slice(101)}`);
    const unpadded = block('CERTIFICATE', bodyA.replace(/=+$/, '').slice(0, -1));
    const indented = A.split('\n')
      .map((l) => (l ? `  ${l}` : l))
      .join('\n');

    type Verdict = { accept: string } | { refuse: CertificateErrorCode };
    const cases: Array<[string, string, Verdict]> = [
      ["the controller's certificate alone", A, { accept: fpA }],
      ['a chain: the first certificate is used', `${A}${B}`, { accept: fpA }],
      ['the chain the other way round', `${B}${A}`, { accept: fpB }],
      ['text before, between and after the blocks', `preamble\n${A}between\n${B}after`, { accept: fpA }],
      [
        'a private key block before the certificate (another type: passed over)',
        testCert('rsa').keyPem + A,
        { accept: fpA },
      ],
      ['a private key block after the certificate', A + testCert('rsa').keyPem, { accept: fpA }],
      [
        'a valid certificate followed by a CERTIFICATE block that is not a certificate',
        `${A}${notACertificate}`,
        { refuse: 'unparseable' },
      ],
      [
        'a valid certificate followed by a private key labelled CERTIFICATE',
        `${A}${keyAsCertificate}`,
        { refuse: 'unparseable' },
      ],
      [
        'a CERTIFICATE block holding a certificate with bytes after it',
        block('CERTIFICATE', wrap(Buffer.concat([der, Buffer.from([0, 0])]))),
        { refuse: 'unparseable' },
      ],
      ['a block with broken base64, then a valid certificate', `${brokenBase64}${A}`, { accept: fpA }],
      ['a block with unpadded base64, then a valid certificate', `${unpadded}${B}`, { accept: fpB }],
      ['only a block with broken base64', brokenBase64, { refuse: 'no-certificate' }],
      [
        'a CERTIFICATE block with headers (passed over), then another certificate',
        `${block('CERTIFICATE', bodyA, 'Proc-Type: 4,ENCRYPTED\n\n')}${B}`,
        { accept: fpB },
      ],
      [
        'only a CERTIFICATE block with headers',
        block('CERTIFICATE', bodyA, 'Comment: x\n\n'),
        { refuse: 'no-certificate' },
      ],
      [
        "a BEGIN CERTIFICATE closed by another type's END, then a certificate",
        `-----BEGIN CERTIFICATE-----\n${bodyA}\n-----END PRIVATE KEY-----\n${B}`,
        { accept: fpB },
      ],
      ['an END line with more text on it, then a certificate', `${A.trimEnd()} trailing words\n${B}`, { accept: fpB }],
      [
        'a BEGIN line without its closing dashes, then a certificate',
        `-----BEGIN CERTIFICATE\n${bodyA}\n-----END CERTIFICATE-----\n${B}`,
        { accept: fpB },
      ],
      ['a block with no END line', `-----BEGIN CERTIFICATE-----\n${bodyA}\n`, { refuse: 'no-certificate' }],
      ['an indented certificate (BEGIN not at a line start)', indented, { refuse: 'no-certificate' }],
      [
        'BEGIN after other text on the same line',
        `text -----BEGIN CERTIFICATE-----\n${bodyA}\n-----END CERTIFICATE-----\n`,
        { refuse: 'no-certificate' },
      ],
      ['CRLF line endings', A.replace(/\n/g, '\r\n'), { accept: fpA }],
      [
        'spaces and tabs inside the body and after the lines',
        `-----BEGIN CERTIFICATE-----  \n${bodyA.replace(/\n/g, ' \t\n  ')}\n-----END CERTIFICATE-----\t\n`,
        { accept: fpA },
      ],
      [
        'the body on one line',
        `-----BEGIN CERTIFICATE-----\n${bodyA.replace(/\n/g, '')}\n-----END CERTIFICATE-----`,
        { accept: fpA },
      ],
      ['an EC certificate first', `${testCert('ec').certPem}${A}`, { refuse: 'not-rsa' }],
      ['an EC certificate after the RSA one', `${A}${testCert('ec').certPem}`, { accept: fpA }],
      ['an expired certificate first', `${testCert('expired').certPem}${A}`, { refuse: 'expired' }],
      ['an expired certificate after a current one', `${A}${testCert('expired').certPem}`, { accept: fpA }],
      [
        'a certificate not valid before 2090',
        testCert('not-yet-valid').certPem,
        { accept: parseSealingCertificate(testCert('not-yet-valid').certPem).fingerprint },
      ],
      ['only a private key', testCert('rsa').keyPem, { refuse: 'no-certificate' }],
      ['empty text', '', { refuse: 'no-certificate' }],
      ['garbage DER in the only CERTIFICATE block', block('CERTIFICATE', 'AAAA'), { refuse: 'unparseable' }],
    ];
    for (const [what, pem, verdict] of cases) {
      if ('accept' in verdict) {
        let got: string | undefined;
        expect(() => {
          got = parseSealingCertificate(pem).fingerprint;
        }, what).not.to.throw();
        expect(got, what).to.equal(verdict.accept);
      } else {
        expect(
          codeOf(() => parseSealingCertificate(pem)),
          what,
        ).to.equal(verdict.refuse);
      }
    }
    // The bundles are real PEM where kubeseal reads them: openssl, too, finds the first certificate of a plain chain.
    const chain = join(scratchDir(), 'bundle-chain.pem');
    writeFileSync(chain, `${A}${B}`);
    expect(opensslFingerprint(chain)).to.equal(fpA);
  });
});
