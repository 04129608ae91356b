import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { envBindings } from '../../src/config/env.js';
import { loadConfig } from '../../src/config/index.js';

/*
 * Checks of the container image definition (Dockerfile, .dockerignore) and
 * the Kubernetes manifests in deploy/, without Docker or a cluster: kubectl
 * itself renders the kustomizations, and the checks read what it renders.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const deployDir = join(root, 'deploy');
const acsDir = join(deployDir, 'overlays/acs');
const NS = 'factory-plus';
const SECRET = 'fplus-cluster-manager-credentials';
const UID = 10001;
const PORT = 8080;
const METRICS_PORT = 9090;

type Obj = Record<string, any>;

/*
 * What the ACS Helm chart (amrc-connectivity-stack, deploy/templates/
 * cluster-manager/) makes for its own Cluster Manager, and the labels of its
 * pod. Objects applied beside the release must use none of these names, and
 * no selector of either may catch the other's pod.
 */
const ACS_CHART_NAMES = [
  'cluster-manager',
  'clusters-ingressroute',
  'sv1clustermanager',
  'http.clusters',
  'cluster-manager-keytabs',
  'krb5-conf',
];
const ACS_POD_LABELS = { component: 'cluster-manager', 'factory-plus.service': 'cluster-manager' };
const ACS_SELECTORS: Record<string, string>[] = [
  { component: 'cluster-manager' },
  { 'factory-plus.service': 'cluster-manager' },
];
/** ACS objects the overlay may refer to; deploy/README.md names each one. */
const ACS_SECRETS = ['factoryplus-tls'];
/** Roles the service account must be in: the Cluster Manager service role, and Sparkplug Node to publish. */
const CLUSTER_MANAGER_ROLE = '26d192cf-73c1-4c14-93cf-1e63743bab08';
const SPARKPLUG_NODE_ROLE = '1d3121a0-aade-4376-8fa3-57ba1460ba76';
/**
 * Set by the ACS chart on every Factory+ service (its oidc-env helper); the
 * service reads it through its OIDC configuration.
 */
const ACS_CONVENTION_VARIABLES = ['OIDC_DISCOVERY_URL'];

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

