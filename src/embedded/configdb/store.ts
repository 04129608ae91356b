import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../db.js';
import { HttpError } from '../../lib/http-errors.js';
import { applyMergePatch, canonicalJson, isJsonObject, jsonEqual, type Json } from '../../lib/merge-patch.js';
import { isUuid, newUuid } from '../../lib/uuid.js';
import { ObjectError, RankClass, UNOWNED, type ObjectRegistry, type Registration } from './objects.js';
import { requirePreconditions, type Preconditions } from './preconditions.js';
import { compileSchema, type SchemaValidator } from './schemas.js';
import { evaluateSearch, type SearchQuery, type SearchResult } from './search.js';

/** Applications the Config Store itself gives a meaning to. */
export const ConfigApp = {
  /** Virtual: the entry of object X is X's registration. */
  Registration: 'cb40bed5-49ad-4443-a7f5-08c75009da8f',
  /** General information (`{name, ...}`); an ordinary application. */
  Info: '64a8bfa9-7772-45c4-9d1a-9e6290690957',
  /** The entry for object X is the JSON schema of application X. */
  ConfigSchema: 'dbd8a535-52ba-4f6e-b4f8-9b71aefe09d3',
} as const;

export interface ConfigEntry {
  app: string;
  object: string;
  json: Json;
  /** Opaque part of the strong ETag; a UUID that changes on every real change. */
  etag: string;
}

export type WriteResult = 'created' | 'updated' | 'unchanged';

export interface WriteOptions {
  preconditions?: Preconditions;
}

export type ConfigChangeListener = (app: string, object: string) => void;

interface Row {
  object: string;
  json: string;
  etag: string;
}

const REGISTRATION_KEYS = new Set(['uuid', 'class', 'rank', 'owner', 'deleted']);

function registrationJson(r: Registration): Json {
  return { uuid: r.uuid, class: r.class, rank: r.rank, owner: r.owner, deleted: r.deleted };
}

