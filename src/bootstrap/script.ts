import { randomBytes } from 'node:crypto';
import { parseAllDocuments, visit } from 'yaml';
import { renderTemplate } from '../repo/template.js';
import { readsAsItselfPlain } from '../repo/yaml-compat.js';

/*
 * The bootstrap script is one self-contained shell script: the *Bootstrap
 * script* template entry's wrapper, with its files (plus the cluster's Flux
 * manifests) inlined as quoted here-documents that unpack into a temporary
 * directory. It is fetched with `curl | sh`, so it must not depend on
 * anything but the text itself.
 */

/** What the wrapper's `{{files}}` renders to; replaced by the unpacking commands. */
const FILES_MARKER = '@@@@@';

/** The *Bootstrap script* template entry after rendering. */
export interface RenderedBootstrap {
  files: Record<string, string>;
  wrapper: string;
}

/** The values the Bootstrap script template may use (reference §1.5). */
export interface BootstrapValues {
  /** Cluster name (configuration entry `name`). */
  name: string;
  /** Namespace the edge components run in (configuration entry `namespace`). */
  namespace: string;
  /** Kerberos realm (`REALM`). */
  realm: string;
  /** External base domain, for `kdc.` / `kadmin.` (`EXTERNAL_DOMAIN`). */
  domain: string;
  /** Image of the edge-bootstrap pod (`KRBKEYS_IMAGE`). */
  krbkeys: string;
}

export class BootstrapTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BootstrapTemplateError';
  }
}

/*
 * The template substitutes values into shell and YAML text alike with no
 * quoting, so a value is only accepted if it means the same unquoted in YAML
 * and inside single quotes in sh. Realistic names, realms, domains and image
 * references all fit.
 */
const SAFE_VALUE = /^[A-Za-z0-9][A-Za-z0-9._:/@-]*$/;

/**
 * The template context of the original Cluster Manager. `files` must be the
 * literal marker, not the files: the files are inlined after rendering so
 * their text is never itself treated as a template.
 */
export function bootstrapContext(values: BootstrapValues): Record<string, unknown> {
  for (const [key, value] of Object.entries(values)) {
    if (typeof value !== 'string' || !SAFE_VALUE.test(value)) {
      throw new BootstrapTemplateError(
        `bootstrap value ${key}=${JSON.stringify(value)} cannot be put into a shell script safely`,
      );
    }
  }
  return { ...values, files: FILES_MARKER };
}

/*
 * Where the template puts a value into a plain YAML scalar (the reference
 * template writes `namespace: {{namespace}}` and `value: {{name}}`), a
 * namespace `yes` or a cluster named `2024` would reach kubectl, which
 * reads YAML 1.1, as a boolean or a number, and the pod would not apply.
 * The template is rendered once more with marker values to find the plain
 * scalars that hold a value, and each must read back as the text it is.
 */
function checkPlainYamlValues(template: unknown, values: BootstrapValues): void {
  const entries = Object.entries(values).map(([key, value], i) => ({ key, value, marker: `fplusvalue${i}x` }));
  const marked = renderTemplate(
    template,
    bootstrapContext(Object.fromEntries(entries.map((e) => [e.key, e.marker])) as unknown as BootstrapValues),
  );
  const files = (marked as { files?: unknown } | null)?.files;
  if (files === null || typeof files !== 'object') return;
  for (const [file, text] of Object.entries(files)) {
    if (!/\.ya?ml$/.test(file) || typeof text !== 'string') continue;
    for (const doc of parseAllDocuments(text)) {
      visit(doc, {
        Scalar(_key, node) {
          if (node.type !== 'PLAIN' || typeof node.value !== 'string') return;
          const used = entries.filter((e) => (node.value as string).includes(e.marker));
          if (used.length === 0) return;
          const real = used.reduce((s, e) => s.split(e.marker).join(e.value), node.value);
          if (!readsAsItselfPlain(real)) {
            const [e] = used;
            throw new BootstrapTemplateError(
              `the template writes ${e.key}=${JSON.stringify(e.value)} unquoted into ${file}, where YAML 1.1 readers such as kubectl would not read ${JSON.stringify(real)} as text; quote it in the template`,
            );
          }
        },
      });
    }
  }
}

/**
 * Renders a Bootstrap script template entry and checks it has the shape
 * `assembleBootstrapScript` needs; the entry comes from the ConfigDB, so a
 * broken one should fail here with a message rather than later as a crash.
 */