/** `kubectl kustomize <dir>`, offline: an empty KUBECONFIG keeps any real cluster out of it. */
function kustomize(dir: string): Obj[] {
  const kubectl = onPath('kubectl');
  expect(kubectl, 'kubectl (Debian package kubernetes-client) must be installed').to.be.a('string');
  const tmp = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
  try {
    const kubeconfig = join(tmp, 'config');
    writeFileSync(kubeconfig, '');
    const r = spawnSync(kubectl!, ['kustomize', dir], {
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: kubeconfig },
      timeout: 60_000,
    });
    expect(r.status, `kubectl kustomize ${dir} failed: ${r.stderr}`).to.equal(0);
    const out: Obj[] = [];
    for (const doc of parseAllDocuments(r.stdout)) {
      if (doc.errors.length) throw new Error(`${dir}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const v = doc.toJS();
      if (v !== null && v !== undefined) out.push(v as Obj);
    }
    return out;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The rendered base, also read by the Dockerfile checks. */
function loadManifests(): Obj[] {
  return kustomize(deployDir);
}

/** Filled by the suites' before hooks, so a render error fails the suite with its message. */
let manifests: Obj[] = [];

function oneOf(objs: Obj[], kind: string): Obj {
  const found = objs.filter((m) => m.kind === kind);
  expect(found, `exactly one ${kind}`).to.have.length(1);
  return found[0]!;
}
const one = (kind: string): Obj => oneOf(manifests, kind);

const deployment = () => one('Deployment');
const podSpec = () => deployment().spec.template.spec as Obj;
const containerOf = (objs: Obj[]): Obj => {
  const cs = oneOf(objs, 'Deployment').spec.template.spec.containers as Obj[];
  expect(cs).to.have.length(1);
  return cs[0]!;
};
const container = (): Obj => containerOf(manifests);

/** A probe's or Service's port: a number, or a container port's name. */
function resolvePort(port: number | string, c: Obj = container()): number | undefined {
  if (typeof port === 'number') return port;
  return (c.ports as Obj[]).find((p) => p.name === port)?.containerPort;
}

/** The environment the container gets: the ConfigMap, then `env` (secrets as placeholders). */
function environment(objs: Obj[]): Record<string, string> {
  const cm = oneOf(objs, 'ConfigMap');
  const env: Record<string, string> = { ...cm.data };
  for (const e of containerOf(objs).env as Obj[]) {
    env[e.name] =
      e.value ??
      (e.valueFrom?.secretKeyRef ? `from-secret-${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}` : '');
  }
  return env;
}

/** Environment variables the service reads outside envBindings (src/config/load.ts). */
const loaderVariables = ['UUID_PROFILE', 'CONFIG_FILE'];

function checkProbes(c: Obj): void {
  for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    const p = c[kind];
    expect(p, kind).to.be.an('object');
    expect(p.httpGet.path, kind).to.equal('/health');
    expect(resolvePort(p.httpGet.port, c), `${kind} port`).to.equal(PORT);
    expect(p.periodSeconds, kind).to.be.a('number');
    expect(p.timeoutSeconds, kind).to.be.a('number');
  }
  // The startup probe must allow the first resync more time than the
  // liveness probe allows a hung process.
  const budget = (p: Obj) => p.periodSeconds * p.failureThreshold;
  expect(budget(c.startupProbe)).to.be.greaterThan(budget(c.livenessProbe));
}

function checkNonRoot(objs: Obj[]): void {
  const spec = oneOf(objs, 'Deployment').spec.template.spec as Obj;
  expect(spec.securityContext).to.include({ runAsNonRoot: true, runAsUser: UID, runAsGroup: UID, fsGroup: UID });
  expect(spec.automountServiceAccountToken).to.equal(false);
  const c = containerOf(objs);
  expect(c.securityContext).to.include({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
  expect(c.securityContext.capabilities.drop).to.include('ALL');
  expect(c.securityContext.privileged ?? false).to.equal(false);
}

function checkKnownVariables(objs: Obj[], extra: string[] = []): void {
  const loadSource = readFileSync(join(root, 'src/config/load.ts'), 'utf8');
  for (const name of loaderVariables) expect(loadSource, name).to.include(`env.${name}`);
  const known = new Set([...envBindings.flatMap((b) => b.names), ...loaderVariables, ...extra]);
  const cm = oneOf(objs, 'ConfigMap');
  const c = containerOf(objs);
  expect(c.envFrom).to.deep.equal([{ configMapRef: { name: cm.metadata.name } }]);
  const names = [...Object.keys(cm.data), ...(c.env as Obj[]).map((e) => e.name as string)];
  const unknown = names.filter((n) => !known.has(n));
  expect(unknown, 'unknown environment variables').to.deep.equal([]);
  for (const [k, v] of Object.entries(cm.data)) expect(v, `ConfigMap ${k} must be a string`).to.be.a('string');
  for (const e of c.env as Obj[]) {
    expect(e.value === undefined || e.valueFrom === undefined, `${e.name} has both value and valueFrom`).to.equal(true);
  }
}

/** Every Secret the pod refers to, as `name` or `name/key`. */
function secretRefs(objs: Obj[]): string[] {
  const spec = oneOf(objs, 'Deployment').spec.template.spec as Obj;
  const refs: string[] = [];
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])] as Obj[]) {
    for (const e of (c.env ?? []) as Obj[]) {
      const r = e.valueFrom?.secretKeyRef;
      if (r) refs.push(`${r.name}/${r.key}`);
    }
    for (const e of (c.envFrom ?? []) as Obj[]) if (e.secretRef) refs.push(e.secretRef.name);
  }
  for (const v of (spec.volumes ?? []) as Obj[]) if (v.secret) refs.push(v.secret.secretName);
  for (const s of (spec.imagePullSecrets ?? []) as Obj[]) refs.push(s.name);
  return refs;
}

describe('deploy/ kustomize base', () => {
  before(() => {
    manifests = loadManifests();
  });

  it('kubectl kustomize renders it offline into exactly the expected objects, in one namespace, with common labels', () => {
    const kinds = manifests.map((m) => `${m.apiVersion} ${m.kind} ${m.metadata.name}`).sort();
    expect(kinds).to.deep.equal([
      'apps/v1 Deployment fplus-cluster-manager',
      'policy/v1 PodDisruptionBudget fplus-cluster-manager',
      'v1 ConfigMap fplus-cluster-manager-config',
      'v1 PersistentVolumeClaim fplus-cluster-manager-data',
      'v1 Service fplus-cluster-manager',
    ]);
    for (const m of manifests) {
      expect(m.metadata?.namespace, `${m.kind} namespace`).to.equal(NS);
      expect(m.metadata?.labels, `${m.kind} labels`).to.include({
        'app.kubernetes.io/name': 'factoryplus-cluster-manager',
        'app.kubernetes.io/instance': 'fplus-cluster-manager',
        'app.kubernetes.io/part-of': 'factory-plus',
      });
    }
  });

  it('runs one instance with the Recreate strategy, and selectors match the pod', () => {
    const d = deployment();
    expect(d.spec.replicas).to.equal(1);
    expect(d.spec.strategy).to.deep.equal({ type: 'Recreate' });
    const podLabels = d.spec.template.metadata.labels;
    expect(podLabels).to.include(d.spec.selector.matchLabels);
    expect(podLabels).to.include(one('Service').spec.selector);
    expect(podLabels).to.include(one('PodDisruptionBudget').spec.selector.matchLabels);
    expect(podSpec().terminationGracePeriodSeconds).to.equal(30);
  });

  it('probes /health on port 8080, with a startup probe', () => {
    checkProbes(container());
  });

  it('runs as non-root uid 10001 with a read-only root filesystem and /data on the PVC', () => {
    checkNonRoot(manifests);
    const c = container();
    const data = (c.volumeMounts as Obj[]).find((v) => v.mountPath === '/data');
    expect(data, '/data mount').to.be.an('object');
    const vol = (podSpec().volumes as Obj[]).find((v) => v.name === data!.name);
    expect(vol?.persistentVolumeClaim?.claimName).to.equal(one('PersistentVolumeClaim').metadata.name);
    expect(one('PersistentVolumeClaim').spec.accessModes).to.deep.equal(['ReadWriteOnce']);
    expect(one('PersistentVolumeClaim').spec.resources.requests.storage).to.match(/^\d+[MG]i$/);
  });

  it('sets resource requests and limits', () => {
    const r = container().resources;
    for (const k of ['requests', 'limits']) {
      expect(r[k]?.cpu, `${k}.cpu`).to.exist;
      expect(r[k]?.memory, `${k}.memory`).to.exist;
    }
  });

  it('pulls a fixed image tag, the package version', () => {
    const c = container();
    const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
    expect(c.image).to.match(/:[\w.-]+$/);
    expect(c.image.split(':').pop()).to.equal(version);
    expect(c.imagePullPolicy).to.equal('IfNotPresent');
    expect(deployment().metadata.labels['app.kubernetes.io/version']).to.equal(version);
  });

  it('takes the credentials from the Secret by reference, and no password is written anywhere in deploy/', () => {
    const env = container().env as Obj[];
    for (const [name, key] of [
      ['SERVICE_USERNAME', 'username'],
      ['SERVICE_PASSWORD', 'password'],
    ]) {
      const e = env.find((x) => x.name === name);
      expect(e, name).to.be.an('object');
      expect(e!.value, `${name} literal value`).to.be.undefined;
      expect(e!.valueFrom.secretKeyRef).to.deep.equal({ name: SECRET, key });
    }
    expect(secretRefs(manifests).sort()).to.deep.equal([`${SECRET}/password`, `${SECRET}/username`]);
    for (const objs of [manifests, kustomize(acsDir)]) {
      expect(
        objs.filter((m) => m.kind === 'Secret'),
        'Secret objects',
      ).to.be.empty;
      // Any key naming a password, secret or token with a scalar value, and
      // any env var so named with a literal value, is a leaked credential.
      // (A KerberosKey's `secret` names where the operator writes the key.)
      const sensitive = /passw(or)?d|secret|token|credential/i;
      const leaks: string[] = [];
      const walk = (v: unknown, path: string): void => {
        if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
        else if (v && typeof v === 'object') {
          const o = v as Obj;
          if (typeof o.name === 'string' && sensitive.test(o.name) && 'value' in o) leaks.push(`${path}.${o.name}`);
          for (const [k, x] of Object.entries(o)) {
            const named = k === 'secret' && path.endsWith('KerberosKey.spec');
            const ref = ['secretName', 'name', 'key'].includes(k);
            if (!named && !ref && sensitive.test(k) && (typeof x === 'string' || typeof x === 'number'))
              leaks.push(`${path}.${k}`);
            walk(x, `${path}.${k}`);
          }
        }
      };
      for (const m of objs) walk(m, `${m.kind}`);
      expect(leaks).to.deep.equal([]);
    }
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
        d.isDirectory() ? files(join(dir, d.name)) : [join(dir, d.name)],
      );
    for (const f of files(deployDir)) {
      const text = readFileSync(f, 'utf8');
      expect(text, f).to.not.match(/--from-literal=password=/);
      expect(text, f).to.not.match(/SERVICE_PASSWORD\s*[=:]\s*\S/);
    }
    const readme = readFileSync(join(deployDir, 'README.md'), 'utf8');
    expect(readme).to.include(`create secret generic ${SECRET}`);
  });

  it('sets only environment variables the service reads', () => {
    checkKnownVariables(manifests);
  });

  it('configures Factory+ mode with the acs profile, valid as the service loads it', () => {
    const cm = one('ConfigMap');
    const config = loadConfig({ env: environment(manifests) });
    expect(config.profile).to.equal('acs');
    expect(config.uuids.app.setupStatus).to.equal('f6c67e6f-e48e-4f69-b4bb-bfbddcc2a517');
    expect(config.factoryplus.directoryUrl).to.equal('http://directory.factory-plus.svc.cluster.local');
    expect(config.factoryplus.organisation).to.equal('AMRC');
    expect(config.factoryplus.username).to.equal(`from-secret-${SECRET}/username`);
    expect(config.factoryplus.password).to.equal(`from-secret-${SECRET}/password`);
    expect(config.http.port).to.equal(PORT);
    expect(resolvePort('http')).to.equal(config.http.port);
    expect(config.http.host).to.equal('0.0.0.0');
    expect(config.dataDir).to.equal('/data');
    for (const k of ['EXTERNAL_URL', 'REALM', 'EXTERNAL_DOMAIN', 'GIT_EMAIL']) expect(cm.data, k).to.have.property(k);
  });

  it('opens the unauthenticated metrics port to Prometheus: METRICS_PORT, container port, Service port and pod annotations agree', () => {
    const config = loadConfig({ env: environment(manifests) });
    expect(config.http.metricsPort).to.equal(METRICS_PORT);
    expect(resolvePort('metrics')).to.equal(METRICS_PORT);
    const ann = deployment().spec.template.metadata.annotations;
    expect(ann).to.include({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(METRICS_PORT),
      'prometheus.io/path': '/metrics',
    });
    const sp = (one('Service').spec.ports as Obj[]).find((p) => p.name === 'metrics');
    expect(resolvePort(sp?.targetPort)).to.equal(METRICS_PORT);
  });

  it('exposes port 80 to the container port 8080 on a ClusterIP Service', () => {
    const s = one('Service');
    expect(s.spec.type ?? 'ClusterIP').to.equal('ClusterIP');
    expect((s.spec.ports as Obj[]).map((p) => p.name).sort()).to.deep.equal(['http', 'metrics']);
    const http = (s.spec.ports as Obj[]).find((p) => p.name === 'http')!;
    expect(http.port).to.equal(80);
    expect(resolvePort(http.targetPort)).to.equal(PORT);
  });

  it('lets a node drain evict the single pod (maxUnavailable, not minAvailable)', () => {
    const pdb = one('PodDisruptionBudget');
    expect(pdb.spec.maxUnavailable).to.equal(1);
    expect(pdb.spec).to.not.have.property('minAvailable');
  });
});

describe('deploy/overlays/acs', () => {
  let acs: Obj[] = [];
  const get = (kind: string): Obj => oneOf(acs, kind);
  before(() => {
    acs = kustomize(acsDir);
  });

  it('kubectl kustomize renders it offline: the base, its KerberosKey and its IngressRoute, in the ACS namespace', () => {
    const kinds = acs.map((m) => `${m.apiVersion} ${m.kind} ${m.metadata.name}`).sort();
    expect(kinds).to.deep.equal([
      'apps/v1 Deployment fplus-cluster-manager',
      'factoryplus.app.amrc.co.uk/v1 KerberosKey fplus-cluster-manager',
      'policy/v1 PodDisruptionBudget fplus-cluster-manager',
      'traefik.io/v1alpha1 IngressRoute fplus-cluster-manager',
      'v1 ConfigMap fplus-cluster-manager-config',
      'v1 PersistentVolumeClaim fplus-cluster-manager-data',
      'v1 Service clusters',
    ]);
    for (const m of acs) expect(m.metadata.namespace, `${m.kind} namespace`).to.equal(NS);
  });

  it("shares no name with the ACS chart, and no selector catches the other release's pod", () => {
    for (const m of acs) expect(ACS_CHART_NAMES, `${m.kind} ${m.metadata.name}`).to.not.include(m.metadata.name);
    const d = get('Deployment');
    const podLabels = d.spec.template.metadata.labels as Record<string, string>;
    const selects = (sel: Record<string, string>, labels: Record<string, string>) =>
      Object.entries(sel).every(([k, v]) => labels[k] === v);
    for (const sel of [
      d.spec.selector.matchLabels,
      get('Service').spec.selector,
      get('PodDisruptionBudget').spec.selector.matchLabels,
    ]) {
      expect(sel, 'a selector').to.not.be.empty;
      expect(selects(sel, ACS_POD_LABELS), `ours ${JSON.stringify(sel)} catches the ACS pod`).to.equal(false);
      expect(selects(sel, podLabels), `ours ${JSON.stringify(sel)} misses our pod`).to.equal(true);
    }
    for (const sel of ACS_SELECTORS)
      expect(selects(sel, podLabels), `ACS ${JSON.stringify(sel)} catches our pod`).to.equal(false);
  });

  it('keeps the probes and the non-root, read-only security context of the base', () => {
    checkProbes(containerOf(acs));
    checkNonRoot(acs);
  });

  it('takes SERVICE_PASSWORD from the Secret its Password KerberosKey writes, for the same principal as SERVICE_USERNAME', () => {
    const key = get('KerberosKey').spec;
    expect(key.type).to.equal('Password');
    // The operator's CRD: `secret/key`, in the KerberosKey's namespace.
    expect(key.secret).to.match(/^[a-z0-9.-]+\/[a-zA-Z0-9._-]+$/);
    const env = environment(acs);
    expect(env.SERVICE_PASSWORD).to.equal(`from-secret-${key.secret}`);
    expect(key.principal).to.equal(`${env.SERVICE_USERNAME}@${env.REALM}`);
    // Every Secret the pod needs is written by the overlay's KerberosKey.
    const made = acs.filter((m) => m.kind === 'KerberosKey').map((m) => m.spec.secret as string);
    for (const ref of secretRefs(acs)) expect(made, `Secret ${ref}`).to.include(ref);
  });

  it('keeps the service account in the Cluster Manager and Sparkplug Node roles, at its Sparkplug address', () => {
    const account = get('KerberosKey').spec.account;
    expect(account.class).to.equal('e463b4ae-a322-46cc-8976-4ba76838e908');
    expect(account.groups).to.include.members([CLUSTER_MANAGER_ROLE, SPARKPLUG_NODE_ROLE]);
    expect(`${account.sparkplug.group}/${account.sparkplug.node}`).to.equal(environment(acs).SPARKPLUG_ADDRESS);
    expect(account.sparkplug.group).to.equal(`${environment(acs).ORGANISATION_PREFIX}-Service-Core`);
  });

  it('follows the ACS environment conventions and loads as the service loads it', () => {
    const env = environment(acs);
    const domain = env.EXTERNAL_DOMAIN!;
    expect(env).to.include({
      PORT: '8080',
      UUID_PROFILE: 'acs',
      DIRECTORY_URL: `http://directory.${NS}.svc.cluster.local`,
      EXTERNAL_URL: `https://clusters.${domain}`,
      GIT_EMAIL: `sv1clustermanager@${domain}`,
      OIDC_DISCOVERY_URL: `https://openid.${domain}/realms/factory_plus/.well-known/openid-configuration`,
    });
    expect(env.KRBKEYS_IMAGE).to.match(/^ghcr\.io\/amrc-factoryplus\/acs-krb-keys-operator:v\d+\.\d+\.\d+$/);
    checkKnownVariables(acs, ACS_CONVENTION_VARIABLES);
    const config = loadConfig({ env });
    expect(config.profile).to.equal('acs');
    expect(config.http.port).to.equal(PORT);
    expect(config.http.metricsPort).to.equal(METRICS_PORT);
    expect(config.http.externalUrl).to.equal(`https://clusters.${domain}`);
    expect(config.factoryplus.username).to.equal('sv1clustermanager');
  });

  it('routes https://clusters.<base URL> to the API port of the Service the ACS Directory advertises', () => {
    const env = environment(acs);
    const svc = get('Service');
    // The ACS chart's service-setup advertises http://clusters.<namespace>.svc.cluster.local.
    expect(`http://${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`).to.equal(
      `http://clusters.${NS}.svc.cluster.local`,
    );
    const route = get('IngressRoute');
    expect(route.spec.entryPoints).to.deep.equal(['websecure']);
    expect(route.spec.routes).to.have.length(1);
    const r = route.spec.routes[0];
    expect(r.match).to.equal(`Host(\`${new URL(env.EXTERNAL_URL!).host}\`)`);
    expect(r.services).to.have.length(1);
    expect(r.services[0].name).to.equal(svc.metadata.name);
    const port = (svc.spec.ports as Obj[]).find((p) => p.port === r.services[0].port);
    expect(port?.name, 'the route goes to the API port, never the metrics port').to.equal('http');
    expect(route.spec.tls.domains).to.deep.equal([{ main: new URL(env.EXTERNAL_URL!).host }]);
    expect(ACS_SECRETS).to.include(route.spec.tls.secretName);
  });

  it('deploy/README.md walks an ACS operator through it, naming every ACS object it relies on', () => {
    const readme = readFileSync(join(deployDir, 'README.md'), 'utf8');
    for (const s of [
      'clusterManager.enabled=false',
      'kubectl apply -k deploy/overlays/acs',
      'fplus-cluster-manager-password',
      'check-config',
      ...ACS_SECRETS,
      CLUSTER_MANAGER_ROLE,
      'e3491b9c-50f1-11f0-8e16-e75c8f93227b',
      '6957174b-7b08-45ca-ac5c-c03ab6928a6e',
    ])
      expect(readme, s).to.include(s);
  });
});

