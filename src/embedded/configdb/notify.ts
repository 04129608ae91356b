/**
 * The Config Store's `notify/v2` subscriptions, as the Factory+ ConfigDB
 * offers them:
 * - WATCH `v1|v2/app/:app/object/:obj`: one entry (200 with body and ETag,
 *   404 when absent);
 * - WATCH `v1|v2/app/:app/object/`: the list of objects with an entry;
 * - SEARCH `v1|v2/app/:app/object/`: every entry of the application;
 * - WATCH `v2/class/:class/{member,subclass,direct/member,direct/subclass}/`.
 * Each answer is checked against the caller's ACL every time it is computed,
 * with the permission the HTTP API asks for (Read on the application for
 * entries): without it the answer is a 403 inside the live subscription.
 */
import type { Json } from '../../lib/merge-patch.js';
import { isUuid } from '../../lib/uuid.js';
import type { AuthModel, Principal } from '../auth/model.js';
import {
  NotifyV2Server,
  type HttpAnswer,
  type NotifyLimits,
  type SearchRoute,
  type WatchRoute,
} from '../notify/v2-server.js';
import type { Logger } from '../../lib/log.js';
import type { ObjectRegistry } from './objects.js';
import { ConfigDbPerm as P } from './routes.js';
import { ConfigApp, type ConfigStore } from './store.js';

/** What may have changed: one entry, the class graph, or ACLs. */
export type ConfigHint = { type: 'config'; app: string; object: string } | { type: 'class' } | { type: 'acl' };

export interface ConfigDbNotifyDeps {
  store: ConfigStore;
  objects: ObjectRegistry;
  auth: AuthModel;
  authenticate(token: string): Principal | undefined;
  log: Logger;
  limits?: Partial<NotifyLimits>;
}

export function configDbNotify(deps: ConfigDbNotifyDeps): NotifyV2Server<ConfigHint> {
  const { store, objects, auth } = deps;

  const readable = (p: Principal, app: string) => auth.check(p, P.ReadConfig, app);

  // The ETag goes without the quotes of the HTTP header, as the Factory+ ConfigDB sends it here.
  const entryAnswer = (app: string, obj: string): HttpAnswer => {
    const e = store.get(app, obj);
    return e ? { status: 200, headers: { etag: e.etag }, body: e.json } : { status: 404 };
  };

  /** Hints that concern an application's entries; registrations also change with the class graph. */
  const appHint = (app: string, h: ConfigHint): boolean | 'graph' =>
    h.type === 'acl' ||
    (h.type === 'config' && h.app === app) ||
    (h.type === 'class' && app === ConfigApp.Registration ? 'graph' : false);

  const entryWatch = (path: string): WatchRoute<ConfigHint> => ({
    path,
    open: (p, { app, obj }) => {
      if (!isUuid(app) || !isUuid(obj)) return undefined;
      return {
        answer: () =>
          !readable(p, app) ? { status: 403 } : !store.appExists(app) ? { status: 404 } : entryAnswer(app, obj),
        affects: (h) => appHint(app, h) !== false && (h.type !== 'config' || h.object === obj),
      };
    },
  });

  const listWatch = (path: string): WatchRoute<ConfigHint> => ({
    path,
    open: (p, { app }) => {
      if (!isUuid(app)) return undefined;
      return {
        answer: () =>
          !readable(p, app)
            ? { status: 403 }
            : !store.appExists(app)
              ? { status: 404 }
              : { status: 200, body: store.list(app) },
        affects: (h) => appHint(app, h) !== false,
      };
    },
  });

  const appSearch = (path: string): SearchRoute<ConfigHint> => ({
    path,
    open: (p, { app }) => {
      if (!isUuid(app)) return undefined;
      return {
        parent: () => (!readable(p, app) ? { status: 403 } : !store.appExists(app) ? { status: 404 } : { status: 204 }),
        children: () => store.list(app),
        child: (obj) => entryAnswer(app, obj),
        affects: (h) => {
          const a = appHint(app, h);
          // ACLs decide the parent's answer only; an entry's answer does not depend on them.
          return a === false ? false : h.type === 'config' ? [h.object] : h.type === 'acl' ? [] : 'all';
        },
      };
    },
  });

  const relations: Array<[string, string, (cls: string) => string[]]> = [
    ['member', P.ReadMembers, (c) => objects.members(c)],
    ['direct/member', P.WriteMembers, (c) => objects.directMembers(c)],
    ['subclass', P.ReadSubclasses, (c) => objects.subclasses(c)],
    ['direct/subclass', P.WriteSubclasses, (c) => objects.directSubclasses(c)],
  ];
  const relationWatch = ([rel, perm, list]: (typeof relations)[number]): WatchRoute<ConfigHint> => ({
    path: `v2/class/:cls/${rel}/`,
    open: (p, { cls }) => {
      if (!isUuid(cls)) return undefined;
      return {
        answer: () =>
          !auth.check(p, perm, cls)
            ? { status: 403 }
            : !objects.exists(cls)
              ? { status: 404 }
              : { status: 200, body: list(cls) as Json },
        affects: (h) => h.type !== 'config',
      };
    },
  });

  const watch: WatchRoute<ConfigHint>[] = [];
  const search: SearchRoute<ConfigHint>[] = [];
  for (const v of ['v1', 'v2']) {
    watch.push(entryWatch(`${v}/app/:app/object/:obj`), listWatch(`${v}/app/:app/object/`));
    search.push(appSearch(`${v}/app/:app/object/`));
  }
  watch.push(...relations.map(relationWatch));

  return new NotifyV2Server<ConfigHint>({
    watch,
    search,
    authenticate: deps.authenticate,
    log: deps.log,
    limits: deps.limits,
    changes: (listener) => {
      const offs = [
        store.onChange((app, object) => listener({ type: 'config', app, object })),
        objects.onChange(() => listener({ type: 'class' })),
        auth.onChange(() => listener({ type: 'acl' })),
      ];
      return () => {
        for (const off of offs) off();
      };
    },
  });
}
