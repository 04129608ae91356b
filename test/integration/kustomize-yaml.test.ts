import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { startApiStack, type ApiStack } from '../helpers/api.js';
import { testCert } from '../helpers/certs.js';
import { clone, git, repoUrl } from '../helpers/git.js';

/*
 * A cluster repo as Flux's kustomize-controller builds it. kubectl and
 * kustomize read YAML 1.1 (sigs.k8s.io/yaml over go-yaml v2), where `y`,
 * `on`, `Yes` and `true` are one boolean key and `2024-01-01` or `0b101`
 * are not strings at all. Secrets and a cluster whose names, namespaces,
 * keys and Helm values are such words are written through the HTTP API,
 * the repo is cloned with the real git CLI and built with the real
 * `kubectl kustomize`; everything must come out as it went in.
 */

const run = promisify(execFile);

type Obj = Record<string, any>;

const SECRETS = [
  {
    ns: 'yes',
    name: 'on',
    scope: 'strict',
    keys: [
      'y',
      'Y',
      'on',
      'ON',
      'Yes',
      'true',
      'n',
      'off',
      'No',
      'FALSE',
      '2024-01-01',
      '0b101',
      '1_000',
      '0o17',
      '017',
      '0X1F',
      '1e3',
      '1e1_0',
      '.inf',
      '-.Inf',
      '.NaN',
      'NULL',
      '12e03',
      'plain-key',
    ],
  },
  { ns: 'no', name: 'y', scope: 'namespace-wide', keys: ['2001-12-14t21', 'n', 'off'] },
  { ns: 'on', name: '2024-01-01', scope: 'cluster-wide', keys: ['0b101', '-1', '0x1F'] },
  { ns: 'off', name: '0b101', scope: 'strict', keys: ['1_000'] },
];

// No `<<` key: kustomize drops a map key `<<` however it is quoted or tagged (its merge-key handling), so none can pass.
const VALUES = {
  y: 'n',
  on: 'off',
  Yes: 'NO',
  true: 'False',
  '2024-01-01': '2024-01-01',
  '0b101': '0b101',
  '1_000': '1_000',
  '0o17': '0X1F',
  '1:20': '190:20:30',
  '~': 'null',
  '=': '=',
  '<<<': '<<',
  '.inf': '-.Inf',
  list: ['y', 'on', '1e3', '', '2001-12-14t21:59:43.10-05:00'],
  nested: { Off: { N: 'Y', '0x1F': 12, '1.5': 1.5 } },
};

describe('cluster repos as `kubectl kustomize` reads them', function () {
  this.timeout(120_000);
  let s: ApiStack;

  before(async () => {
    s = await startApiStack();
  });
  after(async () => {
    await s?.stop();
  });

  it('carries every namespace, name, key and value unchanged, however YAML 1.1 would read them plain', async () => {
    const cluster = await s.createCluster('kustomize_yaml', { namespace: 'yes', values: VALUES });
    const status = await fetch(
      `${s.t.core.endpoints.configdb}/v2/app/${s.config.uuids.app.edgeStatus}/object/${cluster}`,
      {
        method: 'PUT',
        headers: { Authorization: s.admin, 'Content-Type': 'application/json' },
        body: JSON.stringify({ kubeseal_cert: testCert('rsa').certPem }),
      },
    );
    expect(status.status).to.be.lessThan(300);
    for (const sec of SECRETS) {
      for (const key of sec.keys) {
        const r = await fetch(`${s.url}/v1/cluster/${cluster}/secret/${sec.ns}/${sec.name}/${key}?scope=${sec.scope}`, {
          method: 'PUT',
          headers: { Authorization: s.admin },
          body: `${sec.ns}/${sec.name}/${key}`,
        });
        expect(r.status, `${sec.ns}/${sec.name}/${key}: ${await r.text()}`).to.equal(204);
      }
    }

    // Flux's kustomize-controller generates a kustomization of every manifest when the path has none.
    const dir = await clone(repoUrl(s.t.core.endpoints.git, cluster, s.t.core.credentials.admin));
    const files = (await git(['ls-files', '*.yaml'], dir)).split('\n').filter(Boolean);
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n${files.map((f) => `  - ${f}\n`).join('')}`,
    );
    const built = await run('kubectl', ['kustomize', dir], { maxBuffer: 64 * 1024 * 1024 }).catch(
      (err: { stderr?: string; message: string }) => {
        throw new Error(`kubectl kustomize failed: ${err.stderr || err.message}`);
      },
    );
    const out = parseAllDocuments(built.stdout).map((d) => {
      expect(d.errors).to.deep.equal([]);
      return d.toJS() as Obj;
    });

    for (const sec of SECRETS) {
      const found = out.filter(
        (o) => o.kind === 'SealedSecret' && o.metadata?.namespace === sec.ns && o.metadata?.name === sec.name,
      );
      expect(found, `SealedSecret ${sec.ns}/${sec.name} in the build`).to.have.length(1);
      const m = found[0];
      expect(Object.keys(m.spec.encryptedData).sort(), `keys of ${sec.ns}/${sec.name}`).to.deep.equal(
        [...sec.keys].sort(),
      );
      // The ciphertexts, annotations and template as the service meant them (read as YAML 1.2 from the clone).
      const meant = parseAllDocuments(
        readFileSync(join(dir, `edo/secrets/${sec.ns}/${sec.name}.yaml`), 'utf8'),
      )[0]!.toJS() as Obj;
      expect(m.spec, `${sec.ns}/${sec.name}`).to.deep.equal(meant.spec);
      expect(m.metadata.annotations ?? {}).to.deep.equal(meant.metadata.annotations ?? {});
      for (const v of Object.values(m.spec.encryptedData))
        expect(v)
          .to.be.a('string')
          .and.match(/^[A-Za-z0-9+/]+=*$/);
    }

    const release = out.find((o) => o.kind === 'HelmRelease');
    expect(release?.metadata.namespace).to.equal('yes');
    for (const [k, v] of Object.entries(VALUES)) {
      if (k === 'nested') expect(release!.spec.values.nested.Off).to.deep.equal(VALUES.nested.Off);
      else expect(release!.spec.values[k], k).to.deep.equal(v);
    }
    for (const o of out.filter((x) => x.kind !== 'SealedSecret' && x.metadata?.namespace !== undefined)) {
      expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).to.equal('yes');
    }
  });
});