// ---------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  body: Instruction[];
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!cur && (line === '' || line.startsWith('#'))) continue;
    if (cur && line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    lines.push(cur + line);
    cur = '';
  }
  if (cur) lines.push(cur);
  const stages: Stage[] = [];
  for (const l of lines) {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ from: f[1]!, name: f[2], body: [] });
    } else if (op !== 'ARG' || stages.length) {
      expect(stages, `${op} before FROM`).to.not.be.empty;
      stages[stages.length - 1]!.body.push({ op, args });
    }
  }
  return stages;
}

/** Source paths of a COPY/ADD, without its flags and destination. */
function copySources(args: string): { from?: string; sources: string[] } {
  let from: string | undefined;
  const words = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const rest: string[] = [];
  for (const w of words) {
    const f = /^--from=(\S+)$/.exec(w);
    if (f) from = f[1];
    else if (!w.startsWith('--')) rest.push(w);
  }
  return { from, sources: rest.slice(0, -1) };
}

const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);
const final = () => stages[stages.length - 1]!;
const finalOps = (op: string) => final().body.filter((i) => i.op === op);

/** Compiled entry point: tsconfig.build.json's outDir + src/main.ts relative to rootDir. */
function compiledMain(): string {
  const build = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8'));
  const base = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8'));
  const opts = { ...base.compilerOptions, ...build.compilerOptions };
  const rel = posix.relative(posix.normalize(opts.rootDir), 'src/main.ts').replace(/\.ts$/, '.js');
  return posix.join(posix.normalize(opts.outDir), rel);
}

