import type { Db } from '../db.js';
import { newUuid } from '../../lib/uuid.js';

/** Well-known classes that define ranks (a member of RANK_CLASS[n] has rank n). */
export const RankClass = {
  individual: '2494ae9b-cd87-4c01-98db-437a303b43e9',
  r1: '04a1c90d-2295-4cbe-b33a-74eded62cbf1',
  r2: '705888ce-53fa-434d-afee-274b331d4642',
  r3: '52b80183-6998-4bf9-9b30-132755e7dede',
} as const;
const RANK_OF_METACLASS = new Map<string, number>([
  [RankClass.individual, 0],
  [RankClass.r1, 1],
  [RankClass.r2, 2],
  [RankClass.r3, 3],
]);

export const UNOWNED = '091e796a-65c0-4080-adff-c3ce01a65b2e';

export interface Registration {
  uuid: string;
  class: string;
  rank: number;
  owner: string;
  deleted: boolean;
}

export class ObjectError extends Error {
  constructor(
    readonly status: 404 | 405 | 409 | 422,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
  }
}

interface Row {
  uuid: string;
  class: string;
  rank: number;
  owner: string;
  deleted: number;
}

/**
 * The ConfigDB's object registry and class graph: objects with a primary
 * class, rank and owner; direct memberships and subclass relations; and the
 * recursive queries Auth and the Git server need ("is X a member of C").
 */
export class ObjectRegistry {
  private readonly listeners = new Set<() => void>();

