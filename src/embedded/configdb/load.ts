import type { Logger } from 'pino';
import { HttpError } from '../../lib/http-errors.js';
import { applyMergePatch, isJsonObject, type Json } from '../../lib/merge-patch.js';
import { isUuid } from '../../lib/uuid.js';
import { ObjectError, type ObjectRegistry } from './objects.js';
import { ConfigApp, type ConfigStore } from './store.js';

export const CONFIGDB_SERVICE = 'af15f175-78a0-4e05-97c0-2a0bb82b9f3b';

/** One object of a version 2 dump, listed under its primary class. */
export interface DumpObject {
  name?: string;
  iri?: string;
  memberOf?: string[];
  subclassOf?: string[];
  /** The object is a class whose direct members are these. */
  enum?: string[];
  powersetOf?: string;
}

/** ConfigDB dump, version 2. */
export interface ConfigDump {
  service: string;
  version: 2;
  objects: Record<string, Record<string, DumpObject>>;
  configs: Record<string, Record<string, Json>>;
}

export interface LoadSummary {
  objectsCreated: number;
  configsWritten: number;
  configsSkipped: number;
}

function invalid(message: string): HttpError {
  return new HttpError(422, `invalid dump: ${message}`);
}

function uuidList(v: Json | undefined, where: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every(isUuid)) throw invalid(`${where} must be an array of UUIDs`);
  return v as string[];
}

const OBJECT_KEYS = new Set(['name', 'iri', 'memberOf', 'subclassOf', 'enum', 'powersetOf']);

/** Checks the shape of a version 2 dump; anything else is a 422. */
export function parseDump(body: Json): ConfigDump {
  if (!isJsonObject(body)) throw invalid('a dump must be a JSON object');
  for (const k of Object.keys(body)) {
    if (!['service', 'version', 'objects', 'configs'].includes(k))
      throw invalid(`unknown property ${JSON.stringify(k)}`);
  }
  if (body.service !== CONFIGDB_SERVICE) throw invalid(`"service" must be ${CONFIGDB_SERVICE}`);
  if (body.version !== 2) throw invalid('only version 2 dumps can be loaded');
  const objects: ConfigDump['objects'] = {};
  const rawObjects = body.objects ?? {};
  if (!isJsonObject(rawObjects)) throw invalid('"objects" must be an object');
  for (const [cls, members] of Object.entries(rawObjects)) {
    if (!isUuid(cls)) throw invalid(`class ${JSON.stringify(cls)} is not a UUID`);
    if (!isJsonObject(members)) throw invalid(`objects of class ${cls} must be an object`);
    objects[cls] = {};
    for (const [obj, spec] of Object.entries(members)) {
      const where = `objects/${cls}/${obj}`;
      if (!isUuid(obj)) throw invalid(`object ${JSON.stringify(obj)} is not a UUID`);
      if (!isJsonObject(spec)) throw invalid(`${where} must be an object`);
      for (const k of Object.keys(spec))
        if (!OBJECT_KEYS.has(k)) throw invalid(`${where} has unknown property ${JSON.stringify(k)}`);
      if (spec.name !== undefined && typeof spec.name !== 'string') throw invalid(`${where}/name must be a string`);
      if (spec.iri !== undefined && typeof spec.iri !== 'string') throw invalid(`${where}/iri must be a string`);
      if (spec.powersetOf !== undefined && !isUuid(spec.powersetOf))
        throw invalid(`${where}/powersetOf must be a UUID`);
      const o: DumpObject = {};
      if (spec.name !== undefined) o.name = spec.name as string;
      if (spec.iri !== undefined) o.iri = spec.iri as string;
      if (spec.powersetOf !== undefined) o.powersetOf = spec.powersetOf as string;
      const memberOf = uuidList(spec.memberOf, `${where}/memberOf`);
      const subclassOf = uuidList(spec.subclassOf, `${where}/subclassOf`);
      const members = uuidList(spec.enum, `${where}/enum`);
      if (memberOf) o.memberOf = memberOf;
      if (subclassOf) o.subclassOf = subclassOf;
      if (members) o.enum = members;
      objects[cls]![obj] = o;
    }
  }
  const configs: ConfigDump['configs'] = {};
  const rawConfigs = body.configs ?? {};
  if (!isJsonObject(rawConfigs)) throw invalid('"configs" must be an object');
  for (const [app, entries] of Object.entries(rawConfigs)) {
    if (!isUuid(app)) throw invalid(`application ${JSON.stringify(app)} is not a UUID`);
    if (app === ConfigApp.Registration) throw invalid('objects cannot be registered through "configs"; use "objects"');
    if (!isJsonObject(entries)) throw invalid(`configs of application ${app} must be an object`);
    for (const obj of Object.keys(entries)) {
      if (!isUuid(obj)) throw invalid(`configs/${app}: ${JSON.stringify(obj)} is not a UUID`);
    }
    configs[app] = { ...entries };
  }
  return { service: CONFIGDB_SERVICE, version: 2, objects, configs };
}

