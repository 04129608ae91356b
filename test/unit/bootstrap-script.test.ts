import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assembleBootstrapScript,
  bootstrapContext,
  BootstrapTemplateError,
  renderBootstrap,
  type RenderedBootstrap,
} from '../../src/bootstrap/script.js';
import { bootstrapTemplate } from '../../src/embedded/seed/templates.js';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { renderTemplate, templateKeys } from '../../src/repo/template.js';
import { readFixture } from '../fixtures/cluster-repo.js';
import { readFluxSystemYaml } from '../fixtures/flux-system.js';
import { requireTool, toolPath } from '../helpers/tools.js';

const SHELLCHECK = toolPath('shellcheck') ?? 'shellcheck';
const DASH = toolPath('dash') ?? 'dash';

/** The bootstrap context of reference §1.5 for a realistic installation. */
const values = {
  name: 'Building_1',
  namespace: 'fplus-edge',
  realm: 'FACTORYPLUS.EXAMPLE.COM',
  domain: 'factoryplus.example.com',
  krbkeys: 'ghcr.io/amrc-factoryplus/acs-krb-keys-operator:v3.2.1',
};
/** A Flux installation of the real one's size and shape, and a self-link as the cluster repo renders it. */
const fluxSystemYaml = readFluxSystemYaml();
const selfLink = readFixture('edo/cluster/self-link.yaml');

/** Text that would break an unquoted here-doc, a fixed marker or String.replace. */
const TRICKY = [
  'EOF',
  "it's 'quoted' and \"double\"",
  'home is $HOME and ${PATH:-x} $(echo no) `echo no`',
  'back\\slash \\',
  '@@@@@',
  'AAAAAAAAAAAAAAAAAAAA',
  ')',
  "$& $' $` $1",
  '\ttab',
  'crlf\r',
  'ünïcødé ✓',
  '',
].join('\n');

function render(): RenderedBootstrap {
  const out = renderTemplate(bootstrapTemplate, bootstrapContext(values)) as RenderedBootstrap;
  expect(out).to.deep.equal(renderBootstrap(bootstrapTemplate, values));
  return out;
}

function shellcheck(text: string): { status: number | null; out: string } {
  const r = spawnSync(SHELLCHECK, ['-s', 'sh', '-'], { input: text, encoding: 'utf8' });
  if (r.error) throw new Error(`shellcheck could not be run (${r.error.message})`);
  return { status: r.status, out: r.stdout + r.stderr };
}

/*
 * TEST FAKE standing in for kubectl, because no Kubernetes cluster can run in
 * unit tests. It logs every call, snapshots the directory it is run from (the
 * unpacked files) and keeps copies of what it is asked to apply. State between
 * runs — has the cluster joined? — is a file, like the secret it stands for.
 */
const FAKE_KUBECTL = String.raw`#!/bin/sh
# TEST FAKE of kubectl (see bootstrap-script.test.ts).
state=$FAKE_KUBECTL_STATE
printf '%s\n' "$*" >>"$state/calls.log"
case $1 in
    version|cluster-info)
        if [ -n "$FAKE_KUBECTL_UNREACHABLE" ]; then
            echo "The connection to the server 192.0.2.1:6443 was refused" >&2
            exit 1
        fi
        rm -rf "$state/unpacked"
        mkdir -p "$state/unpacked"
        cp ./* "$state/unpacked/"
        echo "Client Version: fake" ;;
    config) echo fake-context ;;
    create)
        case " $* " in
            *" --dry-run=client "*) printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$3" ;;
            *) echo "fake kubectl: AlreadyExists" >&2; exit 1 ;;
        esac ;;
    apply)
        file=; prev=
        for a in "$@"; do
            [ "$prev" = -f ] && file=$a
            prev=$a
        done
        mkdir -p "$state/applied"
        if [ "$file" = - ]; then cat >"$state/applied/stdin"; else cp "$file" "$state/applied/$(basename "$file")"; fi
        if [ "$file" = "$FAKE_KUBECTL_FAIL_APPLY" ]; then echo "fake kubectl: apply failed" >&2; exit 1; fi ;;
    get)
        case " $* " in
            *" secret/flux-secrets "*) [ -e "$state/joined" ] || { echo "NotFound" >&2; exit 1; } ;;
            *" deployment/helm-controller "*) [ -n "$FAKE_KUBECTL_FLUX" ] || { echo "NotFound" >&2; exit 1; } ;;
            *" crd/"*) if [ "$FAKE_KUBECTL_FLUX" = old ]; then echo "v2beta1 v2beta2"; else echo "v1beta2 v1 v2"; fi ;;
            *" nodes "*) echo "node-1   Ready" ;;
        esac ;;
    attach) touch "$state/joined" ;;
esac
exit 0
`;