  constructor(private readonly db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS objects (
        uuid TEXT PRIMARY KEY, class TEXT NOT NULL, rank INTEGER NOT NULL,
        owner TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS membership (
        class TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (class, member));
      CREATE INDEX IF NOT EXISTS membership_member ON membership(member);
      CREATE TABLE IF NOT EXISTS subclass (
        class TEXT NOT NULL, subclass TEXT NOT NULL, PRIMARY KEY (class, subclass));
      CREATE INDEX IF NOT EXISTS subclass_sub ON subclass(subclass);
    `);
    // The rank metaclasses are the roots of the graph; they exist from the start.
    for (const [uuid, rank] of RANK_OF_METACLASS) {
      db.prepare('INSERT OR IGNORE INTO objects (uuid, class, rank, owner) VALUES (?, ?, ?, ?)').run(
        uuid,
        rank === 3 ? uuid : [...RANK_OF_METACLASS.keys()][rank + 1],
        rank + 1,
        UNOWNED,
      );
    }
  }

  /** Called after any change of objects, memberships or subclasses. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  get(uuid: string): Registration | undefined {
    const r = this.db.prepare('SELECT * FROM objects WHERE uuid = ?').get(uuid) as Row | undefined;
    return r && { uuid: r.uuid, class: r.class, rank: r.rank, owner: r.owner, deleted: r.deleted !== 0 };
  }

  exists(uuid: string): boolean {
    return this.db.prepare('SELECT 1 FROM objects WHERE uuid = ?').get(uuid) !== undefined;
  }

  all(): string[] {
    return (this.db.prepare('SELECT uuid FROM objects ORDER BY uuid').all() as { uuid: string }[]).map((r) => r.uuid);
  }

  private rankForMemberOf(cls: string): number {
    const meta = RANK_OF_METACLASS.get(cls);
    if (meta !== undefined) return meta;
    const c = this.get(cls);
    if (!c) throw new ObjectError(409, `class ${cls} does not exist`);
    if (c.rank < 1) throw new ObjectError(409, `${cls} is an individual (rank 0), not a class`);
    return c.rank - 1;
  }

  /**
   * Registers an object in a class. With an explicit UUID that already exists
   * the registration is kept (and undeleted), as the ConfigDB does.
   */
  create(opts: { class: string; uuid?: string; owner: string }): { registration: Registration; created: boolean } {
    return this.db.transaction(() => {
      if (opts.uuid) {
        const existing = this.get(opts.uuid);
        if (existing) {
          if (existing.deleted) this.db.prepare('UPDATE objects SET deleted = 0 WHERE uuid = ?').run(opts.uuid);
          return { registration: { ...existing, deleted: false }, created: false };
        }
      }
      const rank = this.rankForMemberOf(opts.class);
      const uuid = opts.uuid ?? newUuid();
      this.db
        .prepare('INSERT INTO objects (uuid, class, rank, owner) VALUES (?, ?, ?, ?)')
        .run(uuid, opts.class, rank, opts.owner);
      this.db.prepare('INSERT OR IGNORE INTO membership (class, member) VALUES (?, ?)').run(opts.class, uuid);
      this.changed();
      return { registration: { uuid, class: opts.class, rank, owner: opts.owner, deleted: false }, created: true };
    })();
  }

  setDeleted(uuid: string, deleted: boolean): void {
    this.db.prepare('UPDATE objects SET deleted = ? WHERE uuid = ?').run(deleted ? 1 : 0, uuid);
    this.changed();
  }

  setOwner(uuid: string, owner: string): void {
    this.db.prepare('UPDATE objects SET owner = ? WHERE uuid = ?').run(owner, uuid);
    this.changed();
  }

  /** Removes an object that nothing refers to; 409 lists what still does. */
  remove(uuid: string): void {
    const reg = this.get(uuid);
    if (!reg) throw new ObjectError(404, `object ${uuid} does not exist`);
    if (RANK_OF_METACLASS.has(uuid)) throw new ObjectError(405, `object ${uuid} is immutable`);
    const members = this.directMembers(uuid);
    const subclasses = this.directSubclasses(uuid);
    if (members.length || subclasses.length) {
      throw new ObjectError(409, `object ${uuid} is still in use`, { members, subclasses });
    }
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM membership WHERE member = ?').run(uuid);
      this.db.prepare('DELETE FROM subclass WHERE subclass = ?').run(uuid);
      this.db.prepare('DELETE FROM objects WHERE uuid = ?').run(uuid);
    })();
    this.changed();
  }

  private requireBoth(cls: string, obj: string): { c: Registration; o: Registration } {
    const c = this.get(cls);
    const o = this.get(obj);
    if (!c) throw new ObjectError(404, `class ${cls} does not exist`);
    if (!o) throw new ObjectError(404, `object ${obj} does not exist`);
    return { c, o };
  }

  addMember(cls: string, obj: string): void {
    const { c, o } = this.requireBoth(cls, obj);
    if (c.rank !== o.rank + 1) {
      throw new ObjectError(409, `rank mismatch: class ${cls} has rank ${c.rank}, member ${obj} has rank ${o.rank}`);
    }
    const r = this.db.prepare('INSERT OR IGNORE INTO membership (class, member) VALUES (?, ?)').run(cls, obj);
    if (r.changes) this.changed();
  }

  removeMember(cls: string, obj: string): void {
    const { o } = this.requireBoth(cls, obj);
    if (o.class === cls) throw new ObjectError(409, `${cls} is the primary class of ${obj}`);
    const r = this.db.prepare('DELETE FROM membership WHERE class = ? AND member = ?').run(cls, obj);
    if (r.changes) this.changed();
  }

  addSubclass(cls: string, sub: string): void {
    const { c, o } = this.requireBoth(cls, sub);
    if (c.rank !== o.rank)
      throw new ObjectError(409, `rank mismatch: ${cls} has rank ${c.rank}, subclass ${sub} has rank ${o.rank}`);
    if (cls === sub || this.subclasses(sub).includes(cls))
      throw new ObjectError(409, `${sub} -> ${cls} would make a cycle`);
    const r = this.db.prepare('INSERT OR IGNORE INTO subclass (class, subclass) VALUES (?, ?)').run(cls, sub);
    if (r.changes) this.changed();
  }

  removeSubclass(cls: string, sub: string): void {
    this.requireBoth(cls, sub);
    const r = this.db.prepare('DELETE FROM subclass WHERE class = ? AND subclass = ?').run(cls, sub);
    if (r.changes) this.changed();
  }

  directMembers(cls: string): string[] {
    return (
      this.db.prepare('SELECT member FROM membership WHERE class = ? ORDER BY member').all(cls) as { member: string }[]
    ).map((r) => r.member);
  }

  directSubclasses(cls: string): string[] {
    return (
      this.db.prepare('SELECT subclass FROM subclass WHERE class = ? ORDER BY subclass').all(cls) as {
        subclass: string;
      }[]
    ).map((r) => r.subclass);
  }

  /** All subclasses, recursively (not including the class itself). */
  subclasses(cls: string): string[] {
    return (
      this.db
        .prepare(
          `
      WITH RECURSIVE sub(c) AS (
        SELECT subclass FROM subclass WHERE class = ?
        UNION SELECT s.subclass FROM subclass s JOIN sub ON s.class = sub.c)
      SELECT c FROM sub ORDER BY c`,
        )
        .all(cls) as { c: string }[]
    ).map((r) => r.c);
  }

  /** Members of the class or of any of its subclasses. */
  members(cls: string): string[] {
    return (
      this.db
        .prepare(
          `
      WITH RECURSIVE sub(c) AS (
        SELECT ? UNION SELECT s.subclass FROM subclass s JOIN sub ON s.class = sub.c)
      SELECT DISTINCT member FROM membership WHERE class IN (SELECT c FROM sub) ORDER BY member`,
        )
        .all(cls) as { member: string }[]
    ).map((r) => r.member);
  }

  /** Every class the object belongs to: direct classes and all their superclasses. */
  classesOf(obj: string): string[] {
    return (
      this.db
        .prepare(
          `
      WITH RECURSIVE sup(c) AS (
        SELECT class FROM membership WHERE member = ?
        UNION SELECT s.class FROM subclass s JOIN sup ON s.subclass = sup.c)
      SELECT c FROM sup ORDER BY c`,
        )
        .all(obj) as { c: string }[]
    ).map((r) => r.c);
  }

  isMember(cls: string, obj: string): boolean {
    return this.classesOf(obj).includes(cls);
  }

  ownedBy(owner: string): string[] {
    return (
      this.db.prepare('SELECT uuid FROM objects WHERE owner = ? AND deleted = 0 ORDER BY uuid').all(owner) as {
        uuid: string;
      }[]
    ).map((r) => r.uuid);
  }
}
