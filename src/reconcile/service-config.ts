/**
 * What the Cluster Manager's ServiceConfig entry must hold: the one schema
 * `check-config` reports against and the reconciler checks before using the
 * entry, so that a bad entry is named by its field rather than met as a
 * TypeError deep in a render.
 *
 *     const r = validateServiceConfig(json);
 *     if (!r.ok) throw new Error(`ServiceConfig lacks ${r.errors.join(', ')}`);
 *     use(r.value);
 */
import type { Json } from '../lib/merge-patch.js';
import { isUuid } from '../lib/uuid.js';
import type { ServiceConfig } from './templates.js';

/** Each field the service reads, its test, and what it must be. */
export const SERVICE_CONFIG_FIELDS: ReadonlyArray<readonly [path: string, ok: (v: unknown) => boolean, want: string]> =
  [
    ['group.cluster.path', (v) => typeof v === 'string' && v !== '', 'a non-empty string'],
    ['group.cluster.uuid', isUuid, 'a UUID'],
    ['group.flux.uuid', isUuid, 'a UUID'],
    ['group.krbkeys.uuid', isUuid, 'a UUID'],
    ['helm.cluster', isUuid, 'a UUID'],
    ['repo.helm.uuid', isUuid, 'a UUID'],
  ];

export type ServiceConfigValidation = { ok: true; value: ServiceConfig; errors: [] } | { ok: false; errors: string[] };

/** The value at a dotted path of nested objects. */
export function at(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const k of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/**
 * Checks every field; `errors` names each bad one as `<path> (<what it must
 * be>)`, in the order of SERVICE_CONFIG_FIELDS. Other fields are allowed:
 * installations keep more in the entry than this service reads.
 */
export function validateServiceConfig(json: Json | undefined): ServiceConfigValidation {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return { ok: false, errors: ['the entry (a JSON object)'] };
  }
  const errors = SERVICE_CONFIG_FIELDS.filter(([path, ok]) => !ok(at(json, path))).map(
    ([path, , want]) => `${path} (${want})`,
  );
  if (errors.length) return { ok: false, errors };
  return { ok: true, value: json as unknown as ServiceConfig, errors: [] };
}
