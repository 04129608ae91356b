import type { Logger } from 'pino';
import type { AuthModel } from '../auth/model.js';
import type { ObjectRegistry } from '../configdb/objects.js';
import type { ConfigStore } from '../configdb/store.js';
import type { CoreCredentials } from '../credentials.js';
import type { SeedPlan } from './plan.js';

/**
 * Brings the embedded core up to the seed: creates what is missing and never
 * overwrites what exists, so entries an operator edited keep their edits.
 * Runs in one transaction on every start.
 */
export function applySeed(
  deps: { store: ConfigStore; objects: ObjectRegistry; auth: AuthModel },
  plan: SeedPlan,
  creds: CoreCredentials,
  log: Logger,
): void {
  const { store, objects, auth } = deps;
  let created = 0;
  store.transaction(() => {
    for (const o of plan.objects) {
      if (objects.create({ class: o.class, uuid: o.uuid, owner: plan.accounts.admin }).created) created++;
    }
    for (const o of plan.objects) {
      for (const c of o.memberOf ?? []) objects.addMember(c, o.uuid);
      for (const c of o.subclassOf ?? []) objects.addSubclass(c, o.uuid);
    }
    for (const c of plan.configs) {
      if (!store.get(c.app, c.object)) {
        store.put(c.app, c.object, c.value);
        created++;
      }
    }
    for (const g of plan.grants) if (auth.addGrant(g).created) created++;

    for (const role of ['admin', 'clusterManager', 'configdb'] as const) {
      const uuid = plan.accounts[role];
      const cred = creds[role];
      if (!auth.principal(uuid)?.upn) auth.setIdentity(uuid, auth.qualify(cred.username));
      auth.setPassword(cred.username, uuid, cred.password);
    }
  });
  if (created) log.info({ created }, 'seeded the embedded core');
}
