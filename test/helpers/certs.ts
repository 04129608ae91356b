import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controllerCertificate } from './x509.js';

/**
 * Test certificates. The default ones (`rsa`, `rsa-other`) look like the
 * Sealed Secrets controller's own: RSA 4096, empty subject and issuer,
 * valid for 10 years from now, made with node:crypto and the project's
 * X.509 helper (x509.ts). The others are made by the real `openssl` CLI,
 * so the code under test also meets material it did not produce itself.
 * Generated lazily once per test process into a temp dir (removed at exit)
 * because RSA key generation is slow, RSA 4096 above all.
 */

export type TestCertKind =
  | 'rsa' // a controller's default sealing certificate: RSA 4096, empty subject, 10 years
  | 'rsa-other' // another such certificate (a renewed controller key)
  | 'rsa-subject' // RSA 2048 with subject and issuer CN=sealed-secret, O=sealed-secret, 30 days (openssl)
  | 'rsa-4096' // RSA 4096 with that subject (openssl)
  | 'ec' // valid, but P-256
  | 'rsa-pss' // valid, but RSASSA-PSS (cannot encrypt)
  | 'expired' // RSA, 2020-01-01 .. 2021-01-01
  | 'not-yet-valid'; // RSA, 2090-01-01 .. 2091-01-01

export interface TestCert {
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

const SUBJ = '/CN=sealed-secret/O=sealed-secret';
let root: string | undefined;
const cache = new Map<TestCertKind, TestCert>();

/** Per-run scratch dir shared by the cert cache and tests that need files for openssl. */
export function scratchDir(): string {
  if (root === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'sealing-test-'));
    root = dir;
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return root;
}

export function openssl(args: string[], opts: { cwd?: string; input?: Buffer } = {}): Buffer {
  return execFileSync('openssl', args, { cwd: opts.cwd, input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function testCert(kind: TestCertKind): TestCert {
  const hit = cache.get(kind);
  if (hit) return hit;
  const dir = join(scratchDir(), kind);
  mkdirSync(dir, { recursive: true });
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  switch (kind) {
    case 'rsa':
    case 'rsa-other': {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 4096 });
      writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      writeFileSync(certPath, controllerCertificate(privateKey));
      break;
    }
    case 'rsa-subject':
      selfSigned(dir, ['-newkey', 'rsa:2048']);
      break;
    case 'rsa-4096':
      selfSigned(dir, ['-newkey', 'rsa:4096']);
      break;
    case 'ec':
      selfSigned(dir, ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']);
      break;
    case 'rsa-pss':
      selfSigned(dir, ['-newkey', 'rsa-pss', '-pkeyopt', 'rsa_keygen_bits:2048']);
      break;
    case 'expired':
      withDates(dir, '20200101000000Z', '20210101000000Z');
      break;
    case 'not-yet-valid':
      withDates(dir, '20900101000000Z', '20910101000000Z');
      break;
  }
  const cert = { certPath, keyPath, certPem: readFileSync(certPath, 'utf8'), keyPem: readFileSync(keyPath, 'utf8') };
  cache.set(kind, cert);
  return cert;
}

function selfSigned(dir: string, keyArgs: string[]): void {
  openssl(
    ['req', '-x509', ...keyArgs, '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '30', '-subj', SUBJ],
    { cwd: dir },
  );
}

/**
 * OpenSSL 3.0's `req`/`x509` cannot set arbitrary validity dates (no
 * `-not_before`), but `ca -selfsign` takes `-startdate`/`-enddate`; it
 * needs a throwaway CA database.
 */
function withDates(dir: string, start: string, end: string): void {
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '01\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = tca',
      '[tca]',
      'database = ./index.txt',
      'new_certs_dir = .',
      'serial = ./serial',
      'default_md = sha256',
      'policy = pol',
      'unique_subject = no',
      '[pol]',
      'commonName = supplied',
      'organizationName = optional',
      '',
    ].join('\n'),
  );
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'req.csr', '-subj', SUBJ], {
    cwd: dir,
  });
  openssl(
    [
      'ca',
      '-batch',
      '-config',
      'ca.cnf',
      '-selfsign',
      '-keyfile',
      'key.pem',
      '-in',
      'req.csr',
      '-out',
      'cert.pem',
      '-notext',
      '-startdate',
      start,
      '-enddate',
      end,
    ],
    { cwd: dir },
  );
}
