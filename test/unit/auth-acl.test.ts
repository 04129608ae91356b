import { expect } from 'chai';
import { AuthModel, MINE, PRINCIPAL_CLASS, type Principal } from '../../src/embedded/auth/model.js';
import { ObjectRegistry, RankClass, UNOWNED } from '../../src/embedded/configdb/objects.js';
import { openDatabase, type Db } from '../../src/embedded/db.js';
import { newUuid, WILDCARD } from '../../src/lib/uuid.js';

const REALM = 'TEST.REALM';

interface Fixture {
  db: Db;
  objects: ObjectRegistry;
  user: string;
  roles: string[];
  groups: string[];
  perms: string[];
  targetClasses: string[];
}

/** A principal in five roles, with ~100 grants spread over it, its roles and other principals. */
function fixture(): Fixture {
  const db = openDatabase(':memory:');
  const objects = new ObjectRegistry(db);
  const owner = UNOWNED;
  objects.create({ class: RankClass.r1, uuid: PRINCIPAL_CLASS, owner });
  const user = objects.create({ class: PRINCIPAL_CLASS, owner }).registration.uuid;
  const roles = Array.from({ length: 5 }, () => objects.create({ class: RankClass.r1, owner }).registration.uuid);
  for (const r of roles) objects.addMember(r, user);
  const permClass = objects.create({ class: RankClass.r1, owner }).registration.uuid;
  const groups = Array.from({ length: 4 }, () => {
    const g = objects.create({ class: RankClass.r1, owner }).registration.uuid;
    objects.addSubclass(permClass, g);
    return g;
  });
  const perms = Array.from(
    { length: 40 },
    (_, i) => objects.create({ class: groups[i % groups.length], owner }).registration.uuid,
  );
  const targetClasses = Array.from({ length: 10 }, () => {
    const c = objects.create({ class: RankClass.r1, owner }).registration.uuid;
    for (let i = 0; i < 5; i++) objects.create({ class: c, owner });
    return c;
  });
  return { db, objects, user, roles, groups, perms, targetClasses };
}

function grantHundred(auth: AuthModel, f: Fixture): void {
  const subjects = [f.user, ...f.roles];
  for (let i = 0; i < 100; i++) {
    const principal = i % 4 === 3 ? newUuid() : subjects[i % subjects.length];
    const permission = i % 10 === 0 ? f.groups[i % f.groups.length] : f.perms[i % f.perms.length];
    const plural = i % 3 === 0;
    const target = plural ? f.targetClasses[i % f.targetClasses.length] : i % 7 === 0 ? WILDCARD : newUuid();
    auth.addGrant({ principal, permission, target, plural });
  }
}

