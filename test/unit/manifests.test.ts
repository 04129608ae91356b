import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { Json } from '../../src/lib/merge-patch.js';
import { REPO_README, renderClusterRepo, SpecError, validateSpec } from '../../src/repo/manifests.js';
import { fluxTemplate, helmReleaseTemplate, clusterChartTemplate } from '../../src/embedded/seed/templates.js';
import { referencePath } from '../helpers/reference.js';

const read = (p: string) => readFileSync(referencePath(p), 'utf8');
const readJson = (p: string) => JSON.parse(read(p));

// The reference example's installation values (examples/configdb-entries.example.json).
const ACS: Record<string, string> = {
  '<acs:realm>': 'FACTORYPLUS.EXAMPLE.COM',
  '<acs:domain>': 'factoryplus.example.com',
  '<acs:directory>': 'https://directory.factoryplus.example.com',
  '<Local.Role.EdgeSync>': '11111111-2222-4333-8444-555555555501',
  '<Local.Role.EdgeMonitor>': '11111111-2222-4333-8444-555555555502',
};
const CLUSTER = '0b9e2c1e-6a0f-4a8e-9d3c-2f4b5a6c7d8e';
const HELM_REPO = '11111111-2222-4333-8444-555555555504';

function referenceTemplates() {
  const chart = JSON.parse(JSON.stringify(readJson('dumps/templates/helm-chart-templates.729fe070.json').entries['<Local.Chart.Cluster>'])
    .replace(/<[^>"]+>/g, (m) => ACS[m] ?? m));
  return {
    flux: readJson('dumps/templates/flux-template.72804a19.json').config,
    helmRelease: readJson('dumps/templates/k8s-template.HelmRelease.88436128.0c92f608.json').config,
    chart,
  };
}

describe('cluster repo manifests', () => {
  it('renders the Factory+ templates exactly as the reference cluster repo', () => {
    const out = renderClusterRepo({
      uuid: CLUSTER, spec: { name: 'Building_1', namespace: 'fplus-edge' }, templates: referenceTemplates(),
      gitBase: 'https://git.factoryplus.example.com/', helmRepo: HELM_REPO,
    });
    for (const f of ['edge-cluster.yaml', 'flux-system.yaml', 'helm-charts.yaml', 'self-link.yaml']) {
      expect(out.files.get(`edo/cluster/${f}`), f).to.equal(read(`examples/cluster-repo/edo/cluster/${f}`));
    }
    expect(out.selfLink).to.equal(read('examples/status.self_link.example.yaml'));
    expect(REPO_README).to.equal(read('examples/cluster-repo/README.md'));
  });

  it('renders the embedded default templates to manifests with the cluster namespace and names', () => {
    const out = renderClusterRepo({
      uuid: CLUSTER, spec: { name: 'Line_7', namespace: 'edge-7', values: { cluster: { extra: true }, krb5: null } },
      templates: { flux: fluxTemplate, helmRelease: helmReleaseTemplate, chart: clusterChartTemplate({
        realm: 'R.LOCAL', domain: 'd.local', directoryUrl: 'http://dir', edgeAccountClass: 'a', edgeSyncRole: 'b', edgeMonitorRole: 'c' }) },
      gitBase: 'http://127.0.0.1:1/', helmRepo: HELM_REPO,
    });
    expect([...out.files.keys()].sort()).to.deep.equal(['edge-cluster.yaml', 'flux-system.yaml', 'helm-charts.yaml', 'self-link.yaml'].map((f) => `edo/cluster/${f}`));
    for (const [file, text] of out.files) {
      for (const doc of parseAllDocuments(text) as ReturnType<typeof parseAllDocuments> & unknown[]) {
        expect(doc.errors, file).to.deep.equal([]);
        const m = doc.toJS() as { metadata: { namespace: string } };
        expect(m.metadata.namespace, file).to.equal('edge-7');
      }
    }
    const hr = parseAllDocuments(out.files.get('edo/cluster/edge-cluster.yaml')!) as unknown as Array<{ toJS(): { metadata: { name: string }; spec: { values: Record<string, Json> } } }>;
    const release = hr[0].toJS();
    expect(release.metadata.name).to.equal(`edge-cluster-${CLUSTER}`);
    expect(release.spec.values.cluster).to.deep.include({ name: 'Line_7', uuid: CLUSTER, extra: true });
    // A null in the cluster's values is kept, so Helm drops the chart default.
    expect(release.spec.values.krb5).to.equal(null);
    expect(out.files.get('edo/cluster/self-link.yaml')).to.include(`http://127.0.0.1:1/uuid/${CLUSTER}`);
  });

  it('leaves out flux-system.yaml for a bare cluster', () => {
    const out = renderClusterRepo({ uuid: CLUSTER, spec: { name: 'B', namespace: 'ns', bare: true }, templates: referenceTemplates(),
      gitBase: 'https://git.example/', helmRepo: HELM_REPO });
    expect(out.files.has('edo/cluster/flux-system.yaml')).to.equal(false);
    expect(out.files.has('edo/cluster/self-link.yaml')).to.equal(true);
  });

  it('refuses templates that would write outside edo/cluster', () => {
    const templates = { ...referenceTemplates(), flux: { 'self-link.yaml': [], '../escape.yaml': [] } };
    expect(() => renderClusterRepo({ uuid: CLUSTER, spec: { name: 'B', namespace: 'ns' }, templates, gitBase: 'https://g/', helmRepo: HELM_REPO }))
      .to.throw(SpecError, /unsafe file/);
  });

  it('validates configuration entries with a reason for each problem', () => {
    expect(validateSpec({ name: 'Building_1', namespace: 'fplus-edge' })).to.deep.equal({ name: 'Building_1', namespace: 'fplus-edge' });
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
