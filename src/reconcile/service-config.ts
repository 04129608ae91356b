/**
 * The fields of the Cluster Manager's ServiceConfig entry that commissioning
 * reads, with a test of each: the same check `check-config` reports and the
 * reconciler applies before it uses the entry, so a bad ServiceConfig is an
 * `InvalidServiceConfig` condition, never a TypeError deep in a step.
 */
import { isUuid } from '../lib/uuid.js';

export const SERVICE_CONFIG_FIELDS: ReadonlyArray<[path: string, test: (v: unknown) => boolean, want: string]> = [
  ['group.cluster.path', (v) => typeof v === 'string' && v !== '', 'a non-empty string'],
  ['group.cluster.uuid', isUuid, 'a UUID'],
  ['group.flux.uuid', isUuid, 'a UUID'],
  ['group.krbkeys.uuid', isUuid, 'a UUID'],
  ['helm.cluster', isUuid, 'a UUID'],
  ['repo.helm.uuid', isUuid, 'a UUID'],
];

/** The value at a dotted path of nested objects. */
export function at(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const k of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** What is wrong with a ServiceConfig entry, one line per field; empty when it is usable. */
export function serviceConfigProblems(sc: unknown): string[] {
  return SERVICE_CONFIG_FIELDS.filter(([path, test]) => !test(at(sc, path)))
    .map(([path, , want]) => `${path} must be ${want}, got ${JSON.stringify(at(sc, path)) ?? 'nothing'}`);
}
