import { jsonBytes, jsonDepth } from '../lib/json-limits.js';
import { isJsonObject, mergePatches, type Json } from '../lib/merge-patch.js';
import { isUuid } from '../lib/uuid.js';
import { renderTemplate } from './template.js';
import { isDnsLabel, k8sName, toMultiDoc } from './yaml.js';

/** An Edge cluster configuration entry. */
export interface ClusterSpec {
  name: string;
  namespace: string;
  chart?: string;
  bare?: boolean;
  values?: Record<string, Json>;
}

export interface ManifestTemplates {
  /** Flux template entry: file name -> manifest templates. */
  flux: Json;
  /** K8s resource template entry for HelmRelease; only `template` is used. */
  helmRelease: Json;
  /** Helm chart template entry of the cluster's chart. */
  chart: Json;
}

export interface RenderInput {
  uuid: string;
  spec: ClusterSpec;
  templates: ManifestTemplates;
  /** Base URL of the Git server (repo URL = base + `uuid/<repo>`). */
  gitBase: string;
  helmRepo: string;
}

export interface RenderedRepo {
  /** Path in the repo -> file text, for every file under `edo/cluster/`. */
  files: Map<string, string>;
  /** The `self-link.yaml` manifests, as embedded in the bootstrap script. */
  selfLink: string;
}

export class SpecError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'SpecError';
  }
}

const NAME = /^[A-Za-z0-9_]{1,63}$/;

/**
 * Bounds on a configuration entry's Helm values, checked before anything is
 * made for the cluster: rendering walks the values recursively and writes
 * them as YAML, so without a bound a deep or huge entry fails (or costs
 * seconds of CPU) half-way through commissioning.
 */
export interface SpecLimits {
  /** Levels of nesting of `values` (`{}` is 1); MAX_VALUES_DEPTH. */
  valuesDepth: number;
  /** Size of `values` as JSON text, in bytes; MAX_VALUES_BYTES. */
  valuesBytes: number;
}

const DEFAULT_SPEC_LIMITS: SpecLimits = { valuesDepth: 64, valuesBytes: 256 * 1024 };

/**
 * A field's value for a message: strings quoted and cut short, anything else
 * by its type. The message lands in the status entry, so neither a megabyte
 * string nor a deeply nested object may be copied or serialised into it.
 */
function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'a list' : 'an object';
}

/**
 * Checks a configuration entry before anything is made from it. A cluster's
 * name becomes a Sparkplug group, a repo path and Kerberos principal names,
 * so it is held to the characters all of those accept.
 */
export function validateSpec(spec: unknown, limits: SpecLimits = DEFAULT_SPEC_LIMITS): ClusterSpec {
  if (!isJsonObject(spec)) throw new SpecError('InvalidSpec', 'the configuration entry is not a JSON object');
  const { name, namespace, chart, bare, values } = spec;
  if (typeof name !== 'string' || name === '') throw new SpecError('MissingName', 'the configuration has no name');
  if (!NAME.test(name)) {
    throw new SpecError('InvalidName', `name ${shown(name)} must be 1-63 letters, digits or underscores`);
  }
  if (typeof namespace !== 'string' || !isDnsLabel(namespace)) {
    throw new SpecError(
      'InvalidNamespace',
      `namespace ${shown(namespace ?? null)} is not a valid Kubernetes namespace (lower-case RFC 1123 label)`,
    );
  }
  // UUIDs are compared in lower case everywhere (Config Store paths, ACLs):
  // an upper-case chart is the same chart, not one that is never found.
  const chartUuid = typeof chart === 'string' ? chart.toLowerCase() : chart;
  if (chartUuid !== undefined && !isUuid(chartUuid))
    throw new SpecError('InvalidChart', `chart ${shown(chart)} must be a UUID`);
  if (bare !== undefined && typeof bare !== 'boolean') throw new SpecError('InvalidSpec', 'bare must be true or false');
  if (values !== undefined && !isJsonObject(values)) throw new SpecError('InvalidValues', 'values must be an object');
  if (values !== undefined) {
    if (jsonDepth(values, limits.valuesDepth) > limits.valuesDepth) {
      throw new SpecError(
        'InvalidValues',
        `values nest more than ${limits.valuesDepth} levels deep, the limit (MAX_VALUES_DEPTH)`,
      );
    }
    const bytes = jsonBytes(values);
    if (bytes > limits.valuesBytes) {
      throw new SpecError(
        'InvalidValues',
        `values take ${bytes} bytes as JSON, over the limit of ${limits.valuesBytes} (MAX_VALUES_BYTES)`,
      );
    }
  }
  // Only the fields that shape the cluster: the hash of this object decides
  // whether a ready cluster needs work, so unrelated keys must not count.
  const out: ClusterSpec = { name, namespace };
  if (chartUuid !== undefined) out.chart = chartUuid;
  if (bare !== undefined) out.bare = bare;
  if (values !== undefined) out.values = values as Record<string, Json>;
  return out;
}

