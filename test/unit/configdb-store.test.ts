import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ObjectRegistry, RankClass } from '../../src/embedded/configdb/objects.js';
import { ConfigApp, ConfigStore } from '../../src/embedded/configdb/store.js';
import { openDatabase, type Db } from '../../src/embedded/db.js';
import { HttpError } from '../../src/lib/http-errors.js';
import type { Json } from '../../src/lib/merge-patch.js';
import { newUuid } from '../../src/lib/uuid.js';

const OWNER = newUuid();

function status(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    return (e as HttpError).status;
  }
  return 0;
}

describe('ConfigStore', () => {
  let db: Db;
  let objects: ObjectRegistry;
  let store: ConfigStore;
  let events: Array<[string, string]>;
  let app: string;
  let obj: string;
  let obj2: string;

  beforeEach(() => {
    db = openDatabase(':memory:');
    objects = new ObjectRegistry(db);
    store = new ConfigStore(db, objects);
    events = [];
    store.onChange((a, o) => events.push([a, o]));
    const apps = objects.create({ class: RankClass.r2, owner: OWNER }).registration.uuid;
    app = objects.create({ class: apps, owner: OWNER }).registration.uuid;
    objects.create({ class: apps, uuid: ConfigApp.ConfigSchema, owner: OWNER });
    objects.create({ class: apps, uuid: ConfigApp.Info, owner: OWNER });
    obj = objects.create({ class: RankClass.individual, owner: OWNER }).registration.uuid;
    obj2 = objects.create({ class: RankClass.individual, owner: OWNER }).registration.uuid;
  });

  afterEach(() => db.close());

  it('reports created, updated and unchanged writes and keeps the ETag for unchanged ones', () => {
    expect(store.put(app, obj, { a: 1, b: [1, 2] })).to.equal('created');
    const etag = store.get(app, obj)!.etag;
    expect(store.put(app, obj, { b: [1, 2], a: 1 })).to.equal('unchanged');
    expect(store.patch(app, obj, { c: null })).to.equal('unchanged');
    expect(store.get(app, obj)!.etag).to.equal(etag);
    expect(store.patch(app, obj, { c: 3 })).to.equal('updated');
    expect(store.get(app, obj)!.etag).to.not.equal(etag);
    expect(events).to.deep.equal([
      [app, obj],
      [app, obj],
    ]);
  });

  it('announces changes only after the outermost transaction commits, and drops them on rollback', () => {
    store.transaction(() => {
      store.put(app, obj, 1);
      store.put(app, obj, 2);
      store.put(app, obj2, 3);
      expect(events).to.deep.equal([]);
    });
    expect(events).to.deep.equal([
      [app, obj],
      [app, obj2],
    ]);

    events.length = 0;
    expect(() =>
      store.transaction(() => {
        store.put(app, obj, 'lost');
        throw new Error('abort');
      }),
    ).to.throw('abort');
    expect(store.get(app, obj)!.json).to.equal(2);
    expect(events).to.deep.equal([]);

    // A failed nested step rolls back alone and takes its events with it.
    store.transaction(() => {
      store.put(app, obj, 4);
      try {
        store.transaction(() => {
          store.put(app, obj2, 'inner');
          throw new Error('inner');
        });
      } catch {
        /* keep going */
      }
    });
    expect(store.get(app, obj)!.json).to.equal(4);
    expect(store.get(app, obj2)!.json).to.equal(3);
    expect(events).to.deep.equal([[app, obj]]);
  });

  it('keeps writing when a listener throws', () => {
    store.onChange(() => {
      throw new Error('listener');
    });
    expect(store.put(app, obj, { ok: true })).to.equal('created');
    expect(events).to.have.length(1);
  });

  it('compiles schemas of either dialect once per version', () => {
    const info = JSON.parse(
      readFileSync(new URL('../fixtures/configdb/info.schema.json', import.meta.url), 'utf8'),
    ) as Json;
    store.put(ConfigApp.ConfigSchema, ConfigApp.Info, info);
    expect(status(() => store.put(ConfigApp.Info, obj, { location: 'x' }))).to.equal(422);
    expect(
      store.put(ConfigApp.Info, obj, { name: 'Thing', contact: [{ name: 'A', email: 'a@example.com' }] }),
    ).to.equal('created');
    expect(
      status(() => store.put(ConfigApp.Info, obj2, { name: 'T', contact: [{ name: 'A', email: 'not mail' }] })),
    ).to.equal(422);
    const v = store.validatorFor(ConfigApp.Info);
    expect(store.validatorFor(ConfigApp.Info)).to.equal(v);

    store.put(ConfigApp.ConfigSchema, app, { $schema: 'http://json-schema.org/draft-07/schema#', type: 'integer' });
    expect(store.put(app, obj, 5)).to.equal('created');
    expect(status(() => store.put(app, obj, 'five'))).to.equal(422);
    expect(store.validatorFor(app)).to.not.equal(undefined);
    store.delete(ConfigApp.ConfigSchema, app);
    expect(store.validatorFor(app)).to.equal(undefined);
    expect(store.put(app, obj, 'five')).to.equal('updated');
  });

  it('forgets a schema written in a transaction that rolled back', () => {
    store.put(ConfigApp.ConfigSchema, app, { type: 'string' });
    expect(() =>
      store.transaction(() => {
        store.put(ConfigApp.ConfigSchema, app, { type: 'number' });
        expect(store.put(app, obj, 1)).to.equal('created');
        throw new Error('abort');
      }),
    ).to.throw('abort');
    expect(status(() => store.put(app, obj, 1))).to.equal(422);
    expect(store.put(app, obj, 'text')).to.equal('created');
  });

  it('requires registered applications and objects', () => {
    expect(status(() => store.put(newUuid(), obj, 1))).to.equal(404);
    expect(status(() => store.put(app, newUuid(), 1))).to.equal(404);
    expect(status(() => store.list(newUuid()))).to.equal(404);
    expect(status(() => store.delete(app, obj))).to.equal(404);
    expect(events).to.deep.equal([]);
  });

  it('serves registrations as virtual entries with stable ETags', () => {
    const e1 = store.get(ConfigApp.Registration, obj)!;
    expect(e1.json).to.deep.equal({ uuid: obj, class: RankClass.individual, rank: 0, owner: OWNER, deleted: false });
    expect(store.get(ConfigApp.Registration, obj)!.etag).to.equal(e1.etag);
    expect(store.patch(ConfigApp.Registration, obj, { deleted: true })).to.equal('updated');
    expect(objects.get(obj)!.deleted).to.equal(true);
    expect(store.get(ConfigApp.Registration, obj)!.etag).to.not.equal(e1.etag);
    expect(store.put(ConfigApp.Registration, obj, { deleted: true })).to.equal('unchanged');
    expect(status(() => store.put(ConfigApp.Registration, obj, { rank: 1 }))).to.equal(409);
    expect(status(() => store.put(ConfigApp.Registration, obj, { owner: newUuid() }))).to.equal(409);
    expect(store.list(ConfigApp.Registration)).to.include(obj);
  });
});