describe('Dockerfile', () => {
  before(() => {
    manifests = loadManifests(); // the uid is checked against the Deployment
  });

  it('is multi-stage, building and running on node:24 slim, within package.json engines', () => {
    expect(stages.length).to.be.at.least(2);
    expect(stages[0]!.name, 'build stage named').to.be.a('string');
    for (const s of stages) expect(s.from).to.match(/^node:24[\w.-]*-slim(@sha256:[0-9a-f]{64})?$/);
    const engines = (
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }
    ).engines.node;
    expect(engines.split('||').map((r) => r.trim())).to.include('^24.0.0');
    const runs = stages[0]!.body
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join('\n');
    expect(runs).to.match(/npm ci\b/);
    expect(runs).to.match(/npm run build\b/);
    expect(runs)
      .to.match(/python3/)
      .and.match(/\bmake\b/)
      .and.match(/g\+\+/);
  });

  it('installs production dependencies only (--omit=dev) for the final stage', () => {
    const runs = stages
      .flatMap((s) => s.body)
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join('\n');
    expect(runs).to.match(/npm (ci|prune|install)\b[^\n]*--omit=dev/);
    expect(
      finalOps('RUN')
        .map((i) => i.args)
        .join('\n'),
    ).to.not.match(/npm (ci|install)\b/);
  });

  it('copies only compiled code, production modules, proto/, config/ and package.json into the final stage', () => {
    const allowed = new Set(['package.json', 'node_modules', 'dist', 'proto', 'config']);
    const copies = final().body.filter((i) => i.op === 'COPY' || i.op === 'ADD');
    expect(
      copies.filter((i) => i.op === 'ADD'),
      'ADD in the final stage',
    ).to.be.empty;
    const copied = new Set<string>();
    for (const c of copies) {
      const { from, sources } = copySources(c.args);
      if (from)
        expect(
          stages.some((s) => s.name === from),
          `--from=${from}`,
        ).to.equal(true);
      for (const src of sources) {
        expect(src, `COPY ${c.args}`).to.not.match(/^\.\/?$/);
        // Build-stage paths live under /src, so judge each by its last part:
        // `COPY --from=build /src .` or `COPY test ...` would show here.
        const name = posix.basename(posix.normalize(src));
        expect(['src', 'test', 'bench'], `COPY ${c.args}`).to.not.include(name);
        expect(name, `COPY ${c.args}`).to.not.match(/\.ts$/);
        expect(allowed.has(name), `final stage copies ${src}`).to.equal(true);
        copied.add(name);
      }
    }
    expect([...copied].sort()).to.deep.equal([...allowed].sort());
    for (const f of ['proto/sparkplug_b.proto', 'config/default.json', 'config/acs.json', 'package-lock.json']) {
      expect(existsSync(join(root, f)), f).to.equal(true);
    }
  });

  it('runs as the non-root uid the Deployment expects, with /data as a volume', () => {
    const users = finalOps('USER');
    expect(users).to.have.length.at.least(1);
    const user = users[users.length - 1]!.args.split(':')[0]!;
    expect(user).to.not.match(/^(root|0)$/);
    expect(Number(user)).to.equal(UID);
    expect(podSpec().securityContext.runAsUser).to.equal(Number(user));
    expect(
      finalOps('VOLUME')
        .map((i) => i.args)
        .join(' '),
    ).to.include('/data');
  });

  it('sets a valid environment: DATA_DIR /data, port 8080 on all interfaces, production', () => {
    const env: Record<string, string> = {};
    for (const i of finalOps('ENV')) {
      for (const m of i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
    }
    expect(env).to.include({ DATA_DIR: '/data', NODE_ENV: 'production', PORT: String(PORT), HTTP_HOST: '0.0.0.0' });
    const { NODE_ENV: _nodeEnv, ...serviceEnv } = env;
    const config = loadConfig({ env: serviceEnv });
    expect(config.http.port).to.equal(PORT);
    expect(finalOps('EXPOSE').map((i) => i.args)).to.deep.equal([String(PORT)]);
  });

  it('has a HEALTHCHECK with node against /health on 8080', () => {
    const hc = finalOps('HEALTHCHECK');
    expect(hc).to.have.length(1);
    expect(hc[0]!.args).to.match(/CMD\s+\["node"/);
    expect(hc[0]!.args).to.include('http://127.0.0.1:');
    expect(hc[0]!.args).to.include('8080');
    expect(hc[0]!.args).to.include('/health');
    expect(hc[0]!.args).to.not.match(/\b(curl|wget)\b/);
  });

  it('starts the compiled main.js with `serve` by default', () => {
    const main = compiledMain();
    expect(main).to.equal('dist/main.js');
    const entry = finalOps('ENTRYPOINT');
    const cmd = finalOps('CMD');
    expect(entry).to.have.length(1);
    expect(JSON.parse(entry[0]!.args)).to.deep.equal(['node', '--max-semi-space-size=2', main]);
    expect(JSON.parse(cmd[cmd.length - 1]!.args)).to.deep.equal(['serve']);
    expect(finalOps('WORKDIR').pop()?.args).to.equal('/app');
  });

  it('.dockerignore keeps local state and tests out, and what the build copies in', () => {
    const patterns = readFileSync(join(root, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const p of ['node_modules', 'dist', 'data', 'test', 'bench', '.git']) expect(patterns, p).to.include(p);
    const used = stages
      .flatMap((s) => s.body)
      .filter((i) => i.op === 'COPY')
      .map((i) => copySources(i.args))
      .filter((c) => !c.from)
      .flatMap((c) => c.sources);
    expect(used).to.include.members(['src', 'proto', 'config']);
    for (const u of used) {
      for (const name of u.split(/\s+/))
        expect(patterns, `${name} is ignored`).to.not.include(name.replace(/^\.\//, ''));
    }
  });
});
