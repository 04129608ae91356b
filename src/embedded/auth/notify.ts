/**
 * The Auth service's `notify/v2` subscriptions, as the Factory+ Auth service
 * offers them (all WATCH):
 * - `v2/acl/:principal` and `v2/acl/kerberos/:upn`: the principal's ACL,
 *   restricted to the permissions the caller holds Read ACL on; 403 without
 *   Read ACL at all, 404 for an unknown principal or name;
 * - `v2/principal/`: the principals that have an identity;
 * - `v2/identity/:kind/`: the names of one kind of identity.
 * The identity lists need Read Kerberos on any target; an empty list is 404.
 */
import type { Logger } from '../../lib/log.js';
import { isUuid } from '../../lib/uuid.js';
import { NotifyV2Server, type HttpAnswer, type NotifyLimits, type WatchRoute } from '../notify/v2-server.js';
import { UPN_RE, type AuthModel, type Principal } from './model.js';
import { AuthPerm } from './routes.js';

/** Anything that may change an ACL or an identity. */
export type AuthHint = { type: 'acl' };

export interface AuthNotifyDeps {
  auth: AuthModel;
  authenticate(token: string): Principal | undefined;
  log: Logger;
  limits?: Partial<NotifyLimits>;
}

export function authNotify(deps: AuthNotifyDeps): NotifyV2Server<AuthHint> {
  const { auth } = deps;
  const always = () => true;

  const aclAnswer = (caller: Principal, principal: () => string | undefined): HttpAnswer => {
    const canRead = auth.permitted(caller, AuthPerm.readAcl);
    if (!canRead) return { status: 403 };
    const p = principal();
    if (p === undefined) return { status: 404 };
    return {
      status: 200,
      body: auth
        .acl(p)
        .filter((e) => canRead(e.permission))
        .map((e) => ({ ...e })),
    };
  };

  const identities = (caller: Principal, list: () => string[]): HttpAnswer => {
    if (!auth.permitted(caller, AuthPerm.readKerberos, false)) return { status: 403 };
    const names = list();
    return names.length ? { status: 200, body: names } : { status: 404 };
  };

  const upns = () =>
    auth
      .principalsWithIdentity()
      .flatMap((u) => auth.principal(u)?.upn ?? [])
      .sort();

  const watch: WatchRoute<AuthHint>[] = [
    {
      path: 'v2/acl/kerberos/:upn',
      open: (caller, { upn }) =>
        UPN_RE.test(upn!)
          ? { answer: () => aclAnswer(caller, () => auth.principalByUpn(upn!)?.uuid), affects: always }
          : undefined,
    },
    {
      path: 'v2/acl/:principal',
      open: (caller, { principal }) =>
        isUuid(principal)
          ? {
              answer: () => aclAnswer(caller, () => (auth.isPrincipal(principal) ? principal : undefined)),
              affects: always,
            }
          : undefined,
    },
    {
      path: 'v2/principal/',
      open: (caller) => ({ answer: () => identities(caller, () => auth.principalsWithIdentity()), affects: always }),
    },
    {
      path: 'v2/identity/:kind/',
      open: (caller, { kind }) => ({
        answer: () => identities(caller, () => (kind === 'kerberos' ? upns() : [])),
        affects: always,
      }),
    },
  ];

  return new NotifyV2Server<AuthHint>({
    watch,
    search: [],
    authenticate: deps.authenticate,
    log: deps.log,
    limits: deps.limits,
    changes: (listener) => auth.onChange(() => listener({ type: 'acl' })),
  });
}
