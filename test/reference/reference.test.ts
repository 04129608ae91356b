import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { assembleBootstrapScript, renderBootstrap } from '../../src/bootstrap/script.js';
import { ObjectRegistry, RankClass } from '../../src/embedded/configdb/objects.js';
import { loadDump, parseDump } from '../../src/embedded/configdb/load.js';
import { ConfigApp, ConfigStore } from '../../src/embedded/configdb/store.js';
import { openDatabase, type Db } from '../../src/embedded/db.js';
import { bootstrapTemplate } from '../../src/embedded/seed/templates.js';
import type { Json } from '../../src/lib/merge-patch.js';
import { newUuid } from '../../src/lib/uuid.js';
import { REPO_README, renderClusterRepo } from '../../src/repo/manifests.js';
import { parseMultiDoc, toMultiDoc } from '../../src/repo/yaml.js';
import { CERT_ANNOTATION } from '../../src/sealing/cert-record.js';
import { upsertSealedKey } from '../../src/sealing/manifest.js';
import { readFluxSystemYaml } from '../fixtures/flux-system.js';
import { seededClusterConfigSchema } from '../helpers/seed.js';

/**
 * The comparisons with the Factory+ reference material (ACS dumps, examples
 * and a real `flux install --export`), which is not part of this repository:
 *   FPLUS_REFERENCE_DIR=/path/to/reference npm run test:reference
 * The everyday tests use the project's own fixtures under test/fixtures; the
 * last group here checks that those fixtures have the reference's shape.
 */

const DIR = process.env.FPLUS_REFERENCE_DIR;
if (!DIR || !existsSync(join(DIR, 'dumps')) || !existsSync(join(DIR, 'examples'))) {
  process.stderr.write(
    `test:reference: set FPLUS_REFERENCE_DIR to the Factory+ reference directory (with dumps/ and examples/)${DIR ? `; ${resolve(DIR)} is not one` : ''}\n`,
  );
  process.exit(2);
}
const read = (p: string) => readFileSync(join(DIR, p), 'utf8');
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
const SELF_LINK = 'examples/cluster-repo/edo/cluster/self-link.yaml';