/** A UUID-shaped digest of a JSON value: stable ETags for virtual entries. */
function digestEtag(json: Json): string {
  const h = createHash('sha256').update(canonicalJson(json)).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function notFound(what: string): HttpError {
  return new HttpError(404, what);
}

/**
 * The Config Store's entries: one JSON value per (application, object), each
 * with an ETag. Every write runs in one SQLite transaction and is checked
 * against the application's JSON schema; change listeners hear about a write
 * only after it has committed and only when the stored JSON really changed.
 */
export class ConfigStore {
  private readonly listeners = new Set<ConfigChangeListener>();
  private readonly schemas = new Map<string, { etag: string; validate: SchemaValidator }>();
  /** Changes made in the running outermost transaction, announced on commit. */
  private pending: Array<[string, string]> | null = null;

  constructor(
    private readonly db: Db,
    private readonly objects: ObjectRegistry,
    private readonly opts: { log?: Logger } = {},
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS config_entry (
        app TEXT NOT NULL, object TEXT NOT NULL, json TEXT NOT NULL, etag TEXT NOT NULL,
        PRIMARY KEY (app, object));
      CREATE INDEX IF NOT EXISTS config_entry_object ON config_entry(object);
    `);
  }

  /** Called with (app, object) after each committed change of an entry. Returns an unsubscribe function. */
  onChange(fn: ConfigChangeListener): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  /**
   * Runs `fn` in one SQLite transaction (a savepoint when nested). Change
   * events raised inside are delivered once the outermost transaction has
   * committed, and dropped if it rolls back.
   */
  transaction<T>(fn: () => T): T {
    if (this.pending) {
      const mark = this.pending.length;
      try {
        return this.db.transaction(fn)();
      } catch (e) {
        this.pending.length = mark;
        throw e;
      }
    }
    const pending: Array<[string, string]> = [];
    this.pending = pending;
    let result: T;
    try {
      result = this.db.transaction(fn)();
    } finally {
      this.pending = null;
    }
    this.announce(pending);
    return result;
  }

  private changed(app: string, object: string): void {
    if (this.pending) this.pending.push([app, object]);
    else this.announce([[app, object]]);
  }

  private announce(changes: Array<[string, string]>): void {
    const seen = new Set<string>();
    for (const [app, object] of changes) {
      const key = `${app}/${object}`;
      if (seen.has(key)) continue;
      seen.add(key);
      for (const fn of this.listeners) {
        try {
          fn(app, object);
        } catch (err) {
          this.opts.log?.error({ err, app, object }, 'config change listener failed');
        }
      }
    }
  }

  private row(app: string, object: string): (Row & { value: Json }) | undefined {
    const r = this.db
      .prepare('SELECT object, json, etag FROM config_entry WHERE app = ? AND object = ?')
      .get(app, object) as Row | undefined;
    return r && { ...r, value: JSON.parse(r.json) as Json };
  }

  /** True when `app` can hold entries: a registered object, or the virtual registration app. */
  appExists(app: string): boolean {
    return app === ConfigApp.Registration || this.objects.exists(app);
  }

  private requireApp(app: string): void {
    if (!this.appExists(app)) throw notFound(`application ${app} is not a registered object`);
  }

  private requireTarget(app: string, object: string): void {
    this.requireApp(app);
    if (!this.objects.exists(object)) throw notFound(`object ${object} is not registered`);
  }

  // ---- reading -----------------------------------------------------------

  get(app: string, object: string): ConfigEntry | undefined {
    if (app === ConfigApp.Registration) {
      const reg = this.objects.get(object);
      if (!reg) return undefined;
      const json = registrationJson(reg);
      return { app, object, json, etag: digestEtag(json) };
    }
    const r = this.row(app, object);
    return r && { app, object, json: r.value, etag: r.etag };
  }

  /** Objects that have an entry for `app` (404 for an unknown app). */
  list(app: string): string[] {
    this.requireApp(app);
    if (app === ConfigApp.Registration) return this.objects.all();
    return (
      this.db.prepare('SELECT object FROM config_entry WHERE app = ? ORDER BY object').all(app) as { object: string }[]
    ).map((r) => r.object);
  }

  /** Members of `cls` (directly or through subclasses) that have an entry for `app`. */
  listInClass(app: string, cls: string): string[] {
    this.requireApp(app);
    if (!this.objects.exists(cls)) throw notFound(`class ${cls} is not registered`);
    const members = new Set(this.objects.members(cls));
    return this.list(app).filter((o) => members.has(o));
  }

  /** `[object, json]` pairs of an application, optionally only members of a class. */
  entries(app: string, cls?: string): Array<[string, Json]> {
    const objs = cls === undefined ? this.list(app) : this.listInClass(app, cls);
    if (app === ConfigApp.Registration) {
      return objs.map((o) => [o, registrationJson(this.objects.get(o)!)]);
    }
    if (cls === undefined) {
      return (
        this.db.prepare('SELECT object, json FROM config_entry WHERE app = ? ORDER BY object').all(app) as Row[]
      ).map((r) => [r.object, JSON.parse(r.json) as Json]);
    }
    return objs.map((o) => [o, this.row(app, o)!.value]);
  }

  search(app: string, query: SearchQuery, cls?: string): SearchResult {
    return evaluateSearch(query, this.entries(app, cls));
  }

  // ---- schemas -----------------------------------------------------------

  /** The compiled schema of `app`, if it has one. Compiled once per schema version. */
  validatorFor(app: string): SchemaValidator | undefined {
    if (app === ConfigApp.Registration) return undefined;
    const r = this.db
      .prepare('SELECT json, etag FROM config_entry WHERE app = ? AND object = ?')
      .get(ConfigApp.ConfigSchema, app) as { json: string; etag: string } | undefined;
    if (!r) {
      this.schemas.delete(app);
      return undefined;
    }
    const cached = this.schemas.get(app);
    if (cached && cached.etag === r.etag) return cached.validate;
    const validate = compileSchema(JSON.parse(r.json) as Json);
    this.schemas.set(app, { etag: r.etag, validate });
    return validate;
  }

  /** Throws 422 when `json` does not satisfy the schema of `app`. */
  validate(app: string, json: Json): void {
    const validate = this.validatorFor(app);
    const failure = validate?.(json);
    if (failure) {
      throw new HttpError(
        422,
        `entry does not match the schema of application ${app}: ${failure.message}`,
        {},
        { errors: failure.errors },
      );
    }
  }

  /** A new schema for `app` must compile (422) and accept every existing entry (409). */
  private checkNewSchema(app: string, schema: Json): SchemaValidator {
    const validate = compileSchema(schema);
    if (app === ConfigApp.Registration) return validate;
    const bad: string[] = [];
    for (const [obj, json] of this.entries(app)) if (validate(json)) bad.push(obj);
    if (bad.length) {
      throw new HttpError(
        409,
        `existing entries of application ${app} do not match the new schema: ${bad.join(', ')}`,
        {},
        { objects: bad },
      );
    }
    return validate;
  }

  // ---- writing -----------------------------------------------------------

  private writeEntry(
    app: string,
    object: string,
    current: (Row & { value: Json }) | undefined,
    json: Json,
  ): WriteResult {
    this.validate(app, json);
    if (current && jsonEqual(current.value, json)) return 'unchanged';
    const schema = app === ConfigApp.ConfigSchema ? this.checkNewSchema(object, json) : undefined;
    const text = JSON.stringify(json);
    const etag = newUuid();
    if (current) {
      this.db
        .prepare('UPDATE config_entry SET json = ?, etag = ? WHERE app = ? AND object = ?')
        .run(text, etag, app, object);
    } else {
      this.db
        .prepare('INSERT INTO config_entry (app, object, json, etag) VALUES (?, ?, ?, ?)')
        .run(app, object, text, etag);
    }
    // Keyed by ETag: if this transaction rolls back, the stored ETag differs
    // from the cached one and the old schema is compiled again.
    if (schema) this.schemas.set(object, { etag, validate: schema });
    this.changed(app, object);
    return current ? 'updated' : 'created';
  }

  /** Replaces (or creates) an entry. */
  put(app: string, object: string, json: Json, opts: WriteOptions = {}): WriteResult {
    return this.transaction(() => {
      if (app === ConfigApp.Registration) return this.writeRegistration(object, json, opts, false);
      this.requireTarget(app, object);
      const current = this.row(app, object);
      requirePreconditions(opts.preconditions, current?.etag);
      return this.writeEntry(app, object, current, json);
    });
  }

  /**
   * Applies a JSON merge patch. A missing entry counts as `null`; an existing
   * entry that is not a JSON object is a 409 (a patch would replace it whole).
   */
  patch(app: string, object: string, patch: Json, opts: WriteOptions = {}): WriteResult {
    return this.transaction(() => {
      if (app === ConfigApp.Registration) return this.writeRegistration(object, patch, opts, true);
      this.requireTarget(app, object);
      const current = this.row(app, object);
      requirePreconditions(opts.preconditions, current?.etag);
      if (current && !isJsonObject(current.value)) {
        throw new HttpError(409, 'the existing entry is not a JSON object; merge patches apply only to objects');
      }
      return this.writeEntry(app, object, current, applyMergePatch(current?.value ?? null, patch));
    });
  }

  /** Removes an entry; 404 when there is none. */
  delete(app: string, object: string, opts: WriteOptions = {}): void {
    if (app === ConfigApp.Registration) {
      throw new HttpError(
        405,
        'registrations cannot be deleted as entries; use DELETE /v2/object/{uuid} or mark them deleted',
        { Allow: 'GET, HEAD, PUT, PATCH' },
      );
    }
    this.transaction(() => {
      const current = this.row(app, object);
      requirePreconditions(opts.preconditions, current?.etag);
      if (!current) throw notFound(`no entry for object ${object} in application ${app}`);
      this.db.prepare('DELETE FROM config_entry WHERE app = ? AND object = ?').run(app, object);
      this.changed(app, object);
    });
  }

  /**
   * Writes to the virtual registration entry: only `deleted` and `owner` can
   * change; `uuid`, `class` and `rank` may be repeated but not altered.
   */
  private writeRegistration(object: string, value: Json, opts: WriteOptions, patch: boolean): WriteResult {
    const reg = this.objects.get(object);
    if (!reg) throw notFound(`object ${object} is not registered`);
    const current = registrationJson(reg);
    requirePreconditions(opts.preconditions, digestEtag(current));
    const next = patch ? applyMergePatch(current, value) : value;
    if (!isJsonObject(next)) throw new HttpError(422, 'a registration must be a JSON object');
    for (const k of Object.keys(next)) {
      if (!REGISTRATION_KEYS.has(k)) throw new HttpError(422, `unknown registration property ${JSON.stringify(k)}`);
    }
    for (const k of ['uuid', 'class', 'rank'] as const) {
      if (k in next && !jsonEqual(next[k], reg[k]))
        throw new HttpError(409, `the ${k} of a registration cannot be changed`);
    }
    const deleted = 'deleted' in next ? next.deleted : reg.deleted;
    if (typeof deleted !== 'boolean') throw new HttpError(422, '"deleted" must be a boolean');
    const owner = 'owner' in next ? next.owner : reg.owner;
    if (!isUuid(owner)) throw new HttpError(422, '"owner" must be a UUID');
    if (owner !== reg.owner && owner !== UNOWNED && !this.objects.exists(owner)) {
      throw new HttpError(409, `owner ${owner} is not a registered object`);
    }
    if (deleted === reg.deleted && owner === reg.owner) return 'unchanged';
    if (deleted !== reg.deleted) this.objects.setDeleted(object, deleted);
    if (owner !== reg.owner) this.objects.setOwner(object, owner);
    this.changed(ConfigApp.Registration, object);
    return 'updated';
  }

  // ---- objects -----------------------------------------------------------

  /**
   * Registers an object. With a UUID that already exists in the same class
   * the registration is kept (undeleted) and `created` is false; in another
   * primary class it is a 409.
   */
  createObject(spec: { class: string; uuid?: string; owner: string }): {
    registration: Registration;
    created: boolean;
  } {
    return this.transaction(() => {
      if (spec.uuid !== undefined) {
        const existing = this.objects.get(spec.uuid);
        if (existing && existing.class !== spec.class) {
          throw new ObjectError(409, `object ${spec.uuid} already exists in class ${existing.class}`);
        }
      }
      return this.objects.create(spec);
    });
  }

  /**
   * Removes an object and its own entries. Refused (409, listing what still
   * refers to it) while it has members, subclasses, or entries as an application.
   */
  deleteObject(uuid: string): void {
    if (uuid === ConfigApp.Registration || (Object.values(RankClass) as string[]).includes(uuid)) {
      throw new ObjectError(405, `object ${uuid} is immutable`);
    }
    this.transaction(() => {
      if (!this.objects.exists(uuid)) throw new ObjectError(404, `object ${uuid} does not exist`);
      const members = this.objects.directMembers(uuid);
      const subclasses = this.objects.directSubclasses(uuid);
      const configs = (
        this.db.prepare('SELECT object FROM config_entry WHERE app = ? ORDER BY object').all(uuid) as {
          object: string;
        }[]
      ).map((r) => r.object);
      // As ACS answers: the first non-empty list of members, subclasses or
      // objects with entries in it (as an application), as a bare JSON array.
      const inUse = [members, subclasses, configs].find((l) => l.length > 0);
      if (inUse) throw new ObjectError(409, `object ${uuid} is still in use`, inUse);
      this.objects.remove(uuid);
      const apps = (
        this.db.prepare('SELECT app FROM config_entry WHERE object = ? ORDER BY app').all(uuid) as { app: string }[]
      ).map((r) => r.app);
      this.db.prepare('DELETE FROM config_entry WHERE object = ?').run(uuid);
      for (const app of apps) this.changed(app, uuid);
    });
  }
}
