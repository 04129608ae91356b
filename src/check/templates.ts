import { assembleBootstrapScript, BootstrapTemplateError, renderBootstrap } from '../bootstrap/script.js';
import { isJsonObject, type Json } from '../lib/merge-patch.js';
import { renderClusterRepo, SpecError, validateSpec } from '../repo/manifests.js';
import { renderTemplate } from '../repo/template.js';

/** Which template entry a problem is about. */
export type TemplateKind = 'flux' | 'helmRelease' | 'chart' | 'bootstrap';

/** A cluster that exists only to render the templates with. */
const SAMPLE_CLUSTER = {
  uuid: '00000000-0000-4000-8000-00000000c4ec',
  entry: { name: 'Check_Config_Sample', namespace: 'fplus-edge' },
};

/** Problems of one entry on its own; undefined when none is found. */
export function entryProblem(
  kind: TemplateKind,
  value: Json,
  ctx: { realm: string; domain: string; krbkeysImage: string },
): string | undefined {
  switch (kind) {
    case 'flux':
      if (!isJsonObject(value)) return 'is not a JSON object of file name -> manifests';
      return undefined;
    case 'helmRelease':
      if (!isJsonObject(value) || !isJsonObject(value.template)) return 'has no "template" object';
      return undefined;
    case 'chart': {
      const out = renderTemplate(value, { uuid: SAMPLE_CLUSTER.uuid, name: SAMPLE_CLUSTER.entry.name });
      if (!isJsonObject(out as Json)) return 'does not render to a JSON object';
      return undefined;
    }
    case 'bootstrap':
      return bootstrapProblem(value, ctx);
  }
}

/**
 * The Bootstrap script entry checked by what the bootstrap route does with
 * it: rendered with the sample cluster's values and assembled into a script
 * (with empty stand-ins for the two files the service adds).
 */
function bootstrapProblem(
  value: Json,
  ctx: { realm: string; domain: string; krbkeysImage: string },
): string | undefined {
  try {
    const rendered = renderBootstrap(value, {
      name: SAMPLE_CLUSTER.entry.name,
      namespace: SAMPLE_CLUSTER.entry.namespace,
      realm: ctx.realm,
      domain: ctx.domain,
      krbkeys: ctx.krbkeysImage,
    });
    assembleBootstrapScript({ rendered, fluxSystemYaml: '', selfLink: '' });
    return undefined;
  } catch (e) {
    if (e instanceof BootstrapTemplateError) return `cannot be used: ${e.message}`;
    throw e;
  }
}

/** The entry a renderClusterRepo error is about, from its message. */
function culprit(message: string): 'flux' | 'helmRelease' | 'chart' {
  if (/Helm chart template/i.test(message)) return 'chart';
  if (/HelmRelease template/i.test(message)) return 'helmRelease';
  return 'flux';
}

/**
 * Renders the sample cluster's repo from the three entries, as the
 * commissioning does. Undefined when it renders, else the entry at fault and why.
 */
export function renderProblem(
  t: { flux: Json; helmRelease: Json; chart: Json },
  gitBase: string,
  helmRepo: string,
): { kind: 'flux' | 'helmRelease' | 'chart'; message: string } | undefined {
  try {
    const repo = renderClusterRepo({
      uuid: SAMPLE_CLUSTER.uuid,
      spec: validateSpec(SAMPLE_CLUSTER.entry),
      templates: t,
      gitBase,
      helmRepo,
    });
    if (repo.files.size === 0) return { kind: 'flux', message: 'renders no files' };
    return undefined;
  } catch (e) {
    const message = (e as Error).message;
    return { kind: e instanceof SpecError ? culprit(message) : 'flux', message };
  }
}