/** The entry fields `validateSpec` reads; a Config Store search returns just these. */
export const SPEC_FIELDS = ['name', 'namespace', 'chart', 'bare', 'values'] as const;

function gitUrl(base: string, repo: string): string {
  return new URL(`uuid/${repo}`, base.endsWith('/') ? base : `${base}/`).href;
}

function asDocs(v: unknown, file: string): unknown[] {
  if (!Array.isArray(v))
    throw new SpecError('InvalidTemplate', `the Flux template's ${file} did not render to a list of manifests`);
  for (const d of v) {
    if (!isJsonObject(d as Json))
      throw new SpecError(
        'InvalidTemplate',
        `the Flux template's ${file} has a manifest that rendered to ${JSON.stringify(d)}`,
      );
  }
  return v;
}

/**
 * The Flux manifests of one cluster, rendered as the Factory+ templates say:
 * chart template (name, uuid) -> merged Helm values -> HelmRelease template ->
 * Flux template (helm, namespace, url.self, url.helm); `bare` leaves out
 * `flux-system.yaml`.
 */
export function renderClusterRepo(input: RenderInput): RenderedRepo {
  const { uuid, spec, templates } = input;
  const chart = renderTemplate(templates.chart, { uuid, name: spec.name });
  if (!isJsonObject(chart as Json))
    throw new SpecError('InvalidTemplate', 'the Helm chart template did not render to an object');
  const chartObj = chart as Record<string, Json>;
  const values = mergePatches(
    (isJsonObject(chartObj.values) ? chartObj.values : {}) as Json,
    (spec.values ?? {}) as Json,
  );

  const hr = templates.helmRelease;
  if (!isJsonObject(hr) || !isJsonObject(hr.template))
    throw new SpecError('InvalidTemplate', 'the HelmRelease template has no template object');
  const helm = renderTemplate(hr.template, {
    ...chartObj,
    uuid,
    values,
    name: k8sName('edge-cluster', uuid),
    prefix: 'edge-cluster',
    source: 'helm-charts',
  }) as Record<string, Json>;
  if (!isJsonObject(helm.metadata)) helm.metadata = {};
  (helm.metadata as Record<string, Json>).namespace = spec.namespace;

  const flux = renderTemplate(templates.flux, {
    helm,
    namespace: spec.namespace,
    url: { self: gitUrl(input.gitBase, uuid), helm: gitUrl(input.gitBase, input.helmRepo) },
  });
  if (!isJsonObject(flux as Json))
    throw new SpecError('InvalidTemplate', 'the Flux template did not render to an object');
  const fluxObj = { ...(flux as Record<string, unknown>) };
  if (spec.bare === true) delete fluxObj['flux-system.yaml'];
  if (!('self-link.yaml' in fluxObj)) throw new SpecError('InvalidTemplate', 'the Flux template has no self-link.yaml');

  const files = new Map<string, string>();
  for (const [file, docs] of Object.entries(fluxObj)) {
    if (file.includes('/') || file.startsWith('.') || file === '')
      throw new SpecError('InvalidTemplate', `the Flux template names an unsafe file ${JSON.stringify(file)}`);
    files.set(`edo/cluster/${file}`, toMultiDoc(asDocs(docs, file)));
  }
  return { files, selfLink: files.get('edo/cluster/self-link.yaml')! };
}

/** The repo README, as the original writes it. */
export const REPO_README = `
This repo is managed by the Edge Deployment Operator.
As such some conventions need to be observed.

* Manifests created by hand go under the 'by-hand' directory.
* These must not conflict with the generated manifests.
* Other manifests must not be edited.

Generated manifests are named 'SERVICE/SUBSYSTEM/*', where SERVICE will
normally be 'edo'.
`;