function referenceTemplates() {
  const chart = JSON.parse(
    JSON.stringify(
      readJson('dumps/templates/helm-chart-templates.729fe070.json').entries['<Local.Chart.Cluster>'],
    ).replace(/<[^>"]+>/g, (m) => ACS[m] ?? m),
  );
  return {
    flux: readJson('dumps/templates/flux-template.72804a19.json').config,
    helmRelease: readJson('dumps/templates/k8s-template.HelmRelease.88436128.0c92f608.json').config,
    chart,
  };
}

/** A fresh Config Store with the rank classes and the schema and info apps. */
function emptyStore(): { db: Db; objects: ObjectRegistry; store: ConfigStore; owner: string } {
  const db = openDatabase(':memory:');
  const objects = new ObjectRegistry(db);
  const store = new ConfigStore(db, objects);
  const owner = newUuid();
  const apps = objects.create({ class: RankClass.r2, owner }).registration.uuid;
  objects.create({ class: apps, uuid: ConfigApp.ConfigSchema, owner });
  objects.create({ class: apps, uuid: ConfigApp.Info, owner });
  return { db, objects, store, owner };
}

const status = (fn: () => unknown): number => {
  try {
    fn();
    return 0;
  } catch (e) {
    return (e as { status: number }).status;
  }
};

describe('reference: cluster repo and YAML layout', () => {
  it('renders the Factory+ templates exactly as the reference cluster repo', () => {
    const out = renderClusterRepo({
      uuid: CLUSTER,
      spec: { name: 'Building_1', namespace: 'fplus-edge' },
      templates: referenceTemplates(),
      gitBase: 'https://git.factoryplus.example.com/',
      helmRepo: HELM_REPO,
    });
    for (const f of ['edge-cluster.yaml', 'flux-system.yaml', 'helm-charts.yaml', 'self-link.yaml']) {
      expect(out.files.get(`edo/cluster/${f}`), f).to.equal(read(`examples/cluster-repo/edo/cluster/${f}`));
    }
    expect(out.selfLink).to.equal(read('examples/status.self_link.example.yaml'));
    expect(REPO_README).to.equal(read('examples/cluster-repo/README.md'));
  });

  it('serialises the reference repo files exactly as they are', () => {
    const text = read(SELF_LINK);
    expect(parseMultiDoc(text)).to.have.length(2);
    expect(toMultiDoc(parseMultiDoc(text))).to.equal(text);
  });

  it('starts a new SealedSecret file in the shape of the reference example, but for the two intended differences', () => {
    type Doc = { metadata: { annotations?: Record<string, string> }; spec: { encryptedData: Record<string, string> } };
    const [reference] = parseMultiDoc(read('examples/sealed-secret.example.yaml')) as Doc[];
    const { namespace, name } = (reference as unknown as { metadata: { namespace: string; name: string } }).metadata;
    const key = Object.keys(reference.spec.encryptedData)[0];
    const fp = 'a'.repeat(64);
    const text = upsertSealedKey(undefined, {
      namespace,
      name,
      key,
      ciphertext: 'AgBxyz==',
      scope: 'strict',
      certFingerprint: fp,
    });
    const [doc] = parseMultiDoc(text) as Doc[];
    expect(doc.metadata.annotations).to.deep.equal({ [CERT_ANNOTATION]: fp });
    delete doc.metadata.annotations;
    reference.spec.encryptedData[key] = 'AgBxyz==';
    // The two intended differences from the original (README, sealed secrets): no
    // `data: null` in the template, and the template's metadata mirrors the
    // SealedSecret's, annotations included, as kubeseal writes it.
    const template = (
      reference as unknown as { spec: { template: { data?: unknown; metadata: Record<string, unknown> } } }
    ).spec.template;
    expect(template.data, "the original's template.data").to.equal(null);
    delete template.data;
    template.metadata.annotations = { [CERT_ANNOTATION]: fp };
    // JSON text also compares key order, i.e. the document layout.
    expect(JSON.stringify(doc)).to.equal(JSON.stringify(reference));
  });
});

describe('reference: Config Store', () => {
  let s: ReturnType<typeof emptyStore>;
  beforeEach(() => {
    s = emptyStore();
  });
  afterEach(() => s.db.close());

  it('compiles the reference 2020-12 General information schema and validates with it', () => {
    const obj = s.objects.create({ class: RankClass.individual, owner: s.owner }).registration.uuid;
    s.store.put(
      ConfigApp.ConfigSchema,
      ConfigApp.Info,
      readJson('dumps/schemas/general-information.64a8bfa9.schema.json') as Json,
    );
    expect(status(() => s.store.put(ConfigApp.Info, obj, { location: 'x' }))).to.equal(422);
    expect(
      status(() => s.store.put(ConfigApp.Info, obj, { name: 'T', contact: [{ name: 'A', email: 'not mail' }] })),
    ).to.equal(422);
    expect(
      s.store.put(ConfigApp.Info, obj, { name: 'Thing', contact: [{ name: 'A', email: 'a@example.com' }] }),
    ).to.equal('created');
  });

  it('compiles every reference schema', () => {
    const files = readdirSync(join(DIR, 'dumps/schemas')).filter((f) => f.endsWith('.schema.json'));
    expect(files).to.not.be.empty;
    for (const f of files) {
      const app = s.objects.create({ class: RankClass.r1, owner: s.owner }).registration.uuid;
      expect(
        status(() => s.store.put(ConfigApp.ConfigSchema, app, readJson(`dumps/schemas/${f}`) as Json)),
        f,
      ).to.equal(0);
    }
  });

  it('the seeded Edge cluster configuration schema accepts and refuses what the reference schema does', () => {
    const seeded = seededClusterConfigSchema();
    const verdicts = (schema: Json) => {
      const app = s.objects.create({ class: RankClass.r1, owner: s.owner }).registration.uuid;
      s.store.put(ConfigApp.ConfigSchema, app, schema);
      const entries: Json[] = [
        { name: 'A', namespace: 'ns' },
        { name: 'A' },
        { name: 'A', namespace: 'ns', colour: 'red' },
        { name: 'A', namespace: 'ns', chart: 'not-a-uuid' },
        { name: 'A', namespace: 'ns', chart: newUuid(), bare: true, values: { x: 1 } },
      ];
      return entries.map((entry) =>
        status(() =>
          s.store.put(app, s.objects.create({ class: RankClass.individual, owner: s.owner }).registration.uuid, entry),
        ),
      );
    };
    expect(verdicts(seeded)).to.deep.equal(
      verdicts(readJson('dumps/schemas/edge-cluster-configuration.bdb13634.schema.json') as Json),
    );
  });

  it('loads the core applications dump of a Factory+ installation', () => {
    for (const d of readJson('dumps/acs-service-setup-resolved/core-apps.json') as Json[])
      loadDump(s, parseDump(d), s.owner);
    expect(s.objects.get(ConfigApp.Registration)).to.include({
      class: 'd319bd87-f42b-4b66-be4f-f82ff48b93f0',
      rank: 1,
    });
    expect(s.store.get(ConfigApp.Info, ConfigApp.Registration)?.json).to.deep.equal({ name: 'Object registration' });
  });
});

describe('reference: bootstrap script with a real flux-system.yaml', () => {
  const fluxSystemYaml = read('data/flux-system.yaml');
  const rendered = renderBootstrap(bootstrapTemplate, {
    name: 'Building_1',
    namespace: 'fplus-edge',
    realm: 'FACTORYPLUS.EXAMPLE.COM',
    domain: 'factoryplus.example.com',
    krbkeys: 'ghcr.io/amrc-factoryplus/acs-krb-keys-operator:v3.2.1',
  });
  const script = assembleBootstrapScript({ rendered, fluxSystemYaml, selfLink: read(SELF_LINK) });

  it('carries it unchanged and passes shellcheck -s sh and dash -n', () => {
    expect(script.includes(`\n${fluxSystemYaml}`)).to.equal(true);
    const sc = spawnSync('shellcheck', ['-s', 'sh', '-'], { input: script, encoding: 'utf8' });
    expect(sc.stdout + sc.stderr).to.equal('');
    expect(sc.status).to.equal(0);
    expect(spawnSync('dash', ['-n'], { input: script, encoding: 'utf8' }).status).to.equal(0);
  });
});

describe('reference: the fixtures have the shape of the reference', () => {
  const kinds = (text: string) =>
    (parseAllDocuments(text) as unknown as Array<{ toJS(): { kind?: string } | null }>)
      .map((d) => d.toJS()?.kind)
      .filter((k): k is string => !!k);

  it('test/fixtures/flux-system.yaml: the same kinds in the same order, and about the same size', () => {
    const real = read('data/flux-system.yaml');
    const ours = readFluxSystemYaml();
    const collapse = (ks: string[]) => ks.filter((k, i) => k !== ks[i - 1]);
    const order = (ks: string[]) =>
      collapse(ks.filter((k) => k !== 'NetworkPolicy' && k !== 'ClusterRole' && k !== 'ClusterRoleBinding'));
    expect(order(kinds(ours))).to.deep.equal(order(kinds(real)));
    expect(ours.length / real.length).to.be.within(0.75, 1.33);
  });

  it('test/fixtures/sealed-secret.yaml: the layout of the reference example', () => {
    const shape = (v: unknown): unknown =>
      v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v).map(([k, x]) => [k.startsWith('__FPSI__') || k === 'k1' ? '<key>' : k, shape(x)]),
          )
        : typeof v;
    const ours = parseMultiDoc(readFileSync(new URL('../fixtures/sealed-secret.yaml', import.meta.url), 'utf8'));
    expect(JSON.stringify(shape(ours))).to.equal(
      JSON.stringify(shape(parseMultiDoc(read('examples/sealed-secret.example.yaml')))),
    );
  });
});
