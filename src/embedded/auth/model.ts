import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import type { Db } from '../db.js';
import type { ObjectRegistry } from '../configdb/objects.js';
import { newUuid, WILDCARD } from '../../lib/uuid.js';

export const SELF = '5855a1cc-46d8-4b16-84f8-ab3916ecb230';
export const MINE = '724c0316-4cfd-11f0-b355-0b70840faae8';

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

export interface AclEntry {
  permission: string;
  target: string;
}

interface GrantRow { uuid: string; principal: string; permission: string; target: string; plural: number }

function hashPassword(password: string, salt: Buffer): Buffer {
  return scryptSync(password, salt, 32, { N: 16384, r: 8, p: 1 });
}

function toGrant(r: GrantRow): Grant {
  return { uuid: r.uuid, principal: r.principal, permission: r.permission, target: r.target, plural: r.plural !== 0 };
}

/**
 * The embedded Auth service's data: principals with Kerberos-style identities,
 * local passwords, grants, and the ACL expansion the real Auth service does
 * (class grants, permission groups, plural targets, Self and Mine).
 */
export class AuthModel {
  private readonly verified = new Map<string, { hash: Buffer; principal: string }>();

  constructor(
    private readonly db: Db,
    private readonly objects: ObjectRegistry,
    private readonly opts: { realm: string; roots: Set<string> },
  ) {
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
  }

  get realm(): string {
    return this.opts.realm;
  }

  /** Adds the realm to a bare user name, as Factory+ services do for Basic auth. */
  qualify(name: string): string {
    return name.includes('@') ? name : `${name}@${this.opts.realm}`;
  }

  principal(uuid: string): Principal | undefined {
    const r = this.db.prepare('SELECT uuid, upn FROM principal WHERE uuid = ?').get(uuid) as { uuid: string; upn: string | null } | undefined;
    return r && { uuid: r.uuid, upn: r.upn, root: this.opts.roots.has(r.uuid) };
  }

  principalByUpn(upn: string): Principal | undefined {
    const r = this.db.prepare('SELECT uuid, upn FROM principal WHERE upn = ?').get(upn) as { uuid: string; upn: string | null } | undefined;
    return r && { uuid: r.uuid, upn: r.upn, root: this.opts.roots.has(r.uuid) };
  }

  /** Sets (or replaces) a principal's Kerberos identity; 'conflict' if another principal has it. */
  setIdentity(uuid: string, upn: string): 'created' | 'unchanged' | 'conflict' {
    const owner = this.principalByUpn(upn);
    if (owner && owner.uuid !== uuid) return 'conflict';
    const current = this.principal(uuid);
    if (current?.upn === upn) return 'unchanged';
    if (current?.upn && current.upn !== upn) return 'conflict';
    this.db.prepare('INSERT INTO principal (uuid, upn) VALUES (?, ?) ON CONFLICT(uuid) DO UPDATE SET upn = excluded.upn').run(uuid, upn);
    return 'created';
  }

  deleteIdentity(uuid: string): boolean {
    const r = this.db.prepare('UPDATE principal SET upn = NULL WHERE uuid = ? AND upn IS NOT NULL').run(uuid);
    return r.changes > 0;
  }

  ensurePrincipal(uuid: string): void {
    this.db.prepare('INSERT OR IGNORE INTO principal (uuid, upn) VALUES (?, NULL)').run(uuid);
  }

  setPassword(username: string, principal: string, password: string): void {
    const salt = randomBytes(16);
    this.db.prepare('INSERT INTO password (username, principal, salt, hash) VALUES (?, ?, ?, ?) ' +
      'ON CONFLICT(username) DO UPDATE SET principal = excluded.principal, salt = excluded.salt, hash = excluded.hash')
      .run(username, principal, salt, hashPassword(password, salt));
    this.verified.delete(username);
  }

  /** Checks a local password; user names may be given with or without the realm. */
  verifyPassword(username: string, password: string): Principal | undefined {
    const name = username.endsWith(`@${this.opts.realm}`) ? username.slice(0, -this.opts.realm.length - 1) : username;
    const row = this.db.prepare('SELECT principal, salt, hash FROM password WHERE username = ?').get(name) as
      { principal: string; salt: Buffer; hash: Buffer } | undefined;
    if (!row) return undefined;
    // scrypt is deliberately slow; remember a fast digest of the last good
    // password per user so that Basic auth on every request stays cheap.
    const cached = this.verified.get(name);
    const candidate = createHash('sha256').update(row.salt).update(password, 'utf8').digest();
    if (cached && cached.principal === row.principal && timingSafeEqual(cached.hash, candidate)) {
      return this.principal(row.principal);
    }
    const hash = hashPassword(password, row.salt);
    if (!timingSafeEqual(hash, row.hash)) return undefined;
    this.verified.set(name, { hash: candidate, principal: row.principal });
    return this.principal(row.principal);
  }

