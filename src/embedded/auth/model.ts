import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Semaphore } from '../../lib/semaphore.js';
import {
  limitedCheck,
  passwordLimits,
  TooManyFailures,
  type PasswordLimitConfig,
  type PasswordLimits,
} from '../../lib/failure-limit.js';
import type { Db } from '../db.js';
import type { ObjectRegistry } from '../configdb/objects.js';
import { newUuid, WILDCARD } from '../../lib/uuid.js';

export const SELF = '5855a1cc-46d8-4b16-84f8-ab3916ecb230';
export const MINE = '724c0316-4cfd-11f0-b355-0b70840faae8';
/** Class whose (recursive) members are principals. */
export const PRINCIPAL_CLASS = '11614546-b6d7-11ef-aebd-8fbb45451d7c';

/** Kerberos principal names as the Auth service accepts them. */
export const UPN_RE = /^[a-zA-Z0-9_./-]+@[A-Za-z0-9-.]+$/;

export interface Principal {
  uuid: string;
  upn: string | null;
  root: boolean;
}

export interface Grant {
  uuid: string;
  principal: string;
  permission: string;
  target: string;
  plural: boolean;
}

export type GrantSpec = Omit<Grant, 'uuid'>;

export interface AclEntry {
  permission: string;
  target: string;
}

/** A test of targets for one permission: true if the target is covered. */
export type TargetTest = (target: string) => boolean;

/** Auth dump v2 (`POST /load`), already validated. */
export interface AuthDump {
  service: string;
  version: 2;
  identities?: Record<string, { kerberos?: string }>;
  /** principal -> permission -> null (wildcard target) or target -> plural (`"both"` = plural and not). */
  grants?: Record<string, Record<string, null | Record<string, boolean | 'both'>>>;
}

export interface AuthModelOptions {
  realm: string;
  /** Principal UUIDs that may do everything (the configured root principal). */
  roots: Set<string>;
  /** Lifetime of a cached expanded ACL; changes made through this process invalidate it at once. */
  aclCacheMs?: number;
  /** Number of principals whose ACLs are kept; 0 disables the cache. */
  aclCacheSize?: number;
  /** Failed password checks allowed per user name and per client address (default: DEFAULT_PASSWORD_LIMITS). */
  passwordLimits?: PasswordLimitConfig;
  now?: () => number;
}

interface GrantRow {
  uuid: string;
  principal: string;
  permission: string;
  target: string;
  plural: number;
}

interface CachedAcl {
  expires: number;
  entries: AclEntry[];
  byPermission: Map<string, Set<string>>;
}

export class DumpConflict extends Error {}

const SCRYPT = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

function hashPasswordSync(password: string, salt: Buffer): Buffer {
  return scryptSync(password, salt, 32, SCRYPT);
}

/**
 * Checks running at once: half the cores. The thread pool has four threads,
 * and four checks at once would take every core of a small machine from
 * the event loop that answers everything else.
 */
const hashing = new Semaphore(Math.max(1, Math.floor(availableParallelism() / 2)));
const MAX_WAITING_CHECKS = 32;

/**
 * A check costs tens of milliseconds of CPU: it runs on libuv's thread
 * pool, never on the event loop every embedded service shares.
 */
async function hashPassword(password: string, salt: Buffer): Promise<Buffer> {
  // A queue of checks is memory and delay for whoever comes next: past a
  // second or so of work the caller is told to come back.
  if (hashing.waiters >= MAX_WAITING_CHECKS) throw new TooManyFailures(1);
  const release = await hashing.acquire();
  try {
    return await new Promise((resolve, reject) =>
      scrypt(password, salt, 32, SCRYPT, (e, key) => (e ? reject(e) : resolve(key))),
    );
  } finally {
    release();
  }
}

/**
 * An unknown user name is checked against this, at the same cost as a
 * known one, so that the time of an answer does not say which names exist.
 */
const DUMMY = { salt: randomBytes(16), hash: randomBytes(32) };

/** Wrong credentials remembered at most, to refuse a repeated one without another check. */
const FAILED_MEMORY = 10_000;

function toGrant(r: GrantRow): Grant {
  return { uuid: r.uuid, principal: r.principal, permission: r.permission, target: r.target, plural: r.plural !== 0 };
}

/**
 * The embedded Auth service's data: principals with Kerberos-style identities,
 * local passwords, grants, and the ACL expansion the real Auth service does
 * (class grants, permission groups, plural targets, Self and Mine).
 *
 * Expanded ACLs are cached per principal because every request of every
 * embedded service checks one. Any grant change here and any change of the
 * class graph (ObjectRegistry.onChange: memberships, subclasses, ownership)
 * empties the cache; the short lifetime only bounds staleness from writers
 * outside this process.
 */