export function renderBootstrap(template: unknown, values: BootstrapValues): RenderedBootstrap {
  const out = renderTemplate(template, bootstrapContext(values));
  checkPlainYamlValues(template, values);
  if (out === null || typeof out !== 'object' || Array.isArray(out)) {
    throw new BootstrapTemplateError('the bootstrap template did not render to an object');
  }
  const { files, wrapper } = out as Record<string, unknown>;
  if (typeof wrapper !== 'string') throw new BootstrapTemplateError('the bootstrap template has no wrapper text');
  if (files === null || typeof files !== 'object' || Array.isArray(files)) {
    throw new BootstrapTemplateError('the bootstrap template has no files object');
  }
  for (const [file, text] of Object.entries(files)) {
    if (typeof text !== 'string') throw new BootstrapTemplateError(`the bootstrap template's file ${file} is not text`);
  }
  return { files: files as Record<string, string>, wrapper };
}

/** A plain file name: it becomes `cat >NAME` in a directory the script created. */
const FILE_NAME = /^[A-Za-z0-9._-]+$/;

function checkFileName(name: string): void {
  if (!FILE_NAME.test(name) || name === '.' || name === '..') {
    throw new BootstrapTemplateError(`bootstrap file name ${JSON.stringify(name)} is not a plain file name`);
  }
}

/** 15 random bytes in base64url: 20 characters, all safe in a here-doc delimiter. */
function randomMarker(): string {
  return randomBytes(15).toString('base64url');
}

/**
 * A here-document ends at the first line equal to its delimiter, so the
 * marker must not be a line of any file; with 120 random bits that is
 * practically certain, and this makes it certain.
 */
/** Whether `line` is one of the lines of `text`, without splitting half a megabyte into lines. */
function isLineOf(text: string, line: string): boolean {
  return text === line || text.startsWith(`${line}\n`) || text.endsWith(`\n${line}`) || text.includes(`\n${line}\n`);
}

function pickMarker(texts: string[], generate: () => string): string {
  for (let tries = 0; tries < 100; tries++) {
    const marker = generate();
    if (!/^[A-Za-z0-9_-]+$/.test(marker)) throw new Error(`unusable here-doc marker ${JSON.stringify(marker)}`);
    if (!texts.some((t) => isLineOf(t, marker))) return marker;
  }
  throw new Error('could not find a here-doc marker that occurs in none of the bootstrap files');
}

/*
 * A quoted here-doc carries text unchanged ($, `, \ and quotes included) but
 * always ends with a newline. Text that already ends with one is written as
 * is; other text is passed through $(...), which strips exactly the one
 * newline the here-doc added, so every file unpacks byte for byte.
 */
function unpackCommand(name: string, text: string, marker: string): string {
  if (text.endsWith('\n')) return `cat >${name} <<'${marker}'\n${text}${marker}`;
  return `printf '%s' "$(cat <<'${marker}'\n${text}\n${marker}\n)" >${name}`;
}

/**
 * The complete bootstrap script for one cluster. `fluxSystemYaml` is the
 * shared Helm repo's `flux-system/flux-system.yaml` and `selfLink` the
 * cluster's `self-link.yaml`; they are added as files of those names.
 * `opts.marker` exists so tests can force marker collisions.
 */
export function assembleBootstrapScript(
  input: { rendered: RenderedBootstrap; fluxSystemYaml: string; selfLink: string },
  opts: { marker?: () => string } = {},
): string {
  const { rendered } = input;
  const files: Record<string, string> = {
    ...rendered.files,
    'flux-system.yaml': input.fluxSystemYaml,
    'self-link.yaml': input.selfLink,
  };
  for (const [name, text] of Object.entries(files)) {
    checkFileName(name);
    if (typeof text !== 'string') throw new BootstrapTemplateError(`bootstrap file ${name} is not text`);
    // A shell variable cannot hold NUL, and a here-doc drops or mangles it.
    if (text.includes('\0')) throw new BootstrapTemplateError(`bootstrap file ${name} contains a NUL byte`);
  }
  const at = rendered.wrapper.indexOf(FILES_MARKER);
  if (at < 0)
    throw new BootstrapTemplateError(`the bootstrap wrapper has no ${FILES_MARKER} ({{files}}) to put the files in`);

  const marker = pickMarker(Object.values(files), opts.marker ?? randomMarker);
  const unpack = Object.entries(files)
    .map(([name, text]) => unpackCommand(name, text, marker))
    .join('\n');
  // Spliced rather than String.replace, which would expand `$&` and friends in the file text.
  return rendered.wrapper.slice(0, at) + unpack + rendered.wrapper.slice(at + FILES_MARKER.length);
}