/** Tools the script may use; the sandbox PATH holds only these, so the host's real kubectl is never found. */
const TOOLS = ['mktemp', 'rm', 'cat', 'cp', 'mkdir', 'tr', 'grep', 'touch', 'basename'];

interface Sandbox {
  root: string;
  bin: string;
  tmp: string;
  state: string;
}

function sandbox(withKubectl: boolean): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'bootstrap-run-'));
  const sb = { root, bin: join(root, 'bin'), tmp: join(root, 'tmp'), state: join(root, 'state') };
  for (const d of [sb.bin, sb.tmp, sb.state]) mkdirSync(d);
  symlinkSync(DASH, join(sb.bin, 'sh'));
  for (const tool of TOOLS) {
    const path = ['/usr/bin', '/bin'].map((d) => join(d, tool)).find((p) => existsSync(p));
    if (!path) throw new Error(`test needs ${tool}`);
    symlinkSync(path, join(sb.bin, tool));
  }
  if (withKubectl) {
    writeFileSync(join(sb.bin, 'kubectl'), FAKE_KUBECTL);
    chmodSync(join(sb.bin, 'kubectl'), 0o755);
  }
  return sb;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the script with dash in its own session, so it has no controlling
 * terminal: /dev/tty cannot be opened, as under CI or a detached `curl | sh`.
 */
