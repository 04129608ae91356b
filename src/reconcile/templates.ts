import type { Uuids } from '../config/types.js';
import type { ConfigDbClient } from '../factoryplus/configdb.js';
import { isJsonObject, type Json } from '../lib/merge-patch.js';
import type { ManifestTemplates } from '../repo/manifests.js';
import { validateServiceConfig } from './service-config.js';

/** The Cluster Manager's ServiceConfig entry. */
export interface ServiceConfig {
  group: { cluster: { path: string; uuid: string }; flux: { uuid: string }; krbkeys: { uuid: string } };
  helm: { cluster: string };
  repo: { helm: { uuid: string } };
}

/** Everything a cluster's repo is rendered from besides its own entry. */
export interface RenderInputs {
  sc: ServiceConfig;
  templates: ManifestTemplates;
}

/** `obj` with its string property `key` in lower case; anything else as it is. */
function lowerKey(obj: Json | undefined, key: string): Json | undefined {
  if (!isJsonObject(obj) || typeof obj[key] !== 'string') return obj;
  return { ...obj, [key]: (obj[key] as string).toLowerCase() };
}

/**
 * The ServiceConfig with the UUIDs it names in lower case: they become
 * Config Store paths and grant targets, where an upper-case UUID is not
 * found, and the entry's schema lets either case through.
 */
function lowerCaseUuids(sc: Json): ServiceConfig {
  if (!isJsonObject(sc)) return sc as unknown as ServiceConfig;
  const out: Record<string, Json | undefined> = { ...sc };
  if (isJsonObject(sc.group))
    out.group = Object.fromEntries(Object.entries(sc.group).map(([k, g]) => [k, lowerKey(g, 'uuid')!]));
  if (isJsonObject(sc.helm)) out.helm = lowerKey(sc.helm, 'cluster');
  if (isJsonObject(sc.repo) && isJsonObject(sc.repo.helm))
    out.repo = { ...sc.repo, helm: lowerKey(sc.repo.helm, 'uuid')! };
  return out as unknown as ServiceConfig;
}

/** The ServiceConfig entry lacks what commissioning needs, or has it in the wrong shape. */
export class InvalidServiceConfig extends Error {
  readonly reason = 'InvalidServiceConfig';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidServiceConfig';
  }
}

export class MissingEntry extends Error {
  constructor(
    readonly reason: 'MissingServiceConfig' | 'MissingTemplate' | 'UnknownChart',
    message: string,
  ) {
    super(message);
    this.name = 'MissingEntry';
  }
}

/**
 * The ServiceConfig and template entries, read once and shared by every
 * cluster instead of four reads per cluster per resync. Entries are dropped
 * when the Config Store says their app changed and at every full resync, so
 * a missed notification costs at most one resync interval.
 */
export class TemplateCache {
  private readonly entries = new Map<string, Promise<Json | undefined>>();

  constructor(
    private readonly cdb: ConfigDbClient,
    private readonly uuids: Uuids,
  ) {}

  /** Apps whose change notifications must invalidate this cache. */
  get apps(): string[] {
    const a = this.uuids.app;
    return [a.serviceConfig, a.fluxTemplate, a.k8sTemplate, a.helmChartTemplate, a.bootstrapTemplate];
  }

  private entry(app: string, obj: string): Promise<Json | undefined> {
    const key = `${app}/${obj}`;
    let p = this.entries.get(key);
    if (!p) {
      const read = this.cdb.get(app, obj);
      p = read;
      this.entries.set(key, read);
      // Failures and missing entries are not cached: the next caller asks
      // again, so a cluster waiting for a template recovers when it appears.
      const forget = () => {
        if (this.entries.get(key) === read) this.entries.delete(key);
      };
      read.then((v) => {
        if (v === undefined) forget();
      }, forget);
    }
    return p;
  }

  invalidate(app?: string): void {
    if (!app) return this.entries.clear();
    for (const key of [...this.entries.keys()]) if (key.startsWith(`${app}/`)) this.entries.delete(key);
  }

  async serviceConfig(): Promise<ServiceConfig> {
    const u = this.uuids;
    const sc = await this.entry(u.app.serviceConfig, u.service.clusterManager);
    if (!sc) {
      throw new MissingEntry(
        'MissingServiceConfig',
        `the Cluster Manager's ServiceConfig entry (${u.app.serviceConfig}/${u.service.clusterManager}) does not exist`,
      );
    }
    const lowered = lowerCaseUuids(sc);
    const checked = validateServiceConfig(lowered as unknown as Json);
    if (!checked.ok) {
      throw new InvalidServiceConfig(
        `the Cluster Manager's ServiceConfig entry (${u.app.serviceConfig}/${u.service.clusterManager}) lacks or has wrong: ${checked.errors.join(', ')}`,
      );
    }
    return checked.value;
  }

  /** The Bootstrap script template entry, or undefined when there is none. */
  bootstrap(): Promise<Json | undefined> {
    const a = this.uuids.app;
    return this.entry(a.bootstrapTemplate, a.bootstrapTemplate);
  }

  /** The inputs for a cluster using `chart` (the ServiceConfig's default chart when absent). */
  async forChart(chart: string | undefined): Promise<RenderInputs> {
    const u = this.uuids;
    const sc = await this.serviceConfig();
    const chartUuid = chart ?? sc.helm.cluster;
    const [flux, helmRelease, chartEntry] = await Promise.all([
      this.entry(u.app.fluxTemplate, u.app.fluxTemplate),
      this.entry(u.app.k8sTemplate, u.resource.helmRelease),
      this.entry(u.app.helmChartTemplate, chartUuid),
    ]);
    if (flux === undefined)
      throw new MissingEntry('MissingTemplate', `the Flux template entry ${u.app.fluxTemplate} does not exist`);
    if (helmRelease === undefined)
      throw new MissingEntry(
        'MissingTemplate',
        `the HelmRelease template entry ${u.resource.helmRelease} does not exist`,
      );
    if (chartEntry === undefined)
      throw new MissingEntry('UnknownChart', `Helm chart template ${chartUuid} does not exist`);
    return { sc, templates: { flux, helmRelease, chart: chartEntry } };
  }
}