describe('Auth model ACL cache', () => {
  let f: Fixture;
  let now: number;
  let cached: AuthModel;
  let uncached: AuthModel;
  let p: Principal;

  beforeEach(() => {
    f = fixture();
    now = 1_000_000;
    cached = new AuthModel(f.db, f.objects, { realm: REALM, roots: new Set(), aclCacheMs: 5000, now: () => now });
    uncached = new AuthModel(f.db, f.objects, { realm: REALM, roots: new Set(), aclCacheSize: 0 });
    grantHundred(cached, f);
    cached.ensurePrincipal(f.user);
    p = cached.principal(f.user)!;
  });

  afterEach(() => {
    cached.dispose();
    uncached.dispose();
    f.db.close();
  });

  const sorted = (m: AuthModel) =>
    m
      .acl(f.user)
      .map((e) => `${e.permission} ${e.target}`)
      .sort();

  it('gives the same ACL cached and uncached', () => {
    const a = sorted(cached);
    expect(a.length).to.be.greaterThan(100);
    expect(sorted(cached)).to.deep.equal(a);
    expect(sorted(uncached)).to.deep.equal(a);
  });

  it('is invalidated by grant changes made through the model', () => {
    const target = newUuid();
    expect(cached.check(p, f.perms[0], target)).to.equal(false);
    const { uuid } = cached.addGrant({ principal: f.roles[0], permission: f.perms[0], target, plural: false });
    expect(cached.check(p, f.perms[0], target)).to.equal(true);
    const other = newUuid();
    expect(
      cached.replaceGrant(uuid, { principal: f.roles[0], permission: f.perms[0], target: other, plural: false }),
    ).to.equal('replaced');
    expect(cached.check(p, f.perms[0], target)).to.equal(false);
    expect(cached.check(p, f.perms[0], other)).to.equal(true);
    cached.deleteGrant(uuid);
    expect(cached.check(p, f.perms[0], other)).to.equal(false);
  });

  it('is invalidated by class-graph and ownership changes', () => {
    const role = f.objects.create({ class: RankClass.r1, owner: UNOWNED }).registration.uuid;
    const target = newUuid();
    cached.addGrant({ principal: role, permission: f.perms[1], target, plural: false });
    expect(cached.check(p, f.perms[1], target)).to.equal(false);
    f.objects.addMember(role, f.user);
    expect(cached.check(p, f.perms[1], target)).to.equal(true);

    cached.addGrant({ principal: f.user, permission: f.perms[2], target: MINE, plural: false });
    const things = f.objects.create({ class: RankClass.r1, owner: UNOWNED }).registration.uuid;
    const thing = f.objects.create({ class: things, owner: UNOWNED }).registration.uuid;
    expect(cached.check(p, f.perms[2], thing, false)).to.equal(false);
    f.objects.setOwner(thing, f.user);
    expect(cached.check(p, f.perms[2], thing, false)).to.equal(true);

    // a new member of a plural target class is covered at once
    const perm = f.perms[3];
    cached.addGrant({ principal: f.user, permission: perm, target: f.targetClasses[9], plural: true });
    const member = f.objects.create({ class: f.targetClasses[9], owner: UNOWNED }).registration.uuid;
    expect(cached.check(p, perm, member, false)).to.equal(true);
  });

  it('expires entries so that writes from elsewhere are seen after the cache lifetime', () => {
    const target = newUuid();
    expect(cached.check(p, f.perms[4], target)).to.equal(false);
    // a write through another model on the same database does not reach this cache
    uncached.addGrant({ principal: f.user, permission: f.perms[4], target, plural: false });
    expect(cached.check(p, f.perms[4], target)).to.equal(false);
    now += 5001;
    expect(cached.check(p, f.perms[4], target)).to.equal(true);
  });

  it('answers every check exactly as the expanded ACL does', () => {
    cached.addGrant({ principal: f.user, permission: f.perms[5], target: MINE, plural: false });
    cached.addGrant({ principal: f.roles[1], permission: f.groups[2], target: f.user, plural: false });
    const owned = f.objects.create({ class: f.targetClasses[0], owner: f.user }).registration.uuid;
    const gone = f.objects.create({ class: f.targetClasses[1], owner: f.user }).registration.uuid;
    f.objects.setDeleted(gone, true);
    const targets = [
      WILDCARD,
      f.user,
      owned,
      gone,
      newUuid(),
      ...f.targetClasses,
      ...f.targetClasses.flatMap((c) => f.objects.members(c)),
    ];
    const expanded = new AuthModel(f.db, f.objects, { realm: REALM, roots: new Set(), aclCacheSize: 0 });
    let allowed = 0;
    for (const perm of [...f.perms, ...f.groups]) {
      for (const target of targets) {
        for (const wild of [true, false]) {
          const byExpansion = expanded.permitted(p, perm, wild)?.(target) ?? false;
          expect(cached.check(p, perm, target, wild), `${perm} on ${target} (wild ${wild})`).to.equal(byExpansion);
          if (byExpansion) allowed++;
        }
      }
    }
    expanded.dispose();
    expect(allowed, 'some checks pass').to.be.greaterThan(50);
  });
});