export class AuthModel {
  private readonly verified = new Map<string, { hash: Buffer; principal: string }>();
  /** Digests of credentials found wrong, until when; a careless client retrying one costs no check and no count. */
  private readonly failed = new Map<string, number>();
  /** Checks under way by credential digest: a burst with one credential costs one check. */
  private readonly checking = new Map<string, Promise<Principal | undefined>>();
  private readonly limits: PasswordLimits;
  private readonly failedMs: number;
  private readonly cache = new Map<string, CachedAcl>();
  private readonly cacheMs: number;
  private readonly grantCache = new Map<string, { expires: number; grants: Grant[] }>();
  private readonly cacheSize: number;
  private readonly now: () => number;
  private readonly unsubscribe: () => void;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly db: Db,
    private readonly objects: ObjectRegistry,
    private readonly opts: AuthModelOptions,
  ) {
    this.cacheMs = opts.aclCacheMs ?? 5000;
    this.cacheSize = opts.aclCacheSize ?? 1000;
    this.now = opts.now ?? Date.now;
    this.limits = passwordLimits(opts.passwordLimits, this.now);
    this.failedMs = (opts.passwordLimits?.windowSeconds ?? 60) * 1000;
    db.exec(`
      CREATE TABLE IF NOT EXISTS principal (uuid TEXT PRIMARY KEY, upn TEXT UNIQUE);
      CREATE TABLE IF NOT EXISTS password (
        username TEXT PRIMARY KEY, principal TEXT NOT NULL, salt BLOB NOT NULL, hash BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS grants (
        uuid TEXT PRIMARY KEY, principal TEXT NOT NULL, permission TEXT NOT NULL,
        target TEXT NOT NULL, plural INTEGER NOT NULL,
        UNIQUE (principal, permission, target, plural));
      CREATE INDEX IF NOT EXISTS grants_principal ON grants(principal);
    `);
    this.unsubscribe = objects.onChange(() => this.invalidate());
  }

  /** Stops listening to the class graph (for models opened and closed repeatedly). */
  dispose(): void {
    this.unsubscribe();
    this.cache.clear();
  }

  get realm(): string {
    return this.opts.realm;
  }

  /** Adds the realm to a bare user name, as Factory+ services do for Basic auth. */
  qualify(name: string): string {
    return name.includes('@') ? name : `${name}@${this.opts.realm}`;
  }

  /** Forgets every cached ACL and tells the listeners that ACLs may have changed. */
  invalidate(): void {
    this.cache.clear();
    this.grantCache.clear();
    this.changed();
  }

  /**
   * Called after anything that may change an ACL or an identity: grants,
   * identities, the class graph. Returns an unsubscribe function.
   */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  private changed(): void {
    // A listener's failure is its own; the change has been made.
    for (const fn of this.listeners) {
      try {
        fn();
      } catch {
        /* ignored */
      }
    }
  }

  principal(uuid: string): Principal | undefined {
    const r = this.db.prepare('SELECT uuid, upn FROM principal WHERE uuid = ?').get(uuid) as
      { uuid: string; upn: string | null } | undefined;
    return r && { uuid: r.uuid, upn: r.upn, root: this.opts.roots.has(r.uuid) };
  }

  principalByUpn(upn: string): Principal | undefined {
    const r = this.db.prepare('SELECT uuid, upn FROM principal WHERE upn = ?').get(upn) as
      { uuid: string; upn: string | null } | undefined;
    return r && { uuid: r.uuid, upn: r.upn, root: this.opts.roots.has(r.uuid) };
  }

  /** Principals known here (with or without identity) plus members of the ConfigDB Principal class. */
  isPrincipal(uuid: string): boolean {
    return this.principal(uuid) !== undefined || this.objects.isMember(PRINCIPAL_CLASS, uuid);
  }

  /**
   * The principal groups holding a principal, as ACS Auth's
   * `principal/:uuid/groups` answers them: every class under the Principal
   * class (recursively) that has it as a (recursive) member. Undefined for
   * something that is not a principal.
   */
  groupsOf(uuid: string): string[] | undefined {
    if (!this.isPrincipal(uuid)) return undefined;
    const groups = new Set(this.objects.subclasses(PRINCIPAL_CLASS));
    return this.objects.classesOf(uuid).filter((c) => groups.has(c));
  }

  /** UUIDs of principals that have a Kerberos identity. */
  principalsWithIdentity(): string[] {
    return (
      this.db.prepare('SELECT uuid FROM principal WHERE upn IS NOT NULL ORDER BY uuid').all() as { uuid: string }[]
    ).map((r) => r.uuid);
  }

  /** Sets a principal's Kerberos identity; 'conflict' if another principal has it or this one has another. */
  setIdentity(uuid: string, upn: string): 'created' | 'unchanged' | 'conflict' {
    const owner = this.principalByUpn(upn);
    if (owner && owner.uuid !== uuid) return 'conflict';
    const current = this.principal(uuid);
    if (current?.upn === upn) return 'unchanged';
    if (current?.upn && current.upn !== upn) return 'conflict';
    this.db
      .prepare('INSERT INTO principal (uuid, upn) VALUES (?, ?) ON CONFLICT(uuid) DO UPDATE SET upn = excluded.upn')
      .run(uuid, upn);
    this.changed();
    return 'created';
  }

  deleteIdentity(uuid: string): boolean {
    const r = this.db.prepare('UPDATE principal SET upn = NULL WHERE uuid = ? AND upn IS NOT NULL').run(uuid);
    if (r.changes > 0) this.changed();
    return r.changes > 0;
  }

  ensurePrincipal(uuid: string): void {
    if (this.db.prepare('INSERT OR IGNORE INTO principal (uuid, upn) VALUES (?, NULL)').run(uuid).changes > 0)
      this.changed();
  }

  setPassword(username: string, principal: string, password: string): void {
    const salt = randomBytes(16);
    this.db
      .prepare(
        'INSERT INTO password (username, principal, salt, hash) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT(username) DO UPDATE SET principal = excluded.principal, salt = excluded.salt, hash = excluded.hash',
      )
      .run(username, principal, salt, hashPasswordSync(password, salt));
    this.verified.delete(username);
    this.failed.clear();
  }

  /**
   * Checks a local password; user names may be given with or without the
   * realm. `address` is the client's, for the limit on failures per address.
   * Throws TooManyFailures when the user name or the address has had too
   * many failures lately.
   */
  async verifyPassword(username: string, password: string, address = ''): Promise<Principal | undefined> {
    const name = username.endsWith(`@${this.opts.realm}`) ? username.slice(0, -this.opts.realm.length - 1) : username;
    const row = this.db.prepare('SELECT principal, salt, hash FROM password WHERE username = ?').get(name) as
      { principal: string; salt: Buffer; hash: Buffer } | undefined;
    const salt = row?.salt ?? DUMMY.salt;
    const candidate = createHash('sha256').update(salt).update(name).update('\0').update(password, 'utf8').digest();
    // scrypt is deliberately slow; remember a fast digest of the last good
    // password per user so that Basic auth on every request stays cheap. A
    // client that has proved its password this way is not locked out by
    // someone else's guesses at its user name.
    const cached = row && this.verified.get(name);
    if (row && cached && cached.principal === row.principal && timingSafeEqual(cached.hash, candidate)) {
      return this.principal(row.principal);
    }
    const key = candidate.toString('base64');
    const failedUntil = this.failed.get(key);
    if (failedUntil !== undefined) {
      if (failedUntil > this.now()) {
        await this.limits.hold();
        return undefined;
      }
      this.failed.delete(key);
    }
    let check = this.checking.get(key);
    if (!check) {
      check = limitedCheck(this.limits, name, address, async () => {
        const hash = await hashPassword(password, salt);
        if (!row || !timingSafeEqual(hash, row.hash)) {
          if (this.failed.size >= FAILED_MEMORY) this.failed.delete(this.failed.keys().next().value!);
          this.failed.set(key, this.now() + this.failedMs);
          return undefined;
        }
        this.verified.set(name, { hash: candidate, principal: row.principal });
        return this.principal(row.principal);
      }).finally(() => this.checking.delete(key));
      this.checking.set(key, check);
    }
    return check;
  }

  addGrant(g: GrantSpec): { uuid: string; created: boolean } {
    const existing = this.db
      .prepare('SELECT uuid FROM grants WHERE principal = ? AND permission = ? AND target = ? AND plural = ?')
      .get(g.principal, g.permission, g.target, g.plural ? 1 : 0) as { uuid: string } | undefined;
    if (existing) return { uuid: existing.uuid, created: false };
    const uuid = newUuid();
    this.db
      .prepare('INSERT INTO grants (uuid, principal, permission, target, plural) VALUES (?, ?, ?, ?, ?)')
      .run(uuid, g.principal, g.permission, g.target, g.plural ? 1 : 0);
    this.invalidate();
    return { uuid, created: true };
  }

  getGrant(uuid: string): Grant | undefined {
    const r = this.db.prepare('SELECT * FROM grants WHERE uuid = ?').get(uuid) as GrantRow | undefined;
    return r && toGrant(r);
  }

  /**
   * Replaces a grant's content; 'missing' if there is no such grant,
   * 'duplicate' if another grant already has exactly that content.
   */
  replaceGrant(uuid: string, g: GrantSpec): 'replaced' | 'missing' | 'duplicate' {
    const other = this.db
      .prepare(
        'SELECT uuid FROM grants WHERE principal = ? AND permission = ? AND target = ? AND plural = ? AND uuid <> ?',
      )
      .get(g.principal, g.permission, g.target, g.plural ? 1 : 0, uuid) as { uuid: string } | undefined;
    if (other) return this.getGrant(uuid) ? 'duplicate' : 'missing';
    const r = this.db
      .prepare('UPDATE grants SET principal = ?, permission = ?, target = ?, plural = ? WHERE uuid = ?')
      .run(g.principal, g.permission, g.target, g.plural ? 1 : 0, uuid);
    if (r.changes === 0) return 'missing';
    this.invalidate();
    return 'replaced';
  }

  deleteGrant(uuid: string): boolean {
    const deleted = this.db.prepare('DELETE FROM grants WHERE uuid = ?').run(uuid).changes > 0;
    if (deleted) this.invalidate();
    return deleted;
  }

  findGrants(q: Partial<GrantSpec>): Grant[] {
    const where: string[] = [];
    const args: unknown[] = [];
    for (const k of ['principal', 'permission', 'target'] as const) {
      if (q[k] !== undefined) {
        where.push(`${k} = ?`);
        args.push(q[k]);
      }
    }
    if (q.plural !== undefined) {
      where.push('plural = ?');
      args.push(q.plural ? 1 : 0);
    }
    const sql = `SELECT * FROM grants${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY uuid`;
    return (this.db.prepare(sql).all(...args) as GrantRow[]).map(toGrant);
  }

  /**
   * Loads an Auth dump v2 in one transaction: identities first (an identical
   * record is left alone, a conflicting one fails the whole dump with
   * DumpConflict), then grants (existing identical grants are kept).
   * Bare user names get the realm appended.
   */
  loadDump(dump: AuthDump): { identities: number; grants: number } {
    let identities = 0;
    let grants = 0;
    this.db.transaction(() => {
      for (const [uuid, ids] of Object.entries(dump.identities ?? {})) {
        if (ids.kerberos === undefined) {
          this.ensurePrincipal(uuid);
          continue;
        }
        const upn = this.qualify(ids.kerberos);
        const r = this.setIdentity(uuid, upn);
        if (r === 'conflict') throw new DumpConflict(`identity ${upn} for ${uuid} conflicts with an existing record`);
        if (r === 'created') identities++;
      }
      for (const [principal, perms] of Object.entries(dump.grants ?? {})) {
        for (const [permission, targets] of Object.entries(perms)) {
          const specs: GrantSpec[] = [];
          if (targets === null) specs.push({ principal, permission, target: WILDCARD, plural: false });
          else {
            for (const [target, plural] of Object.entries(targets)) {
              if (plural === 'both' || plural === false) specs.push({ principal, permission, target, plural: false });
              if (plural === 'both' || plural === true) specs.push({ principal, permission, target, plural: true });
            }
          }
          for (const spec of specs) if (this.addGrant(spec).created) grants++;
        }
      }
    })();
    this.invalidate();
    return { identities, grants };
  }

  /** The principal's effective ACL, fully expanded as the Auth service returns it. */
  acl(principal: string): AclEntry[] {
    return this.cached(principal).entries.slice();
  }

  /**
   * The targets a principal holds a permission on, as a test: null when it
   * holds the permission on nothing at all; with `wild`, a wildcard grant
   * covers every target. Root holds everything.
   */
  permitted(principal: Principal, permission: string, wild = true): TargetTest | null {
    if (principal.root) return () => true;
    const targets = this.cached(principal.uuid).byPermission.get(permission);
    if (!targets || targets.size === 0) return null;
    if (wild && targets.has(WILDCARD)) return () => true;
    return (target) => targets.has(target);
  }

  /**
   * check_acl semantics: root passes; otherwise an entry with the permission
   * on the target (or the wildcard). Decided grant by grant instead of from
   * the expanded ACL: a principal that owns or may reach thousands of
   * objects (the Cluster Manager) would otherwise have its whole ACL rebuilt
   * after every change, which is every few requests while commissioning.
   * Same answers as the expansion in `expand`.
   */
  check(principal: Principal, permission: string, target: string, wild = true): boolean {
    if (principal.root) return true;
    for (const g of this.subjectGrants(principal.uuid)) {
      if (!this.permissionCovers(g.permission, permission)) continue;
      if (g.target === SELF) {
        if (target === principal.uuid) return true;
        continue;
      }
      if (g.target === MINE) {
        const reg = this.objects.get(target);
        if (reg && !reg.deleted && reg.owner === principal.uuid) return true;
        continue;
      }
      if (g.plural) {
        if (this.objects.isMember(g.target, target)) return true;
        continue;
      }
      if (g.target === target || (wild && g.target === WILDCARD)) return true;
    }
    return false;
  }

  /** A granted permission group stands for its members, not for itself. */
  private permissionCovers(granted: string, permission: string): boolean {
    const reg = this.objects.get(granted);
    if (!reg || reg.rank < 1) return granted === permission;
    return this.objects.isMember(granted, permission);
  }

  /** Grants to the principal and to every class it is a member of; cached like ACLs. */
  private subjectGrants(principal: string): Grant[] {
    const now = this.now();
    const hit = this.grantCache.get(principal);
    if (hit && hit.expires > now) return hit.grants;
    const subjects = [principal, ...this.objects.classesOf(principal)];
    const grants = (
      this.db
        .prepare(
          `SELECT * FROM grants WHERE principal IN (${subjects.map(() => '?').join(',')}) ORDER BY permission, target`,
        )
        .all(...subjects) as GrantRow[]
    ).map(toGrant);
    if (this.cacheMs > 0) {
      if (this.grantCache.size >= Math.max(this.cacheSize, 1)) this.grantCache.clear();
      this.grantCache.set(principal, { expires: now + this.cacheMs, grants });
    }
    return grants;
  }

  private cached(principal: string): CachedAcl {
    const now = this.now();
    const hit = this.cache.get(principal);
    if (hit && hit.expires > now) return hit;
    const entries = this.expand(principal);
    const byPermission = new Map<string, Set<string>>();
    for (const e of entries) {
      let set = byPermission.get(e.permission);
      if (!set) byPermission.set(e.permission, (set = new Set()));
      set.add(e.target);
    }
    const fresh = { expires: now + this.cacheMs, entries, byPermission };
    if (this.cacheSize > 0 && this.cacheMs > 0) {
      this.cache.delete(principal);
      while (this.cache.size >= this.cacheSize) {
        const oldest = this.cache.keys().next().value as string;
        this.cache.delete(oldest);
      }
      this.cache.set(principal, fresh);
    }
    return fresh;
  }

  /**
   * The expansion of the Auth service (reference §5.1):
   * - grants to the principal and to every class it is (recursively) a member of;
   * - a permission that is a class (a permission group or composite permission)
   *   stands for its recursive members; an individual permission for itself;
   * - a plural grant's target stands for the recursive members of the target class;
   * - target Self is the principal itself; target Mine every object it owns.
   */
  private expand(principal: string): AclEntry[] {
    const grants = this.subjectGrants(principal);
    const members = new Map<string, string[]>();
    const membersOf = (cls: string): string[] => {
      let m = members.get(cls);
      if (!m) members.set(cls, (m = this.objects.members(cls)));
      return m;
    };
    const permissions = new Map<string, string[]>();
    const expandPermission = (perm: string): string[] => {
      let p = permissions.get(perm);
      if (!p) {
        const reg = this.objects.get(perm);
        p = reg && reg.rank >= 1 ? membersOf(perm) : [perm];
        permissions.set(perm, p);
      }
      return p;
    };
    let owned: string[] | undefined;
    const expandTarget = (g: Grant): string[] => {
      if (g.target === SELF) return [principal];
      if (g.target === MINE) return (owned ??= this.objects.ownedBy(principal));
      return g.plural ? membersOf(g.target) : [g.target];
    };

    const seen = new Set<string>();
    const out: AclEntry[] = [];
    for (const g of grants) {
      const targets = expandTarget(g);
      for (const permission of expandPermission(g.permission)) {
        for (const target of targets) {
          const key = `${permission} ${target}`;
          if (seen.has(key)) continue;
          seen.add(key);
          out.push({ permission, target });
        }
      }
    }
    return out;
  }
}