  addGrant(g: Omit<Grant, 'uuid'>): { uuid: string; created: boolean } {
    const existing = this.db.prepare('SELECT uuid FROM grants WHERE principal = ? AND permission = ? AND target = ? AND plural = ?')
      .get(g.principal, g.permission, g.target, g.plural ? 1 : 0) as { uuid: string } | undefined;
    if (existing) return { uuid: existing.uuid, created: false };
    const uuid = newUuid();
    this.db.prepare('INSERT INTO grants (uuid, principal, permission, target, plural) VALUES (?, ?, ?, ?, ?)')
      .run(uuid, g.principal, g.permission, g.target, g.plural ? 1 : 0);
    return { uuid, created: true };
  }

  getGrant(uuid: string): Grant | undefined {
    const r = this.db.prepare('SELECT * FROM grants WHERE uuid = ?').get(uuid) as GrantRow | undefined;
    return r && toGrant(r);
  }

  replaceGrant(uuid: string, g: Omit<Grant, 'uuid'>): boolean {
    const r = this.db.prepare('UPDATE grants SET principal = ?, permission = ?, target = ?, plural = ? WHERE uuid = ?')
      .run(g.principal, g.permission, g.target, g.plural ? 1 : 0, uuid);
    return r.changes > 0;
  }

  deleteGrant(uuid: string): boolean {
    return this.db.prepare('DELETE FROM grants WHERE uuid = ?').run(uuid).changes > 0;
  }

  findGrants(q: Partial<Omit<Grant, 'uuid'>>): Grant[] {
    const where: string[] = [];
    const args: unknown[] = [];
    for (const k of ['principal', 'permission', 'target'] as const) {
      if (q[k] !== undefined) { where.push(`${k} = ?`); args.push(q[k]); }
    }
    if (q.plural !== undefined) { where.push('plural = ?'); args.push(q.plural ? 1 : 0); }
    const sql = `SELECT * FROM grants${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY uuid`;
    return (this.db.prepare(sql).all(...args) as GrantRow[]).map(toGrant);
  }

  private expandPermission(perm: string, seen = new Set<string>()): string[] {
    if (seen.has(perm)) return [];
    seen.add(perm);
    const out = [perm];
    for (const m of this.objects.directMembers(perm)) out.push(...this.expandPermission(m, seen));
    for (const s of this.objects.directSubclasses(perm)) out.push(...this.expandPermission(s, seen));
    return out;
  }

  private expandTarget(principal: string, g: Grant): string[] {
    if (g.target === SELF) return [principal];
    if (g.target === MINE) return this.objects.ownedBy(principal);
    return g.plural ? this.objects.members(g.target) : [g.target];
  }

  /** The principal's effective ACL, fully expanded as the Auth service returns it. */
  acl(principal: string): AclEntry[] {
    const subjects = [principal, ...this.objects.classesOf(principal)];
    const placeholders = subjects.map(() => '?').join(',');
    const grants = (this.db.prepare(`SELECT * FROM grants WHERE principal IN (${placeholders})`).all(...subjects) as GrantRow[]).map(toGrant);
    const seen = new Set<string>();
    const out: AclEntry[] = [];
    for (const g of grants) {
      const targets = this.expandTarget(principal, g);
      for (const permission of this.expandPermission(g.permission)) {
        for (const target of targets) {
          const key = `${permission}/${target}`;
          if (seen.has(key)) continue;
          seen.add(key);
          out.push({ permission, target });
        }
      }
    }
    return out;
  }

  /** check_acl semantics: root passes; otherwise an entry with the permission on the target (or the wildcard). */
  check(principal: Principal, permission: string, target: string, wild = true): boolean {
    if (principal.root) return true;
    return this.acl(principal.uuid).some((e) => e.permission === permission && (e.target === target || (wild && e.target === WILDCARD)));
  }
}
