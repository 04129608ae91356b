import { expect } from 'chai';
import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  X509Certificate,
} from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { clone as cloneRepo, git, remoteHead as remoteHeadOf, repoUrl } from '../helpers/git.js';
import { unsealValue } from '../helpers/unseal.js';
import { controllerCertificate, selfSignedCertificate } from '../helpers/x509.js';

/**
 * The secret routes end to end: the embedded core (Config Store, Git server),
 * the manager and its HTTP API; results are checked with the real `git` CLI
 * and an independent implementation of the controller's decryption.
 */

const NS_WIDE = 'sealedsecrets.bitnami.com/namespace-wide';
const CLUSTER_WIDE = 'sealedsecrets.bitnami.com/cluster-wide';
const CERT_SHA = 'cluster-manager.factoryplus/cert-sha256';
const KEY_CERTS = 'cluster-manager.factoryplus/key-certs';

type Obj = Record<string, any>;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json: () => Obj;
}

const fingerprint = (pem: string) => createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');

describe('sealing API (HTTP → sealed manifest in the cluster repo)', function () {
  this.timeout(60_000);
  let s: ApiStack;
  let A: string; // the main cluster, RSA certificate throughout
  let B: string; // certificate problems and re-sealing
  const rsa = () => testCert('rsa');

  /** An HTTP call that sends the path exactly as given (fetch would normalise `..`). */
  const call = (
    method: string,
    path: string,
    opts: { body?: Buffer | string; chunks?: Buffer[]; auth?: string | null; headers?: Record<string, string> } = {},
  ) =>
    new Promise<Answer>((resolve, reject) => {
      const u = new URL(s.url);
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.auth !== null) headers.Authorization = opts.auth ?? s.admin;
      if (opts.body !== undefined) {
        headers['Content-Length'] = String(Buffer.byteLength(opts.body));
        headers['Content-Type'] ??= 'application/octet-stream';
      }
      const req = request({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text,
            json: () => JSON.parse(text) as Obj,
          });
        });
      });
      req.on('error', reject);
      if (opts.chunks) {
        for (const c of opts.chunks) req.write(c);
        req.end();
      } else req.end(opts.body);
    });
  const secretUrl = (cluster: string, ns: string, name: string, key: string, query = '') =>
    `/v1/cluster/${cluster}/secret/${ns}/${name}/${key}${query}`;
  const put = (cluster: string, ns: string, name: string, key: string, value: Buffer | string, query = '') =>
    call('PUT', secretUrl(cluster, ns, name, key, query), { body: value });
  const del = (cluster: string, ns: string, name: string, key: string, query = '') =>
    call('DELETE', secretUrl(cluster, ns, name, key, query));

  const edgeStatus = async (cluster: string, method: 'PUT' | 'DELETE', body?: Obj) => {
    const r = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.edgeStatus}/object/${cluster}`, {
      method,
      headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
      body: body && JSON.stringify(body),
    });
    if (r.status >= 300 && !(method === 'DELETE' && r.status === 404))
      throw new Error(`edge status ${method}: ${r.status}`);
  };
  const setCert = (cluster: string, pem: string) => edgeStatus(cluster, 'PUT', { kubeseal_cert: pem });

  const cloneUrl = (cluster: string) => repoUrl(s.t.core.endpoints.git, cluster, s.t.core.credentials.admin);
  const remoteHead = (cluster: string) => remoteHeadOf(cloneUrl(cluster));
  const clone = (cluster: string) => cloneRepo(cloneUrl(cluster));
  const subject = async (dir: string) => (await git(['log', '-1', '--format=%s'], dir)).trim();
  const manifestPath = (ns: string, name: string) => `edo/secrets/${ns}/${name}.yaml`;
  const parseYaml = (text: string): Obj => {
    const docs = parseAllDocuments(text);
    if (!Array.isArray(docs) || docs.length === 0) throw new Error('no documents');
    return docs[0].toJS() as Obj;
  };
  const manifest = (dir: string, ns: string, name: string): Obj =>
    parseYaml(readFileSync(join(dir, manifestPath(ns, name)), 'utf8'));
  const label = {
    strict: (ns: string, name: string) => Buffer.from(`${ns}/${name}`),
    ns: (ns: string) => Buffer.from(ns),
    cluster: () => Buffer.alloc(0),
  };

  /** Asserts that the remote is where it was: the calls made in `fn` wrote nothing. */
  const unchanged = async <T>(cluster: string, fn: () => Promise<T>): Promise<T> => {
    const before = await remoteHead(cluster);
    const out = await fn();
    expect(await remoteHead(cluster), 'the repo head moved').to.equal(before);
    return out;
  };

  before(async () => {
    rsa();
    s = await startApiStack();
    [A, B] = await Promise.all([s.createCluster('sealing_a'), s.createCluster('sealing_b')]);
    await setCert(A, rsa().certPem);
  });
  after(async () => {
    await s?.stop();
  });

  describe('interoperability', () => {
    it("values sealed for a key pair and certificate made with node:crypto open with the controller's algorithm in every scope, and only with the right label", async () => {
      // A controller's key: RSA 4096 and a self-signed certificate, made here with node:crypto alone.
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 4096 });
      const certPem = selfSignedCertificate({ privateKey, commonName: 'sealed-secret', organisation: 'sealed-secret' });
      const C = await s.createCluster('sealing_interop');
      await setCert(C, certPem);
      const cases = [
        { scope: 'strict', ns: 'interop', name: 'strict-secret', label: label.strict('interop', 'strict-secret') },
        { scope: 'namespace-wide', ns: 'interop', name: 'ns-secret', label: label.ns('interop') },
        { scope: 'cluster-wide', ns: 'interop', name: 'cluster-secret', label: label.cluster() },
      ];
      const values = new Map<string, Buffer>();
      for (const c of cases) {
        for (const key of ['a', 'b.json', 'c_bin']) {
          const value = key === 'c_bin' ? randomBytes(4096) : Buffer.from(`${c.scope}:${key}:${randomUUID()}`);
          values.set(`${c.name}/${key}`, value);
          const r = await put(C, c.ns, c.name, key, value, `?scope=${c.scope}`);
          expect(r.status, r.text).to.equal(204);
        }
      }
      const dir = await clone(C); // the real git CLI
      for (const c of cases) {
        const m = manifest(dir, c.ns, c.name);
        expect(m.metadata.annotations?.[CERT_SHA]).to.equal(fingerprint(certPem));
        for (const key of ['a', 'b.json', 'c_bin']) {
          const sealed = m.spec.encryptedData[key] as string;
          expect(
            unsealValue(privateKey, sealed, c.label).equals(values.get(`${c.name}/${key}`)!),
            `${c.scope} ${key}`,
          ).to.equal(true);
          for (const other of cases.filter((o) => o !== c)) {
            expect(
              () => unsealValue(privateKey, sealed, other.label),
              `${c.scope} ${key} opened with the ${other.scope} label`,
            ).to.throw();
          }
        }
      }
    });
  });

  describe('PUT', () => {
    it('seals a binary body into edo/secrets/<ns>/<name>.yaml, committed and pushed before the 204', async () => {
      const value = Buffer.concat([
        Buffer.from([0, 0xff, 0xfe, 0x80, 0x0a, 0x0d]),
        randomBytes(3000),
        Buffer.from('\u00e9\u0000end'),
      ]);
      const r = await put(A, 'app-ns', 'db-creds', 'password', value);
      expect(r.status, r.text).to.equal(204);
      expect(r.body.length).to.equal(0);
      // The push happened before the answer: a clone made right now has it.
      const dir = await clone(A);
      expect(await subject(dir)).to.equal('Updated sealed secret app-ns/db-creds/password');
      const m = manifest(dir, 'app-ns', 'db-creds');
      expect(m.apiVersion).to.equal('bitnami.com/v1alpha1');
      expect(m.kind).to.equal('SealedSecret');
      expect(m.metadata.namespace).to.equal('app-ns');
      expect(m.metadata.name).to.equal('db-creds');
      // kubeseal's shape: the template's metadata equals the SealedSecret's, no `data`.
      expect(m.spec.template).to.deep.equal({
        metadata: { namespace: 'app-ns', name: 'db-creds', annotations: { [CERT_SHA]: fingerprint(rsa().certPem) } },
        type: 'Opaque',
      });
      expect(m.spec.template.metadata).to.deep.equal(m.metadata);
      expect(Object.keys(m.spec.encryptedData)).to.deep.equal(['password']);
      const sealed = m.spec.encryptedData.password as string;
      expect(sealed).to.match(/^[A-Za-z0-9+/]+=*$/);
      expect(unsealValue(rsa().keyPem, sealed, label.strict('app-ns', 'db-creds')).equals(value)).to.equal(true);
      // Strict scope: the label binds it to this namespace/name.
      expect(() => unsealValue(rsa().keyPem, sealed, label.ns('app-ns'))).to.throw();
      expect(() => unsealValue(rsa().keyPem, sealed, label.strict('app-ns', 'other'))).to.throw();
      const ann = (m.metadata.annotations ?? {}) as Obj;
      expect(ann[NS_WIDE]).to.equal(undefined);
      expect(ann[CLUSTER_WIDE]).to.equal(undefined);
      expect(ann[CERT_SHA]).to.equal(fingerprint(rsa().certPem));
    });

    it('adds further keys to the same file, each decrypting to exactly its bytes', async () => {
      const user = Buffer.from('admin');
      const long = randomBytes(70_000);
      expect((await put(A, 'app-ns', 'db-creds', 'username', user)).status).to.equal(204);
      expect((await put(A, 'app-ns', 'db-creds', 'blob.bin', long)).status).to.equal(204);
      const dir = await clone(A);
      const m = manifest(dir, 'app-ns', 'db-creds');
      expect(Object.keys(m.spec.encryptedData).sort()).to.deep.equal(['blob.bin', 'password', 'username']);
      expect(
        unsealValue(rsa().keyPem, m.spec.encryptedData.username, label.strict('app-ns', 'db-creds')).equals(user),
      ).to.equal(true);
      expect(
        unsealValue(rsa().keyPem, m.spec.encryptedData['blob.bin'], label.strict('app-ns', 'db-creds')).equals(long),
      ).to.equal(true);
      expect(await subject(dir)).to.equal('Updated sealed secret app-ns/db-creds/blob.bin');
    });

    it('overwrites a key with a fresh ciphertext of the new value', async () => {
      expect((await put(A, 'app-ns', 'rotate', 'k', 'first')).status).to.equal(204);
      const before = manifest(await clone(A), 'app-ns', 'rotate').spec.encryptedData.k as string;
      expect((await put(A, 'app-ns', 'rotate', 'k', 'second')).status).to.equal(204);
      const after = manifest(await clone(A), 'app-ns', 'rotate').spec.encryptedData.k as string;
      expect(after).to.not.equal(before);
      expect(unsealValue(rsa().keyPem, after, label.strict('app-ns', 'rotate')).toString()).to.equal('second');
    });

    it('?scope=namespace-wide seals with the namespace as label and annotates the manifest', async () => {
      const value = randomBytes(64);
      const r = await put(A, 'app-ns', 'ns-wide', 'token', value, '?scope=namespace-wide');
      expect(r.status, r.text).to.equal(204);
      const m = manifest(await clone(A), 'app-ns', 'ns-wide');
      const sealed = m.spec.encryptedData.token as string;
      expect(unsealValue(rsa().keyPem, sealed, label.ns('app-ns')).equals(value)).to.equal(true);
      expect(() => unsealValue(rsa().keyPem, sealed, label.strict('app-ns', 'ns-wide'))).to.throw();
      expect(() => unsealValue(rsa().keyPem, sealed, label.cluster())).to.throw();
      expect(m.metadata.annotations[NS_WIDE]).to.equal('true');
      expect(m.metadata.annotations[CLUSTER_WIDE]).to.equal(undefined);
      expect(m.metadata.annotations[CERT_SHA]).to.equal(fingerprint(rsa().certPem));
      // As kubeseal writes it: the scope annotation in both metadata blocks.
      expect(m.spec.template.metadata.annotations[NS_WIDE]).to.equal('true');
      expect(m.spec.template.metadata).to.deep.equal(m.metadata);
    });

    it("a file in the original shape (`data: null`, no template annotations), pushed with git, takes kubeseal's shape on its next edit", async () => {
      const dir = await clone(A);
      const path = manifestPath('app-ns', 'old-shape');
      const old = [
        '---',
        'apiVersion: bitnami.com/v1alpha1',
        'kind: SealedSecret',
        'metadata:',
        '  namespace: app-ns',
        '  name: old-shape',
        '  annotations:',
        `    ${NS_WIDE}: "true"`,
        'spec:',
        '  encryptedData:',
        `    a: ${(manifest(dir, 'app-ns', 'ns-wide').spec.encryptedData as Obj).token}`,
        '  template:',
        '    data: null',
        '    metadata:',
        '      namespace: app-ns',
        '      name: old-shape',
        '    type: Opaque',
        '',
      ].join('\n');
      writeFileSync(join(dir, path), old);
      await git(['add', path], dir);
      await git(['commit', '-q', '-m', 'by hand: old shape'], dir);
      await git(['push', '-q', 'origin', 'HEAD:main'], dir);
      expect((await put(A, 'app-ns', 'old-shape', 'b', 'bee', '?scope=namespace-wide')).status).to.equal(204);
      const text = readFileSync(join(await clone(A), path), 'utf8');
      expect(text).not.to.match(/data:\s*null/);
      const m = parseYaml(text);
      expect(Object.keys(m.spec.encryptedData).sort()).to.deep.equal(['a', 'b']);
      expect(Object.hasOwn(m.spec.template, 'data')).to.equal(false);
      expect(m.spec.template.metadata.annotations[NS_WIDE]).to.equal('true');
      expect(m.spec.template.metadata).to.deep.equal(m.metadata);
      expect(unsealValue(rsa().keyPem, m.spec.encryptedData.b, label.ns('app-ns')).toString()).to.equal('bee');
      expect((await del(A, 'app-ns', 'old-shape', 'a')).status).to.equal(204);
      expect((await del(A, 'app-ns', 'old-shape', 'b')).status).to.equal(204);
    });

    it('?scope=cluster-wide seals with the empty label and annotates the manifest', async () => {
      const value = randomBytes(64);
      const r = await put(A, 'app-ns', 'cl-wide', 'token', value, '?scope=cluster-wide');
      expect(r.status, r.text).to.equal(204);
      const m = manifest(await clone(A), 'app-ns', 'cl-wide');
      const sealed = m.spec.encryptedData.token as string;
      expect(unsealValue(rsa().keyPem, sealed, label.cluster()).equals(value)).to.equal(true);
      expect(() => unsealValue(rsa().keyPem, sealed, label.ns('app-ns'))).to.throw();
      expect(() => unsealValue(rsa().keyPem, sealed, label.strict('app-ns', 'cl-wide'))).to.throw();
      expect(m.metadata.annotations[CLUSTER_WIDE]).to.equal('true');
      expect(m.metadata.annotations[NS_WIDE]).to.equal(undefined);
      expect(m.metadata.annotations[CERT_SHA]).to.equal(fingerprint(rsa().certPem));
      expect(m.spec.template.metadata.annotations[CLUSTER_WIDE]).to.equal('true');
      expect(m.spec.template.metadata).to.deep.equal(m.metadata);
    });

    it('?scope=strict is the default, explicitly', async () => {
      expect((await put(A, 'app-ns', 'strict-explicit', 'k', 'v', '?scope=strict')).status).to.equal(204);
      const m = manifest(await clone(A), 'app-ns', 'strict-explicit');
      expect(
        unsealValue(rsa().keyPem, m.spec.encryptedData.k, label.strict('app-ns', 'strict-explicit')).toString(),
      ).to.equal('v');
    });

    it('refuses a key in another scope than the keys already in the file (409), writing nothing', async () => {
      await unchanged(A, async () => {
        const r = await put(A, 'app-ns', 'db-creds', 'other', 'x', '?scope=cluster-wide');
        expect(r.status, r.text).to.equal(409);
        expect(r.json().reason).to.equal('scope-mismatch');
      });
    });

    it('a bad scope is a 400 and writes nothing', async () => {
      await unchanged(A, async () => {
        for (const q of ['?scope=bogus', '?scope=', '?scope=Strict', '?scope=strict&scope=cluster-wide']) {
          const r = await put(A, 'app-ns', 'bad-scope', 'k', 'v', q);
          expect(r.status, `${q}: ${r.text}`).to.equal(400);
          expect(r.json().message, q).to.be.a('string');
        }
      });
    });

    it('a body over 1 MiB is a 413 and writes nothing; exactly 1 MiB is accepted', async () => {
      await unchanged(A, async () => {
        const declared = await put(A, 'app-ns', 'big', 'k', Buffer.alloc(1024 * 1024 + 1, 7));
        expect(declared.status, declared.text).to.equal(413);
        expect(declared.json().message).to.be.a('string');
        expect(declared.json().reason).to.equal('value-too-large');
      });
      const exact = randomBytes(1024 * 1024);
      const r = await put(A, 'app-ns', 'big', 'k', exact);
      expect(r.status, r.text).to.equal(204);
      const m = manifest(await clone(A), 'app-ns', 'big');
      expect(unsealValue(rsa().keyPem, m.spec.encryptedData.k, label.strict('app-ns', 'big')).equals(exact)).to.equal(
        true,
      );
    });

    it('two values that together exceed 1 MiB: the second PUT, and its dry run, are 413 with a reason and the repo is unchanged', async () => {
      const first = randomBytes(700 * 1024);
      expect((await put(A, 'size-ns', 'pair', 'first', first)).status).to.equal(204);
      const before = await clone(A);
      const headBefore = (await git(['rev-parse', 'HEAD'], before)).trim();
      const fileBefore = readFileSync(join(before, manifestPath('size-ns', 'pair')), 'utf8');
      const second = randomBytes(1024 * 1024 - first.length + 1);
      await unchanged(A, async () => {
        for (const q of ['', '?dryrun']) {
          const r = await put(A, 'size-ns', 'pair', 'second', second, q);
          expect(r.status, `${q}: ${r.text}`).to.equal(413);
          expect(r.json().reason, q).to.equal('secret-too-large');
          expect(r.json().message, q).to.match(/1 MiB/);
        }
      });
      // A fresh clone by the real git CLI: same commit, same file, only the first key.
      const after = await clone(A);
      expect((await git(['rev-parse', 'HEAD'], after)).trim()).to.equal(headBefore);
      expect(readFileSync(join(after, manifestPath('size-ns', 'pair')), 'utf8')).to.equal(fileBefore);
      expect(Object.keys(manifest(after, 'size-ns', 'pair').spec.encryptedData)).to.deep.equal(['first']);
      // Exactly 1 MiB in total is what Kubernetes still takes.
      expect((await put(A, 'size-ns', 'pair', 'second', second.subarray(1))).status).to.equal(204);
      const m = manifest(await clone(A), 'size-ns', 'pair');
      expect(
        unsealValue(rsa().keyPem, m.spec.encryptedData.second, label.strict('size-ns', 'pair')).equals(
          second.subarray(1),
        ),
      ).to.equal(true);
    });

    it('a streamed (chunked, no Content-Length) body over 1 MiB is answered 413 without resetting the connection, and writes nothing', async () => {
      // The client is still sending when the limit is hit, as any streaming
      // uploader would be: the server must answer 413 and let the rest of the
      // body drain (its answer says keep-alive), not reset the connection,
      // which makes clients lose the answer.
      const outcome = await unchanged(
        A,
        () =>
          new Promise<{ received: string; error?: string }>((resolve) => {
            const u = new URL(s.url);
            const sock = connect(Number(u.port), u.hostname);
            let received = '';
            let error: string | undefined;
            sock.on('data', (d) => {
              received += d.toString('latin1');
            });
            sock.on('error', (e) => {
              error = e.message;
            });
            sock.on('close', () => resolve({ received, error }));
            sock.write(
              `PUT ${secretUrl(A, 'app-ns', 'big-stream', 'k')} HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: ${s.admin}\r\n` +
                'Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n',
            );
            let i = 0;
            const tick = setInterval(() => {
              if (sock.destroyed) {
                clearInterval(tick);
                return;
              }
              if (i++ < 8) {
                const chunk = Buffer.alloc(256 * 1024, 8);
                sock.write(`${chunk.length.toString(16)}\r\n`);
                sock.write(chunk);
                sock.write('\r\n');
              } else {
                clearInterval(tick);
                sock.end('0\r\n\r\n');
              }
            }, 40);
          }),
      );
      expect(outcome.received.split('\r\n')[0]).to.match(/^HTTP\/1\.1 413 /);
      expect(outcome.error, 'the connection was reset while the client was still sending').to.equal(undefined);
    });

    it('invalid namespace, name or key is a 400 and writes nothing', async () => {
      const bad: Array<[string, string, string]> = [
        ['App-NS', 'n', 'k'], // uppercase namespace
        ['app-ns', 'DB', 'k'], // uppercase name
        ['n'.repeat(64), 'n', 'k'], // 64-char namespace
        ['..', 'n', 'k'],
        ['app-ns', '..', 'k'],
        ['app-ns', 'n', '..'],
        ['app-ns', '%2E%2E', 'k'],
        ['app-ns', 'a%2Fb', 'k'], // percent-encoded slash in the name
        ['a%2Fb', 'n', 'k'],
        ['app-ns', 'n', 'a%2Fb'], // slash in the key
        ['app-ns', 'n', 'a%20b'], // space in the key
        ['app-ns', 'n', 'k%00'],
        ['app-ns', 'n.', 'k'],
        ['-ns', 'n', 'k'],
        ['app.ns', 'n', 'k'], // namespaces are labels: no dots
        ['app-ns', 'n', 'k'.repeat(254)],
      ];
      await unchanged(A, async () => {
        for (const [ns, name, key] of bad) {
          const r = await put(A, ns, name, key, 'v');
          expect(r.status, `PUT ${ns}/${name}/${key}: ${r.text}`).to.equal(400);
          const d = await del(A, ns, name, key);
          expect(d.status, `DELETE ${ns}/${name}/${key}: ${d.text}`).to.equal(400);
        }
      });
      // The boundaries themselves are fine.
      const ns63 = 'n'.repeat(63);
      expect((await put(A, ns63, 'a.b-c', 'K_e-y.1', 'v')).status).to.equal(204);
      expect(existsSync(join(await clone(A), manifestPath(ns63, 'a.b-c')))).to.equal(true);
    });

    it('an empty namespace, name or key is a 400 and writes nothing', async () => {
      await unchanged(A, async () => {
        for (const p of [
          secretUrl(A, 'app-ns', 'n', ''),
          secretUrl(A, '', 'n', 'k'),
          secretUrl(A, 'app-ns', '', 'k'),
        ]) {
          const r = await call('PUT', p, { body: 'v' });
          expect(r.status, `PUT ${p}: ${r.text}`).to.equal(400);
        }
      });
    });

    it('a key Kubernetes would reject ("." or a leading "..") is a 400 and writes nothing', async () => {
      // apimachinery IsConfigMapKey: must not be '.', '..', nor start with '..'.
      await unchanged(A, async () => {
        for (const key of ['.', '..data', '..x']) {
          const r = await put(A, 'app-ns', 'dots', key, 'v');
          expect(r.status, `${key}: ${r.text}`).to.equal(400);
        }
      });
    });

    it('needs authentication (401) and writes nothing', async () => {
      await unchanged(A, async () => {
        const r = await call('PUT', secretUrl(A, 'app-ns', 'anon', 'k'), { body: 'v', auth: null });
        expect(r.status).to.equal(401);
        const w = await call('PUT', secretUrl(A, 'app-ns', 'anon', 'k'), {
          body: 'v',
          auth: `Basic ${Buffer.from('admin:wrong').toString('base64')}`,
        });
        expect(w.status).to.equal(401);
      });
    });

    it('an unknown cluster is a 404', async () => {
      const r = await put(randomUUID(), 'app-ns', 'n', 'k', 'v');
      expect(r.status, r.text).to.equal(404);
    });
  });

  describe('dry run', () => {
    it('PUT ?dryrun answers 200 with the manifest and writes nothing', async () => {
      const value = randomBytes(200);
      await unchanged(A, async () => {
        for (const q of ['?dryrun', '?dryrun=true', '?dryrun&scope=strict']) {
          const r = await put(A, 'app-ns', 'db-creds', 'dry', value, q);
          expect(r.status, `${q}: ${r.text}`).to.equal(200);
          expect(String(r.headers['content-type'])).to.match(/yaml/);
          const m = parseYaml(r.text);
          expect(m.kind).to.equal('SealedSecret');
          expect(m.metadata).to.include({ namespace: 'app-ns', name: 'db-creds' });
          // The existing keys are in it, with the new one.
          expect(Object.keys(m.spec.encryptedData).sort()).to.deep.equal(['blob.bin', 'dry', 'password', 'username']);
          expect(
            unsealValue(rsa().keyPem, m.spec.encryptedData.dry, label.strict('app-ns', 'db-creds')).equals(value),
          ).to.equal(true);
        }
        const fresh = await put(A, 'dry-ns', 'fresh', 'k', 'v', '?dryrun&scope=namespace-wide');
        expect(fresh.status, fresh.text).to.equal(200);
        const m = parseYaml(fresh.text);
        expect(m.metadata.annotations[NS_WIDE]).to.equal('true');
        expect(unsealValue(rsa().keyPem, m.spec.encryptedData.k, label.ns('dry-ns')).toString()).to.equal('v');
      });
      const dir = await clone(A);
      expect(manifest(dir, 'app-ns', 'db-creds').spec.encryptedData.dry).to.equal(undefined);
      expect(existsSync(join(dir, 'edo/secrets/dry-ns'))).to.equal(false);
    });

    it('DELETE ?dryrun answers 200 and writes nothing', async () => {
      await unchanged(A, async () => {
        const r = await del(A, 'app-ns', 'db-creds', 'username', '?dryrun');
        expect(r.status, r.text).to.equal(200);
        const none = await del(A, 'app-ns', 'nothing-here', 'k', '?dryrun');
        expect(none.status, none.text).to.equal(200);
      });
      expect(manifest(await clone(A), 'app-ns', 'db-creds').spec.encryptedData.username).to.be.a('string');
    });
  });

  describe('DELETE', () => {
    it('removes one key and keeps the others', async () => {
      expect((await put(A, 'del-ns', 'pair', 'a', 'A')).status).to.equal(204);
      expect((await put(A, 'del-ns', 'pair', 'b', 'B')).status).to.equal(204);
      const r = await del(A, 'del-ns', 'pair', 'a');
      expect(r.status, r.text).to.equal(204);
      const dir = await clone(A);
      expect(await subject(dir)).to.equal('Remove sealed secret del-ns/pair/a.');
      const m = manifest(dir, 'del-ns', 'pair');
      expect(Object.keys(m.spec.encryptedData)).to.deep.equal(['b']);
      expect(unsealValue(rsa().keyPem, m.spec.encryptedData.b, label.strict('del-ns', 'pair')).toString()).to.equal(
        'B',
      );
      expect(m.metadata.annotations[CERT_SHA]).to.equal(fingerprint(rsa().certPem));
    });

    it('removes the file with its last key', async () => {
      const r = await del(A, 'del-ns', 'pair', 'b');
      expect(r.status, r.text).to.equal(204);
      const dir = await clone(A);
      expect(await subject(dir)).to.equal('Remove sealed secret del-ns/pair/b.');
      expect(existsSync(join(dir, manifestPath('del-ns', 'pair')))).to.equal(false);
    });

    it('is a 204 when nothing existed, and writes nothing', async () => {
      await unchanged(A, async () => {
        expect((await del(A, 'del-ns', 'pair', 'b')).status).to.equal(204);
        expect((await del(A, 'never-ns', 'never', 'k')).status).to.equal(204);
        expect((await del(A, 'app-ns', 'db-creds', 'no-such-key')).status).to.equal(204);
      });
    });
  });

  describe('listing', () => {
    it('GET /secret lists namespaces, names, keys, scopes and fingerprints without any ciphertext', async () => {
      const r = await call('GET', `/v1/cluster/${A}/secret`);
      expect(r.status, r.text).to.equal(200);
      const list = r.json() as unknown as Obj[];
      expect(list).to.be.an('array');
      const byPath = new Map(list.map((e) => [e.path as string, e]));
      const fp = fingerprint(rsa().certPem);
      expect(byPath.get(manifestPath('app-ns', 'db-creds'))).to.deep.include({
        namespace: 'app-ns',
        name: 'db-creds',
        scope: 'strict',
        keys: ['blob.bin', 'password', 'username'],
        certFingerprints: { 'blob.bin': fp, password: fp, username: fp },
      });
      expect(byPath.get(manifestPath('app-ns', 'ns-wide'))).to.deep.include({
        scope: 'namespace-wide',
        keys: ['token'],
      });
      expect(byPath.get(manifestPath('app-ns', 'cl-wide'))).to.deep.include({ scope: 'cluster-wide', keys: ['token'] });
      expect(byPath.has(manifestPath('del-ns', 'pair'))).to.equal(false);
      // No ciphertext anywhere in the answer.
      const dir = await clone(A);
      const files = (await git(['ls-files', 'edo/secrets'], dir)).trim().split('\n');
      let ciphertexts = 0;
      for (const f of files) {
        for (const c of Object.values(parseYaml(readFileSync(join(dir, f), 'utf8')).spec.encryptedData) as string[]) {
          ciphertexts++;
          expect(r.text.includes(c.slice(0, 40)), `ciphertext of ${f} in the listing`).to.equal(false);
        }
      }
      expect(ciphertexts).to.be.greaterThan(5);
    });

    it('GET /secret/{ns}/{name} describes one secret; 404 when absent, 400 when invalid', async () => {
      const r = await call('GET', `/v1/cluster/${A}/secret/app-ns/db-creds`);
      expect(r.status, r.text).to.equal(200);
      expect(r.json()).to.deep.include({
        namespace: 'app-ns',
        name: 'db-creds',
        scope: 'strict',
        keys: ['blob.bin', 'password', 'username'],
      });
      const m = manifest(await clone(A), 'app-ns', 'db-creds');
      for (const c of Object.values(m.spec.encryptedData) as string[])
        expect(r.text.includes(c.slice(0, 40))).to.equal(false);
      expect((await call('GET', `/v1/cluster/${A}/secret/app-ns/absent`)).status).to.equal(404);
      expect((await call('GET', `/v1/cluster/${A}/secret/App-NS/db-creds`)).status).to.equal(400);
      expect((await call('GET', `/v1/cluster/${A}/secret/app-ns/a%2Fb`)).status).to.equal(400);
    });

    it('the cluster status carries the secret count, following writes', async () => {
      const list = (await call('GET', `/v1/cluster/${A}/secret`)).json() as unknown as Obj[];
      const keys = list.reduce((n, e) => n + (e.keys as string[]).length, 0);
      const st = await call('GET', `/v1/cluster/${A}/status`);
      expect(st.status).to.equal(200);
      expect(st.json().secrets?.count).to.equal(keys);
      expect((await put(A, 'count-ns', 'c', 'k', 'v')).status).to.equal(204);
      expect((await call('GET', `/v1/cluster/${A}/status`)).json().secrets?.count).to.equal(keys + 1);
      expect((await del(A, 'count-ns', 'c', 'k')).status).to.equal(204);
      expect((await call('GET', `/v1/cluster/${A}/status`)).json().secrets?.count).to.equal(keys);
    });
  });

  describe('certificate problems (nothing is written)', () => {
    it('no Edge cluster status entry: 404 for PUT and DELETE', async () => {
      await edgeStatus(B, 'DELETE');
      await unchanged(B, async () => {
        const p = await put(B, 'ns', 'n', 'k', 'v');
        expect(p.status, p.text).to.equal(404);
        const d = await del(B, 'ns', 'n', 'k');
        expect(d.status, d.text).to.equal(404);
        const dry = await put(B, 'ns', 'n', 'k', 'v', '?dryrun');
        expect(dry.status, dry.text).to.equal(404);
      });
    });

    it('an entry without kubeseal_cert: 503 for PUT; DELETE needs no certificate', async () => {
      await edgeStatus(B, 'PUT', { other: 'property' });
      await unchanged(B, async () => {
        const p = await put(B, 'ns', 'n', 'k', 'v');
        expect(p.status, p.text).to.equal(503);
        expect(p.json().reason).to.equal('no-certificate');
        expect(p.json().message).to.match(/kubeseal_cert/);
        const d = await del(B, 'ns', 'n', 'k');
        expect(d.status, d.text).to.equal(204);
      });
    });

    it('EC, RSA-PSS, expired and garbage certificates, and a bundle kubeseal refuses, are each refused with a distinct reason', async () => {
      const garbagePem = '-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGUgYXQgYWxs\n-----END CERTIFICATE-----\n';
      const cases: Array<[string, string]> = [
        ['ec', testCert('ec').certPem],
        ['rsa-pss', testCert('rsa-pss').certPem],
        ['expired', testCert('expired').certPem],
        ['garbage PEM', garbagePem],
        // kubeseal parses every CERTIFICATE block of the bundle and refuses it if one fails.
        ['valid certificate then garbage PEM', `${rsa().certPem}${garbagePem}`],
        ['garbage text', 'this is not a certificate'],
      ];
      const reasons = new Map<string, string>();
      await unchanged(B, async () => {
        for (const [what, pem] of cases) {
          await setCert(B, pem);
          for (const q of ['', '?dryrun']) {
            const r = await put(B, 'ns', 'n', 'k', 'v', q);
            expect(r.status, `${what}${q}: ${r.text}`).to.equal(422);
            const body = r.json();
            expect(body.reason, what).to.be.a('string');
            expect(body.message, what).to.be.a('string').and.not.equal('internal error');
            reasons.set(what, body.reason as string);
          }
        }
      });
      expect(reasons.get('ec')).to.equal('not-rsa');
      expect(reasons.get('rsa-pss')).to.equal('not-rsa');
      expect(reasons.get('expired')).to.equal('expired');
      expect(reasons.get('garbage PEM')).to.equal('unparseable');
      expect(reasons.get('valid certificate then garbage PEM')).to.equal('unparseable');
      const distinct = new Set(['ec', 'expired', 'garbage PEM'].map((k) => reasons.get(k)));
      expect(distinct.size).to.equal(3);
      expect(reasons.get('garbage text')).to.not.be.oneOf(['not-rsa', 'expired']);
    });

    it('the first certificate of a chain is the one used', async () => {
      await setCert(B, `${rsa().certPem}\n${testCert('ec').certPem}`);
      expect((await put(B, 'chain-ns', 'n', 'k', 'chained')).status).to.equal(204);
      const m = manifest(await clone(B), 'chain-ns', 'n');
      expect(unsealValue(rsa().keyPem, m.spec.encryptedData.k, label.strict('chain-ns', 'n')).toString()).to.equal(
        'chained',
      );
      expect((await del(B, 'chain-ns', 'n', 'k')).status).to.equal(204);
    });
  });

  describe("the controller's own certificate", () => {
    /**
     * The Sealed Secrets controller's default certificate has an empty
     * subject and issuer (`--my-cn` defaults to ''), and its notBefore is
     * stamped by the cluster's clock, which may run ahead of ours.
     */
    it('seals, lists and reseals with an empty-subject certificate, one not valid yet, and one with a subject', async () => {
      const C = await s.createCluster('sealing_controller_cert');
      const key = createPrivateKey(rsa().keyPem);
      const ahead = new Date(Math.floor(Date.now() / 1000) * 1000 + 86_400_000);
      const cases: Array<{ what: string; pem: string; keyPem: string; subject: string; notYetValid: boolean }> = [
        { what: 'empty subject', pem: rsa().certPem, keyPem: rsa().keyPem, subject: '', notYetValid: false },
        {
          what: 'notBefore a day ahead',
          pem: controllerCertificate(key, ahead),
          keyPem: rsa().keyPem,
          subject: '',
          notYetValid: true,
        },
        {
          what: 'with a subject',
          pem: testCert('rsa-subject').certPem,
          keyPem: testCert('rsa-subject').keyPem,
          subject: 'CN=sealed-secret, O=sealed-secret',
          notYetValid: false,
        },
      ];
      for (const [i, c] of cases.entries()) {
        const x509 = new X509Certificate(c.pem);
        expect(x509.subject === undefined, c.what).to.equal(c.subject === '');
        await setCert(C, c.pem);
        const name = `ctl-${i}`;
        const dry = await unchanged(C, () => put(C, 'ctl-ns', name, 'k', 'v', '?dryrun'));
        expect(dry.status, `${c.what} dry run: ${dry.text}`).to.equal(200);
        const r = await put(C, 'ctl-ns', name, 'k', `value-${i}`);
        expect(r.status, `${c.what}: ${r.text}`).to.equal(204);
        const m = manifest(await clone(C), 'ctl-ns', name);
        expect(unsealValue(c.keyPem, m.spec.encryptedData.k, label.strict('ctl-ns', name)).toString(), c.what).to.equal(
          `value-${i}`,
        );

        const described = {
          fingerprint: fingerprint(c.pem),
          subject: c.subject,
          notBefore: new Date(x509.validFrom).toISOString(),
          notAfter: new Date(x509.validTo).toISOString(),
          notYetValid: c.notYetValid,
        };
        const list = await call('GET', `/v1/cluster/${C}/secret`);
        expect(list.status, list.text).to.equal(200);
        for (const e of list.json() as unknown as Obj[]) expect(e.sealingCertificate, c.what).to.deep.equal(described);
        const one = await call('GET', `/v1/cluster/${C}/secret/ctl-ns/${name}`);
        expect(one.json().sealingCertificate, c.what).to.deep.equal(described);
        const reseal = await call('POST', `/v1/cluster/${C}/secret-reseal`);
        expect(reseal.status, `${c.what}: ${reseal.text}`).to.equal(200);
        expect(reseal.json().certificate).to.equal(described.fingerprint);
        expect(reseal.json().sealingCertificate, c.what).to.deep.equal(described);
        expect((reseal.json().stale as Obj[]).map((e) => e.name as string).sort(), c.what).to.deep.equal(
          cases.slice(0, i).map((_, j) => `ctl-${j}`),
        );
      }
    });

    it('takes the certificate after a block with broken base64, as kubeseal does', async () => {
      const body = rsa()
        .certPem.replace(/-----[A-Z ]+-----/g, '')
        .trim();
      const broken = `-----BEGIN CERTIFICATE-----\n${body.slice(0, 70)}*${body.slice(71)}\n-----END CERTIFICATE-----\n`;
      await setCert(B, `${broken}${rsa().certPem}`);
      const r = await put(B, 'bundle-ns', 'n', 'k', 'after broken');
      expect(r.status, r.text).to.equal(204);
      const m = manifest(await clone(B), 'bundle-ns', 'n');
      expect(m.metadata.annotations[CERT_SHA]).to.equal(fingerprint(rsa().certPem));
      expect(unsealValue(rsa().keyPem, m.spec.encryptedData.k, label.strict('bundle-ns', 'n')).toString()).to.equal(
        'after broken',
      );
      expect((await del(B, 'bundle-ns', 'n', 'k')).status).to.equal(204);
    });
  });

  describe('re-sealing after a certificate change', () => {
    it('lists the keys sealed for the old certificate and says they must be PUT again', async () => {
      const oldCert = rsa();
      const newCert = testCert('rsa-other');
      const old = fingerprint(oldCert.certPem);
      const cur = fingerprint(newCert.certPem);
      await setCert(B, oldCert.certPem);
      for (const [name, key] of [
        ['app', 'a'],
        ['app', 'b'],
        ['other', 'c'],
      ]) {
        expect((await put(B, 'rs-ns', name, key, `${name}-${key}`)).status).to.equal(204);
      }
      const fresh = await call('POST', `/v1/cluster/${B}/secret-reseal`);
      expect(fresh.status, fresh.text).to.equal(200);
      expect(fresh.json().stale).to.deep.equal([]);
      expect(fresh.json().certificate).to.equal(old);

      await setCert(B, newCert.certPem);
      const r = await unchanged(B, () => call('POST', `/v1/cluster/${B}/secret-reseal`));
      expect(r.status, r.text).to.equal(200);
      const body = r.json();
      expect(body.certificate).to.equal(cur);
      const stale = (body.stale as Obj[]).map((e) => `${e.namespace}/${e.name}/${e.key}@${e.sealedFor}`).sort();
      expect(stale).to.deep.equal([`rs-ns/app/a@${old}`, `rs-ns/app/b@${old}`, `rs-ns/other/c@${old}`]);
      expect(body.message).to.match(/PUT/);

      // Sealing one value again takes it off the list.
      expect((await put(B, 'rs-ns', 'app', 'a', 'app-a2')).status).to.equal(204);
      const again = (await call('POST', `/v1/cluster/${B}/secret-reseal`)).json();
      expect((again.stale as Obj[]).map((e) => `${e.name}/${e.key}`).sort()).to.deep.equal(['app/b', 'other/c']);
      const m = manifest(await clone(B), 'rs-ns', 'app');
      expect(JSON.parse(m.metadata.annotations[KEY_CERTS] as string)).to.deep.equal({ a: cur, b: old });
      expect(unsealValue(newCert.keyPem, m.spec.encryptedData.a, label.strict('rs-ns', 'app')).toString()).to.equal(
        'app-a2',
      );
      const one = (await call('GET', `/v1/cluster/${B}/secret/rs-ns/app`)).json();
      expect(one.certFingerprints).to.deep.equal({ a: cur, b: old });
    });
  });

  describe('secrets never leak', () => {
    it('a sealed marker appears in no listing, status entry or git history', async () => {
      const marker = `LEAK-MARKER-${randomUUID()}`;
      const forms = [marker, Buffer.from(marker).toString('base64').slice(0, 24), Buffer.from(marker).toString('hex')];
      expect((await put(A, 'leak-ns', 'leaky', 'secret', `prefix ${marker} suffix`)).status).to.equal(204);
      expect((await put(A, 'leak-ns', 'leaky', 'other', marker)).status).to.equal(204);
      expect((await put(A, 'leak-ns', 'leak-wide', 'k', marker, '?scope=namespace-wide')).status).to.equal(204);
      expect((await put(A, 'leak-ns', 'leaky', 'dry', marker, '?dryrun')).status).to.equal(200);
      expect((await del(A, 'leak-ns', 'leaky', 'other')).status).to.equal(204);

      const answers: Array<[string, string]> = [];
      for (const p of [
        `/v1/cluster/${A}/secret`,
        `/v1/cluster/${A}/secret/leak-ns/leaky`,
        `/v1/cluster/${A}/secret/leak-ns/leak-wide`,
        `/v1/cluster/${A}/status`,
        '/v1/cluster',
      ]) {
        const r = await call('GET', p);
        expect(r.status, p).to.equal(200);
        answers.push([p, r.text]);
      }
      const reseal = await call('POST', `/v1/cluster/${A}/secret-reseal`);
      expect(reseal.status).to.equal(200);
      answers.push(['reseal', reseal.text]);
      await s.m.status.flush();
      const entry = await fetch(`${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.setupStatus}/object/${A}`, {
        headers: { Authorization: s.admin },
      });
      expect(entry.status).to.equal(200);
      answers.push(['setup status entry', await entry.text()]);
      const dir = await clone(A);
      answers.push(['git log -p --all', await git(['log', '-p', '--all'], dir)]);
      answers.push(['git log --all --format=%B', await git(['log', '--all', '--format=%B'], dir)]);
      for (const [where, text] of answers) {
        for (const f of forms) expect(text.includes(f), `${f} in ${where}`).to.equal(false);
        expect(text.includes('LEAK-MARKER'), `marker prefix in ${where}`).to.equal(false);
      }
      // The value really is in the repo, sealed.
      const m = manifest(dir, 'leak-ns', 'leaky');
      expect(
        unsealValue(rsa().keyPem, m.spec.encryptedData.secret, label.strict('leak-ns', 'leaky')).toString(),
      ).to.equal(`prefix ${marker} suffix`);
    });
  });
});