function run(sb: Sandbox, script: string, opts: { env?: Record<string, string>; args?: string[] } = {}): Promise<Run> {
  const file = join(sb.root, 'bootstrap-script.sh');
  writeFileSync(file, script);
  return new Promise((resolve, reject) => {
    const child = spawn(DASH, [file, ...(opts.args ?? [])], {
      cwd: sb.root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: sb.bin, TMPDIR: sb.tmp, HOME: sb.root, FAKE_KUBECTL_STATE: sb.state, ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
    }, 15000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function calls(sb: Sandbox): string[] {
  const log = join(sb.state, 'calls.log');
  return existsSync(log)
    ? readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : [];
}

function applied(sb: Sandbox, file: string): string {
  return readFileSync(join(sb.state, 'applied', file), 'utf8');
}

describe('bootstrap script', function () {
  this.timeout(60000);
  const sandboxes: Sandbox[] = [];
  const newSandbox = (withKubectl = true) => {
    const sb = sandbox(withKubectl);
    sandboxes.push(sb);
    return sb;
  };
  after(() => {
    for (const sb of sandboxes) rmSync(sb.root, { recursive: true, force: true });
  });

  before(() => {
    requireTool('shellcheck');
    requireTool('dash');
  });

  it('uses the template variables of the original', () => {
    expect([...templateKeys(bootstrapTemplate)].sort()).to.deep.equal([
      'domain',
      'files',
      'krbkeys',
      'name',
      'namespace',
      'realm',
    ]);
  });

  it('renders the files marker into the wrapper and inlines every file', () => {
    const rendered = render();
    expect(Object.keys(rendered.files)).to.deep.equal(['bootstrap.sh', 'edge-bootstrap.yaml']);
    expect(rendered.wrapper.split('@@@@@')).to.have.length(2);
    const pod = rendered.files['edge-bootstrap.yaml'];
    expect(pod)
      .to.contain('kdc = kdc.factoryplus.example.com')
      .and.contain('admin_server = kadmin.factoryplus.example.com');
    expect(pod)
      .to.contain('image: "ghcr.io/amrc-factoryplus/acs-krb-keys-operator:v3.2.1"')
      .and.contain('value: "Building_1"');
    expect(rendered.files['bootstrap.sh']).to.contain("NS='fplus-edge'");

    const script = assembleBootstrapScript({ rendered, fluxSystemYaml, selfLink });
    expect(script).to.not.contain('@@@@@').and.not.contain('{{');
    const heredocs = [...script.matchAll(/^cat >([^ ]+) <<'([A-Za-z0-9_-]{20})'$/gm)];
    expect(heredocs.map((m) => m[1])).to.deep.equal([
      'bootstrap.sh',
      'edge-bootstrap.yaml',
      'flux-system.yaml',
      'self-link.yaml',
    ]);
    expect(new Set(heredocs.map((m) => m[2])).size).to.equal(1);
    expect(assembleBootstrapScript({ rendered, fluxSystemYaml, selfLink })).to.not.equal(script);
  });

  it('passes shellcheck -s sh, as assembled and as the driver on its own', () => {
    // A setup in which shellcheck finds nothing wrong with anything would prove nothing.
    expect(shellcheck('#!/bin/sh\nlocal x=$1\necho $x\n').status).to.not.equal(0);
    const rendered = render();
    const script = assembleBootstrapScript({ rendered, fluxSystemYaml, selfLink });
    for (const text of [script, rendered.files['bootstrap.sh']]) {
      const r = shellcheck(text);
      expect(r.out).to.equal('');
      expect(r.status).to.equal(0);
    }
  });

  it('parses with dash -n', () => {
    const rendered = render();
    const script = assembleBootstrapScript({ rendered, fluxSystemYaml, selfLink });
    for (const text of [script, rendered.files['bootstrap.sh']]) {
      const r = spawnSync(DASH, ['-n'], { input: text, encoding: 'utf8' });
      expect(r.stderr).to.equal('');
      expect(r.status).to.equal(0);
    }
    expect(spawnSync(DASH, ['-n'], { input: 'if then fi\n' }).status).to.not.equal(0);
  });

  it('runs under dash: unpacks the files exactly, applies them, and can be run again', async () => {
    const rendered = render();
    const script = assembleBootstrapScript({ rendered, fluxSystemYaml, selfLink });
    const sb = newSandbox();

    const first = await run(sb, script, { env: { BOOTSTRAP_YES: '1' } });
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout).to.contain('Done: edge cluster Building_1 is bootstrapped.');

    const files = { ...rendered.files, 'flux-system.yaml': fluxSystemYaml, 'self-link.yaml': selfLink };
    expect(readdirSync(join(sb.state, 'unpacked')).sort()).to.deep.equal(Object.keys(files).sort());
    for (const [name, text] of Object.entries(files)) {
      expect(readFileSync(join(sb.state, 'unpacked', name), 'utf8') === text, `unpacked ${name}`).to.equal(true);
    }
    expect(applied(sb, 'flux-system.yaml') === fluxSystemYaml).to.equal(true);
    expect(applied(sb, 'self-link.yaml')).to.equal(selfLink);
    expect(applied(sb, 'edge-bootstrap.yaml')).to.equal(rendered.files['edge-bootstrap.yaml']);
    expect(applied(sb, 'stdin')).to.contain('kind: Namespace').and.contain('name: fplus-edge');

    const log = calls(sb);
    const applyOf = (f: string) => log.filter((l) => /^apply .*--server-side/.test(l) && l.endsWith(` -f ${f}`));
    expect(log[0]).to.match(/^version/);
    expect(applyOf('flux-system.yaml')).to.have.length(1);
    expect(applyOf('self-link.yaml')).to.have.length(1);
    expect(applyOf('-')).to.have.length(1);
    expect(log.filter((l) => l.startsWith('create '))).to.deep.equal([
      'create namespace fplus-edge --dry-run=client -o yaml',
    ]);
    expect(log.filter((l) => l.startsWith('attach '))).to.have.length(1);
    // The cluster-admin binding of the bootstrap pod is removed afterwards.
    expect(log.filter((l) => l.startsWith('delete -f edge-bootstrap.yaml'))).to.have.length(1);
    expect(log.at(-1)).to.match(/^wait -n fplus-edge kustomization\/self-link --for=condition=Ready/);
    expect(readdirSync(sb.tmp), 'temporary directory removed').to.deep.equal([]);

    const second = await run(sb, script, { env: { BOOTSTRAP_YES: '1' } });
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.contain('already joined');
    const log2 = calls(sb).slice(log.length);
    expect(log2.filter((l) => l.startsWith('attach '))).to.deep.equal([]);
    expect(log2.filter((l) => /^apply .* -f self-link\.yaml$/.test(l))).to.have.length(1);
    expect(readdirSync(sb.tmp)).to.deep.equal([]);
  });

  it('succeeds when run again after failing part-way', async () => {
    const script = assembleBootstrapScript({ rendered: render(), fluxSystemYaml, selfLink });
    const sb = newSandbox();
    const failed = await run(sb, script, { env: { BOOTSTRAP_YES: '1', FAKE_KUBECTL_FAIL_APPLY: 'self-link.yaml' } });
    expect(failed.code).to.not.equal(0);
    expect(failed.stdout).to.not.contain('Done');
    expect(readdirSync(sb.tmp)).to.deep.equal([]);

    const again = await run(sb, script, { args: ['--yes'] });
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.contain('Done');
    expect(calls(sb).filter((l) => /^apply .* -f flux-system\.yaml$/.test(l))).to.have.length(2);
  });

  it('leaves an existing compatible Flux alone and refuses an incompatible one', async () => {
    const script = assembleBootstrapScript({ rendered: render(), fluxSystemYaml, selfLink });
    const sb = newSandbox();
    const ok = await run(sb, script, { env: { BOOTSTRAP_YES: '1', FAKE_KUBECTL_FLUX: '1' } });
    expect(ok.code, ok.stderr).to.equal(0);
    expect(calls(sb).filter((l) => l.endsWith('-f flux-system.yaml'))).to.deep.equal([]);
    expect(calls(sb).filter((l) => l.endsWith('-f self-link.yaml'))).to.have.length(1);

    const old = newSandbox();
    const bad = await run(old, script, { env: { BOOTSTRAP_YES: '1', FAKE_KUBECTL_FLUX: 'old' } });
    expect(bad.code).to.not.equal(0);
    expect(bad.stderr).to.contain('upgrade Flux');
    expect(calls(old).filter((l) => l.startsWith('apply '))).to.deep.equal([]);
  });

  it('asks for confirmation unless told not to, and will not go on without a terminal', async () => {
    const script = assembleBootstrapScript({ rendered: render(), fluxSystemYaml, selfLink });
    const sb = newSandbox();
    const r = await run(sb, script);
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.contain('no terminal to confirm on').and.contain('BOOTSTRAP_YES=1');
    expect(calls(sb).filter((l) => l.startsWith('apply '))).to.deep.equal([]);
    expect(readdirSync(sb.tmp)).to.deep.equal([]);

    const bogus = await run(sb, script, { args: ['--force'] });
    expect(bogus.code).to.not.equal(0);
    expect(bogus.stderr).to.contain("unknown argument '--force'");
  });

  it('stops with a clear message when kubectl is missing', async () => {
    const script = assembleBootstrapScript({ rendered: render(), fluxSystemYaml, selfLink });
    const sb = newSandbox(false);
    const r = await run(sb, script, { env: { BOOTSTRAP_YES: '1' } });
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.contain('kubectl not found on PATH');
    expect(readdirSync(sb.tmp)).to.deep.equal([]);
  });

  it('stops with a clear message when the cluster cannot be reached', async () => {
    const script = assembleBootstrapScript({ rendered: render(), fluxSystemYaml, selfLink });
    const sb = newSandbox();
    const r = await run(sb, script, { env: { BOOTSTRAP_YES: '1', FAKE_KUBECTL_UNREACHABLE: '1' } });
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.contain('cannot reach the Kubernetes cluster').and.contain('192.0.2.1:6443 was refused');
    expect(calls(sb).filter((l) => !/^(version|config)/.test(l))).to.deep.equal([]);
    expect(readdirSync(sb.tmp)).to.deep.equal([]);
  });

  it('carries any file text byte for byte, even one containing a candidate marker', async () => {
    const rendered = render();
    const extra = {
      'tricky.txt': `${TRICKY}\n`,
      'no-final-newline.txt': TRICKY,
      'empty.txt': '',
      'blank-lines.txt': '\n\n',
    };
    const candidates = ['AAAAAAAAAAAAAAAAAAAA', 'BBBBBBBBBBBBBBBBBBBB'];
    const script = assembleBootstrapScript(
      { rendered: { ...rendered, files: { ...rendered.files, ...extra } }, fluxSystemYaml, selfLink },
      { marker: () => candidates.shift()! },
    );
    expect(script).to.contain("<<'BBBBBBBBBBBBBBBBBBBB'").and.not.contain("<<'AAAAAAAAAAAAAAAAAAAA'");
    expect(shellcheck(script).out).to.equal('');

    const sb = newSandbox();
    const r = await run(sb, script, { env: { BOOTSTRAP_YES: '1' } });
    expect(r.code, r.stderr).to.equal(0);
    for (const [name, text] of Object.entries(extra)) {
      expect(readFileSync(join(sb.state, 'unpacked', name), 'utf8'), name).to.equal(text);
    }
  });

  it('inlines files into any wrapper with nothing but the here-docs', () => {
    const files = { 'a.txt': TRICKY, 'b.txt': `${TRICKY}\n`, 'c.txt': '' };
    const dir = mkdtempSync(join(tmpdir(), 'bootstrap-wrap-'));
    try {
      const script = assembleBootstrapScript({
        rendered: { files, wrapper: 'set -eu\ncd "$1"\n@@@@@\necho "@@@@@ stays"\n' },
        fluxSystemYaml: 'flux\n',
        selfLink: 'self',
      });
      const r = spawnSync(DASH, ['-s', dir], { input: script, encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.equal('@@@@@ stays\n');
      const all: Record<string, string> = { ...files, 'flux-system.yaml': 'flux\n', 'self-link.yaml': 'self' };
      expect(readdirSync(dir).sort()).to.deep.equal(Object.keys(all).sort());
      for (const [name, text] of Object.entries(all))
        expect(readFileSync(join(dir, name), 'utf8'), name).to.equal(text);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a value the template puts unquoted into YAML where YAML 1.1 would not read it as text', () => {
    const template = {
      wrapper: '{{files}}',
      files: {
        'edge-bootstrap.yaml':
          'metadata:\n  namespace: {{namespace}}\nspec:\n  env:\n    - value: {{name}}\n    - value: kdc.{{domain}}\n',
        'bootstrap.sh': 'N="{{namespace}}"\n',
      },
    };
    const cases: Array<[Partial<typeof values>, boolean]> = [
      [{}, false],
      [{ namespace: 'yes' }, true],
      [{ namespace: 'on' }, true],
      [{ namespace: '2024-01-01' }, true],
      [{ name: '2024' }, true],
      [{ name: 'Yes' }, true],
      [{ name: '0b101' }, true],
      [{ name: '1e3' }, true],
      [{ domain: 'yes' }, false],
      [{ namespace: 'edge-2024' }, false],
    ];
    for (const [over, refused] of cases) {
      const v = { ...values, ...over };
      // The judge: what a YAML 1.1 reader makes of the file rendered without the check.
      const text = (renderTemplate(template, bootstrapContext(v)) as RenderedBootstrap).files['edge-bootstrap.yaml'];
      const read = parseYaml(text, { version: '1.1' }) as {
        metadata: { namespace: unknown };
        spec: { env: Array<{ value: unknown }> };
      };
      const asText =
        read.metadata.namespace === v.namespace &&
        read.spec.env[0].value === v.name &&
        read.spec.env[1].value === `kdc.${v.domain}`;
      expect(asText, JSON.stringify(over)).to.equal(!refused);
      if (refused)
        expect(() => renderBootstrap(template, v), JSON.stringify(over)).to.throw(
          BootstrapTemplateError,
          /unquoted into edge-bootstrap\.yaml/,
        );
      else expect(() => renderBootstrap(template, v), JSON.stringify(over)).not.to.throw();
    }
    // The embedded template quotes its values, so there the same names are fine.
    const out = renderBootstrap(bootstrapTemplate, { ...values, namespace: 'yes', name: '2024' });
    for (const doc of parseAllDocuments(out.files['edge-bootstrap.yaml'], { version: '1.1' })) {
      expect((doc.toJS() as { metadata: { namespace: unknown } }).metadata.namespace).to.equal('yes');
    }
  });

  it('refuses file names that are not plain names, and broken templates', () => {
    const rendered = render();
    for (const bad of ['', '.', '..', 'a/b', '../x', '/etc/passwd', 'a b', 'x;rm', '$(x)', '*', 'é.yaml', 'a\nb']) {
      expect(
        () =>
          assembleBootstrapScript({
            rendered: { ...rendered, files: { ...rendered.files, [bad]: 'x' } },
            fluxSystemYaml,
            selfLink,
          }),
        JSON.stringify(bad),
      ).to.throw(BootstrapTemplateError, /not a plain file name/);
    }
    expect(() =>
      assembleBootstrapScript({ rendered: { ...rendered, files: { 'a.txt': 'x\0y' } }, fluxSystemYaml, selfLink }),
    ).to.throw(BootstrapTemplateError, /NUL/);
    expect(() =>
      assembleBootstrapScript({ rendered: { ...rendered, wrapper: '#!/bin/sh\n' }, fluxSystemYaml, selfLink }),
    ).to.throw(BootstrapTemplateError, /@@@@@/);
    expect(() => renderBootstrap({ files: [], wrapper: '{{files}}' }, values)).to.throw(
      BootstrapTemplateError,
      /files/,
    );
    expect(() => renderBootstrap({ files: {}, wrapper: 3 }, values)).to.throw(BootstrapTemplateError, /wrapper/);
    expect(() => bootstrapContext({ ...values, name: "x'; rm -rf /" })).to.throw(BootstrapTemplateError, /name/);
  });
});
