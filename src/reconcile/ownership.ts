import type { Uuids } from '../config/types.js';
import type { AuthClient } from '../factoryplus/auth.js';
import type { ConfigDbClient } from '../factoryplus/configdb.js';
import { isUuid } from '../lib/uuid.js';
import type { Status, StatusStore } from './status.js';

/** An account setup makes for a cluster: its status field and the UPN prefix of its identity. */
export interface AccountRole {
  role: 'flux' | 'krbkeys';
  upn: string;
}

export interface OwnershipDeps {
  cdb: ConfigDbClient;
  auth: AuthClient;
  uuids: Uuids;
  realm: string;
  status: StatusStore;
}

/** The account UUID a status records for a role, as written (a string or `{uuid}`), or undefined. */
export function recordedAccount(status: Status | undefined, role: string): unknown {
  const rec = status?.[role] as { uuid?: unknown } | string | null | undefined;
  return typeof rec === 'string' ? rec : (rec?.uuid ?? undefined);
}

/** The other clusters whose status records `account` in any role. */
function claimedElsewhere(d: OwnershipDeps, cluster: string, account: string, roles: readonly AccountRole[]): string[] {
  return d.status
    .clusters()
    .filter(
      (other) =>
        other !== cluster &&
        roles.some((r) => String(recordedAccount(d.status.get(other), r.role) ?? '').toLowerCase() === account),
    );
}

/**
 * Why an account a status records is not this cluster's to touch, or
 * undefined when it is. A status entry is data anyone with write access to
 * the setup status app can forge, and this service holds Manage Kerberos on
 * everything: before it deletes a grant or an identity it checks that the
 * account is what this cluster's setup made — an Edge account, recorded by
 * no other cluster, whose identity (if any) is the one setup gives it.
 */
export async function foreignAccount(
  d: OwnershipDeps,
  cluster: string,
  name: string | undefined,
  acc: AccountRole,
  account: string,
  roles: readonly AccountRole[],
): Promise<string | undefined> {
  if (!isUuid(account)) return `${acc.role} account ${JSON.stringify(account).slice(0, 80)} is not a UUID`;
  const others = claimedElsewhere(d, cluster, account, roles);
  if (others.length) return `${acc.role} account ${account} belongs to cluster ${others[0]}`;
  const reg = await d.cdb.registration(account);
  if (reg && reg.class !== d.uuids.class.edgeAccount)
    return `${acc.role} account ${account} is not an Edge account (class ${reg.class})`;
  const upn = await d.auth.getKerberos(account);
  const expected = name === undefined ? undefined : `${acc.upn}/${name}@${d.realm}`;
  if (upn !== undefined && upn !== expected)
    return `${acc.role} account ${account} has identity ${upn}, not ${expected ?? 'one of this cluster'}`;
  // Grants are not searched here: ACS Auth shows this service none of them
  // (it filters listings by grant UUID). Each grant is read back by its UUID
  // and deleted only if it is this account's on this cluster (removeGrants).
  return undefined;
}

/**
 * Why the things a status records for `cluster` must not be removed, or
 * undefined when they may: the cluster itself must be an Edge cluster (a
 * forged status for another kind of object would otherwise delete that
 * object's Sparkplug address), and every recorded account must be its own.
 */
export async function foreignResources(
  d: OwnershipDeps,
  cluster: string,
  status: Status,
  roles: readonly AccountRole[],
): Promise<string | undefined> {
  const reg = await d.cdb.registration(cluster);
  if (reg && reg.class !== d.uuids.class.edgeCluster) return `${cluster} is not an Edge cluster (class ${reg.class})`;
  const name = (status.spec as { name?: unknown } | undefined)?.name;
  for (const acc of roles) {
    const account = recordedAccount(status, acc.role);
    if (account === undefined) continue;
    const why = await foreignAccount(
      d,
      cluster,
      typeof name === 'string' ? name : undefined,
      acc,
      typeof account === 'string' ? account.toLowerCase() : String(account),
      roles,
    );
    if (why) return why;
  }
  return undefined;
}