/** During a load, a reference to something missing is a conflict with the current contents. */
function asConflict<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ObjectError && (e.status === 404 || e.status === 405)) throw new ObjectError(409, e.message);
    if (e instanceof HttpError && e.status === 404) throw new HttpError(409, e.message);
    throw e;
  }
}

/**
 * Applies a dump in one transaction: registers the objects (in whatever
 * order their classes become available), then memberships, subclasses and
 * enumerated members, then the config entries; each object's `name` is
 * merged into its General information entry. A failure rolls everything back,
 * except that an entry refused with 409 is skipped, as the ConfigDB does.
 */
export function loadDump(
  deps: { store: ConfigStore; objects: ObjectRegistry; log?: Logger },
  dump: ConfigDump,
  owner: string,
): LoadSummary {
  const { store, objects, log } = deps;
  return store.transaction(() => {
    const summary: LoadSummary = { objectsCreated: 0, configsWritten: 0, configsSkipped: 0 };
    const all: Array<{ cls: string; obj: string; spec: DumpObject }> = [];
    for (const [cls, members] of Object.entries(dump.objects)) {
      for (const [obj, spec] of Object.entries(members)) all.push({ cls, obj, spec });
    }

    let remaining = all;
    while (remaining.length) {
      const next: typeof remaining = [];
      for (const item of remaining) {
        if (!objects.exists(item.cls)) {
          next.push(item);
          continue;
        }
        const existing = objects.get(item.obj);
        if (!existing || existing.class === item.cls) {
          const r = asConflict(() => objects.create({ class: item.cls, uuid: item.obj, owner }));
          if (r.created) summary.objectsCreated++;
        } else if (!objects.directMembers(item.cls).includes(item.obj)) {
          asConflict(() => objects.addMember(item.cls, item.obj));
        }
      }
      if (next.length === remaining.length) {
        const missing = [...new Set(next.map((i) => i.cls))];
        throw new HttpError(409, `dump refers to classes that do not exist: ${missing.join(', ')}`);
      }
      remaining = next;
    }

    for (const { obj, spec } of all) {
      for (const cls of spec.memberOf ?? []) asConflict(() => objects.addMember(cls, obj));
      for (const sup of spec.subclassOf ?? []) asConflict(() => objects.addSubclass(sup, obj));
      for (const member of spec.enum ?? []) asConflict(() => objects.addMember(obj, member));
    }

    const names = new Map<string, string>();
    for (const { obj, spec } of all) if (spec.name !== undefined) names.set(obj, spec.name);
    const infoApp = store.appExists(ConfigApp.Info);
    if (names.size && !infoApp) {
      log?.warn(
        { app: ConfigApp.Info },
        'General information application is not registered; object names in the dump are not stored',
      );
    }

    for (const [app, entries] of Object.entries(dump.configs)) {
      for (const [obj, value] of Object.entries(entries)) {
        let json = value;
        if (app === ConfigApp.Info && names.has(obj)) {
          json = applyMergePatch(value, { name: names.get(obj)! });
          names.delete(obj);
        }
        if (!store.appExists(app))
          throw new HttpError(409, `dump has entries for application ${app}, which is not registered`);
        if (!objects.exists(obj))
          throw new HttpError(409, `dump has an entry for object ${obj}, which is not registered`);
        try {
          store.put(app, obj, json);
          summary.configsWritten++;
        } catch (e) {
          if (e instanceof HttpError && e.status === 409) {
            log?.warn({ app, obj, err: e.message }, 'dump entry refused; skipped');
            summary.configsSkipped++;
            continue;
          }
          throw e;
        }
      }
    }

    if (infoApp) {
      for (const [obj, name] of names) {
        store.patch(ConfigApp.Info, obj, { name });
        summary.configsWritten++;
      }
    }
    return summary;
  });
}
