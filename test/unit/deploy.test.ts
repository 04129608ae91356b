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
 * the Kubernetes manifests in deploy/, without Docker or a cluster.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const deployDir = join(root, 'deploy');
const NS = 'factory-plus';
const SECRET = 'cluster-manager-credentials';
const UID = 10001;
const PORT = 8080;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}

const manifestFiles = readdirSync(deployDir).filter((f) => /\.ya?ml$/.test(f)).sort();

function loadManifests(): Obj[] {
  const out: Obj[] = [];
  for (const f of manifestFiles) {
    for (const doc of parseAllDocuments(readFileSync(join(deployDir, f), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${f}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const v = doc.toJS();
      if (v !== null && v !== undefined) out.push({ ...v, __file: f });
    }
  }
  return out;
}

/** Filled by the suite's before hook, so a YAML error fails the suite with its message. */
let manifests: Obj[] = [];

function one(kind: string): Obj {
  const found = manifests.filter((m) => m.kind === kind);
  expect(found, `exactly one ${kind} in deploy/`).to.have.length(1);
  return found[0]!;
}

const deployment = () => one('Deployment');
const podSpec = () => deployment().spec.template.spec as Obj;
const container = (): Obj => {
  const cs = podSpec().containers as Obj[];
  expect(cs).to.have.length(1);
  return cs[0]!;
};

/** A probe's or Service's port: a number, or a container port's name. */
function resolvePort(port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return (container().ports as Obj[]).find((p) => p.name === port)?.containerPort;
}

/** Environment variables the service reads outside envBindings (src/config/load.ts). */
const loaderVariables = ['UUID_PROFILE', 'CONFIG_FILE'];

describe('deploy/ Kubernetes manifests', () => {
  before(() => {
    manifests = loadManifests();
  });

  it('kubectl reads every manifest offline and finds the expected objects', function () {
    const kubectl = onPath('kubectl');
    expect(kubectl, 'kubectl (Debian package kubernetes-client) must be installed').to.be.a('string');
    // `kubectl apply|create --dry-run=client` still asks an API server for
    // its resource types (even with --validate=false), so without a cluster
    // they fail. `label --local` decodes the files and maps kinds with no
    // server at all. An empty KUBECONFIG keeps any real cluster out of it.
    const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
    try {
      const kubeconfig = join(dir, 'config');
      writeFileSync(kubeconfig, '');
      const r = spawnSync(kubectl!, [
        'label', '--local', '--dry-run=client', '--overwrite', '-o', 'name',
        '-f', deployDir, 'app.kubernetes.io/part-of=factory-plus',
      ], { encoding: 'utf8', env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 60_000 });
      expect(r.status, `kubectl failed: ${r.stderr}`).to.equal(0);
      const names = r.stdout.trim().split('\n').sort();
      expect(names).to.deep.equal([
        'configmap/cluster-manager-config',
        'deployment.apps/cluster-manager',
        'persistentvolumeclaim/cluster-manager-data',
        'poddisruptionbudget.policy/cluster-manager',
        'service/cluster-manager',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('holds exactly the expected objects, with apiVersion, namespace and common labels', () => {
    const kinds = manifests.map((m) => `${m.apiVersion} ${m.kind}`).sort();
    expect(kinds).to.deep.equal([
      'apps/v1 Deployment', 'policy/v1 PodDisruptionBudget', 'v1 ConfigMap', 'v1 PersistentVolumeClaim', 'v1 Service',
    ]);
    for (const m of manifests) {
      expect(m.metadata?.namespace, `${m.__file} namespace`).to.equal(NS);
      expect(m.metadata?.name, `${m.__file} name`).to.be.a('string');
      expect(m.metadata?.labels, `${m.__file} labels`).to.include({
        'app.kubernetes.io/name': 'cluster-manager',
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
    const c = container();
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const p = c[kind];
      expect(p, kind).to.be.an('object');
      expect(p.httpGet.path, kind).to.equal('/health');
      expect(resolvePort(p.httpGet.port), `${kind} port`).to.equal(PORT);
      expect(p.periodSeconds, kind).to.be.a('number');
      expect(p.timeoutSeconds, kind).to.be.a('number');
    }
    // The startup probe must allow the first resync more time than the
    // liveness probe allows a hung process.
    const budget = (p: Obj) => p.periodSeconds * p.failureThreshold;
    expect(budget(c.startupProbe)).to.be.greaterThan(budget(c.livenessProbe));
  });

  it('runs as non-root uid 10001 with a read-only root filesystem and /data on the PVC', () => {
    const pod = podSpec().securityContext;
    expect(pod).to.include({ runAsNonRoot: true, runAsUser: UID, runAsGroup: UID, fsGroup: UID });
    const c = container();
    expect(c.securityContext).to.include({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(c.securityContext.capabilities.drop).to.include('ALL');
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
    for (const [name, key] of [['SERVICE_USERNAME', 'username'], ['SERVICE_PASSWORD', 'password']]) {
      const e = env.find((x) => x.name === name);
      expect(e, name).to.be.an('object');
      expect(e!.value, `${name} literal value`).to.be.undefined;
      expect(e!.valueFrom.secretKeyRef).to.deep.equal({ name: SECRET, key });
    }
    expect(manifests.filter((m) => m.kind === 'Secret'), 'Secret objects').to.be.empty;

    // Any key naming a password, secret or token with a scalar value, and
    // any env var so named with a literal value, is a leaked credential.
    const sensitive = /passw(or)?d|secret|token|credential/i;
    const leaks: string[] = [];
    const walk = (v: unknown, path: string): void => {
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
      else if (v && typeof v === 'object') {
        const o = v as Obj;
        if (typeof o.name === 'string' && sensitive.test(o.name) && 'value' in o) leaks.push(`${path}.${o.name}`);
        for (const [k, x] of Object.entries(o)) {
          if (sensitive.test(k) && (typeof x === 'string' || typeof x === 'number')) leaks.push(`${path}.${k}`);
          walk(x, `${path}.${k}`);
        }
      }
    };
    for (const m of manifests) walk(m, m.__file);
    expect(leaks).to.deep.equal([]);

    for (const f of readdirSync(deployDir)) {
      const text = readFileSync(join(deployDir, f), 'utf8');
      expect(text, f).to.not.match(/--from-literal=password=/);
      expect(text, f).to.not.match(/SERVICE_PASSWORD\s*[=:]\s*\S/);
    }
    const readme = readFileSync(join(deployDir, 'README.md'), 'utf8');
    expect(readme).to.include(`create secret generic ${SECRET}`);
  });

  it('sets only environment variables the service reads', () => {
    const loadSource = readFileSync(join(root, 'src/config/load.ts'), 'utf8');
    for (const name of loaderVariables) expect(loadSource, name).to.include(`env.${name}`);
    const known = new Set([...envBindings.flatMap((b) => b.names), ...loaderVariables]);

    const cm = one('ConfigMap');
    const c = container();
    expect(c.envFrom).to.deep.equal([{ configMapRef: { name: cm.metadata.name } }]);
    const names = [...Object.keys(cm.data), ...(c.env as Obj[]).map((e) => e.name as string)];
    const unknown = names.filter((n) => !known.has(n));
    expect(unknown, 'unknown environment variables').to.deep.equal([]);
    for (const [k, v] of Object.entries(cm.data)) expect(v, `ConfigMap ${k} must be a string`).to.be.a('string');
  });

  it('configures Factory+ mode with the acs profile, valid as the service loads it', () => {
    const cm = one('ConfigMap');
    const env: Record<string, string> = { ...cm.data };
    for (const e of container().env as Obj[]) {
      env[e.name] = e.value ?? (e.valueFrom?.secretKeyRef ? `from-secret-${e.valueFrom.secretKeyRef.key}` : '');
    }
    const config = loadConfig({ env });
    expect(config.profile).to.equal('acs');
    expect(config.uuids.app.setupStatus).to.equal('f6c67e6f-e48e-4f69-b4bb-bfbddcc2a517');
    expect(config.factoryplus.directoryUrl).to.equal('http://directory.factory-plus.svc.cluster.local');
    expect(config.factoryplus.organisation).to.equal('AMRC');
    expect(config.factoryplus.username).to.equal('from-secret-username');
    expect(config.factoryplus.password).to.equal('from-secret-password');
    expect(config.http.port).to.equal(PORT);
    expect(resolvePort('http')).to.equal(config.http.port);
    expect(config.http.host).to.equal('0.0.0.0');
    expect(config.dataDir).to.equal('/data');
    for (const k of ['EXTERNAL_URL', 'REALM', 'EXTERNAL_DOMAIN', 'GIT_EMAIL']) expect(cm.data, k).to.have.property(k);
  });

  it('exposes port 80 to the container port 8080 on a ClusterIP Service', () => {
    const s = one('Service');
    expect(s.metadata.name).to.equal('cluster-manager');
    expect(s.spec.type ?? 'ClusterIP').to.equal('ClusterIP');
    expect(s.spec.ports).to.have.length(1);
    expect(s.spec.ports[0].port).to.equal(80);
    expect(resolvePort(s.spec.ports[0].targetPort)).to.equal(PORT);
  });

  it('lets a node drain evict the single pod (maxUnavailable, not minAvailable)', () => {
    const pdb = one('PodDisruptionBudget');
    expect(pdb.spec.maxUnavailable).to.equal(1);
    expect(pdb.spec).to.not.have.property('minAvailable');
  });
});

// ---------------------------------------------------------------------------

interface Instruction { op: string; args: string }
interface Stage { from: string; name?: string; body: Instruction[] }

/** Dockerfile instructions with line continuations joined and comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!cur && (line === '' || line.startsWith('#'))) continue;
    if (cur && line.startsWith('#')) continue;
    if (line.endsWith('\\')) { cur += `${line.slice(0, -1)} `; continue; }
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
    const engines = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines.split('||').map((r) => r.trim())).to.include('^24.0.0');
    const runs = stages[0]!.body.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(runs).to.match(/npm ci\b/);
    expect(runs).to.match(/npm run build\b/);
    expect(runs).to.match(/python3/).and.match(/\bmake\b/).and.match(/g\+\+/);
  });

  it('installs production dependencies only (--omit=dev) for the final stage', () => {
    const runs = stages.flatMap((s) => s.body).filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(runs).to.match(/npm (ci|prune|install)\b[^\n]*--omit=dev/);
    expect(finalOps('RUN').map((i) => i.args).join('\n')).to.not.match(/npm (ci|install)\b/);
  });

  it('copies only compiled code, production modules, proto/, config/ and package.json into the final stage', () => {
    const allowed = new Set(['package.json', 'node_modules', 'dist', 'proto', 'config']);
    const copies = final().body.filter((i) => i.op === 'COPY' || i.op === 'ADD');
    expect(copies.filter((i) => i.op === 'ADD'), 'ADD in the final stage').to.be.empty;
    const copied = new Set<string>();
    for (const c of copies) {
      const { from, sources } = copySources(c.args);
      if (from) expect(stages.some((s) => s.name === from), `--from=${from}`).to.equal(true);
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
    expect(finalOps('VOLUME').map((i) => i.args).join(' ')).to.include('/data');
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
    const patterns = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n')
      .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const p of ['node_modules', 'dist', 'data', 'test', 'bench', '.git']) expect(patterns, p).to.include(p);
    const used = stages.flatMap((s) => s.body).filter((i) => i.op === 'COPY')
      .map((i) => copySources(i.args)).filter((c) => !c.from).flatMap((c) => c.sources);
    expect(used).to.include.members(['src', 'proto', 'config']);
    for (const u of used) {
      for (const name of u.split(/\s+/)) expect(patterns, `${name} is ignored`).to.not.include(name.replace(/^\.\//, ''));
    }
  });

});
