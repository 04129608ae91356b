import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import type { Json } from '../../src/lib/merge-patch.js';
import { REPO_README, renderClusterRepo, SpecError, validateSpec } from '../../src/repo/manifests.js';
import { readFixture, renderFixtureRepo } from '../fixtures/cluster-repo.js';
import { embeddedTemplates } from '../helpers/seed.js';

const CLUSTER = '0b9e2c1e-6a0f-4a8e-9d3c-2f4b5a6c7d8e';
const HELM_REPO = '11111111-2222-4333-8444-555555555504';

describe('cluster repo manifests', () => {
  it('renders the embedded templates exactly as the checked-in cluster repo (test/fixtures/cluster-repo)', () => {
    const out = renderFixtureRepo();
    expect([...out.files.keys()].sort()).to.deep.equal(
      ['edge-cluster.yaml', 'flux-system.yaml', 'helm-charts.yaml', 'self-link.yaml'].map((f) => `edo/cluster/${f}`),
    );
    for (const [path, text] of out.files) expect(text, path).to.equal(readFixture(path));
    expect(out.selfLink).to.equal(readFixture('edo/cluster/self-link.yaml'));
    expect(REPO_README).to.equal(readFixture('README.md'));
  });

  it('renders the embedded default templates to manifests with the cluster namespace and names', () => {
    const out = renderClusterRepo({
      uuid: CLUSTER,
      spec: { name: 'Line_7', namespace: 'edge-7', values: { cluster: { extra: true }, krb5: null } },
      templates: embeddedTemplates(),
      gitBase: 'http://127.0.0.1:1/',
      helmRepo: HELM_REPO,
    });
    expect([...out.files.keys()].sort()).to.deep.equal(
      ['edge-cluster.yaml', 'flux-system.yaml', 'helm-charts.yaml', 'self-link.yaml'].map((f) => `edo/cluster/${f}`),
    );
    for (const [file, text] of out.files) {
      for (const doc of parseAllDocuments(text) as ReturnType<typeof parseAllDocuments> & unknown[]) {
        expect(doc.errors, file).to.deep.equal([]);
        const m = doc.toJS() as { metadata: { namespace: string } };
        expect(m.metadata.namespace, file).to.equal('edge-7');
      }
    }
    const hr = parseAllDocuments(out.files.get('edo/cluster/edge-cluster.yaml')!) as unknown as Array<{
      toJS(): { metadata: { name: string }; spec: { values: Record<string, Json> } };
    }>;
    const release = hr[0].toJS();
    expect(release.metadata.name).to.equal(`edge-cluster-${CLUSTER}`);
    expect(release.spec.values.cluster).to.deep.include({ name: 'Line_7', uuid: CLUSTER, extra: true });
    // A null in the cluster's values is kept, so Helm drops the chart default.
    expect(release.spec.values.krb5).to.equal(null);
    expect(out.files.get('edo/cluster/self-link.yaml')).to.include(`http://127.0.0.1:1/uuid/${CLUSTER}`);
  });

  it('leaves out flux-system.yaml for a bare cluster', () => {
    const out = renderClusterRepo({
      uuid: CLUSTER,
      spec: { name: 'B', namespace: 'ns', bare: true },
      templates: embeddedTemplates(),
      gitBase: 'https://git.example/',
      helmRepo: HELM_REPO,
    });
    expect(out.files.has('edo/cluster/flux-system.yaml')).to.equal(false);
    expect(out.files.has('edo/cluster/self-link.yaml')).to.equal(true);
  });

  it('refuses templates that would write outside edo/cluster', () => {
    const templates = { ...embeddedTemplates(), flux: { 'self-link.yaml': [], '../escape.yaml': [] } };
    expect(() =>
      renderClusterRepo({
        uuid: CLUSTER,
        spec: { name: 'B', namespace: 'ns' },
        templates,
        gitBase: 'https://g/',
        helmRepo: HELM_REPO,
      }),
    ).to.throw(SpecError, /unsafe file/);
  });

  it('validates configuration entries with a reason for each problem', () => {
    expect(validateSpec({ name: 'Building_1', namespace: 'fplus-edge' })).to.deep.equal({
      name: 'Building_1',
      namespace: 'fplus-edge',
    });
    const reasons: Array<[unknown, string]> = [
      [{ namespace: 'a' }, 'MissingName'],
      [{ name: 'has space', namespace: 'a' }, 'InvalidName'],
      [{ name: '../x', namespace: 'a' }, 'InvalidName'],
      [{ name: 'ok', namespace: 'Not_Valid' }, 'InvalidNamespace'],
      [{ name: 'ok' }, 'InvalidNamespace'],
      [{ name: 'ok', namespace: 'a', values: [] }, 'InvalidValues'],
      [[1], 'InvalidSpec'],
    ];
    for (const [spec, reason] of reasons) {
      try {
        validateSpec(spec);
        expect.fail(`accepted ${JSON.stringify(spec)}`);
      } catch (e) {
        expect(e, JSON.stringify(spec)).to.be.instanceOf(SpecError);
        expect((e as SpecError).reason).to.equal(reason);
      }
    }
  });
});
