import type Koa from 'koa';
import type { Logger } from 'pino';
import { HttpError } from '../../lib/http-errors.js';
import { isUuid } from '../../lib/uuid.js';
import type { AuthModel } from '../auth/model.js';
import { createServiceApp, principalOf, type Ctx, type TokenStore } from '../http-kit.js';
import { BackendProcess } from './backend-process.js';
import { GitStorage } from './storage.js';

const GIT_SERVICE = '7adf4db0-2e7b-4a68-ab9d-376f4c5ce14b';
export const GitPerm = {
  pull: '12ecb694-b4b9-4d2a-927e-d100019f7ebe',
  push: 'b2d8d437-5060-4202-bcc2-bd2beda09651',
  manageStorage: '7fd8a8c1-6050-4950-97bd-a35bb83ff750',
} as const;

export interface GitAppDeps {
  storage: GitStorage;
  auth: AuthModel;
  tokens: TokenStore;
  log: Logger;
  /** The repo's configuration entry; undefined when the repo does not exist. */
  repoConfig: (uuid: string) => { path: string } | undefined;
  /** Repo UUID for a `group/name` path, or undefined when none or ambiguous. */
  resolvePath: (path: string) => string | undefined;
  /** Told after every successful push. */
  onPush?: (uuid: string) => void;
}

/** The smart-HTTP endpoints and the method each takes; the dumb-HTTP files (HEAD, objects/…) are not served. */
const SMART: Record<string, string> = { '/info/refs': 'GET', '/git-upload-pack': 'POST', '/git-receive-pack': 'POST' };
const SERVICES = new Set(['git-upload-pack', 'git-receive-pack']);

/**
 * The embedded Git server: smart HTTP at `/uuid/{uuid}` and `/git/{group}/{repo}`,
 * served by the system's `git http-backend`; a repo exists while its
 * configuration entry does; Pull/Push are checked against Auth per request.
 */
export function createGitApp(deps: GitAppDeps): { app: Koa; backend: BackendProcess } {
  const backend = new BackendProcess(deps.storage.root);
  const app = createServiceApp({
    serviceUuid: GIT_SERVICE,
    version: '1.0.0',
    application: 'embedded-git',
    auth: deps.auth,
    tokens: deps.tokens,
    log: deps.log,
  });

  app.use(async (ctx: Ctx, next) => {
    const status = /^\/v1\/status(?:\/([^/]+))?\/?$/.exec(ctx.path);
    if (status && ctx.method === 'GET') {
      if (status[1] === undefined) {
        // Only the repos the caller may pull from: the list would otherwise name every cluster.
        const who = principalOf(ctx);
        ctx.body = deps.storage
          .list()
          .filter((u) => deps.repoConfig(u) !== undefined && deps.auth.check(who, GitPerm.pull, u));
        return;
      }
      const uuid = status[1];
      if (!isUuid(uuid)) throw new HttpError(410, `not a UUID: ${uuid}`);
      // As in the list: a repo the caller may not pull from is not there for it.
      if (!deps.repoConfig(uuid) || !deps.auth.check(principalOf(ctx), GitPerm.pull, uuid))
        throw new HttpError(404, `no repository ${uuid}`);
      ctx.body = deps.storage.branches(uuid);
      return;
    }
    await next();
  });

  app.use(async (ctx: Ctx, next) => {
    let uuid: string | undefined;
    let suffix: string;
    const byUuid = /^\/uuid\/([^/]+)(\/.*)$/.exec(ctx.path);
    const byPath = /^\/git\/([^/]+)\/([^/]+?)(?:\.git)?(\/.*)$/.exec(ctx.path);
    if (byUuid) {
      uuid = byUuid[1];
      suffix = byUuid[2];
      if (!isUuid(uuid)) throw new HttpError(410, `not a UUID: ${uuid}`);
    } else if (byPath) {
      // Repo paths are guessable names: a repo the caller may not pull from
      // is answered exactly as a missing one, so names cannot be probed.
      const missing = () => new HttpError(404, `no repository at ${byPath[1]}/${byPath[2]}`);
      uuid = deps.resolvePath(`${byPath[1]}/${byPath[2]}`);
      suffix = byPath[3];
      if (!uuid || !deps.auth.check(principalOf(ctx), GitPerm.pull, uuid)) throw missing();
    } else {
      return next();
    }
    const method = SMART[suffix];
    if (!method) throw new HttpError(404, `not a smart HTTP path: ${suffix}`);
    if (ctx.method !== method) throw new HttpError(405, `${ctx.method} is not allowed here`, { Allow: method });
    // The advertisement is chosen by one `service`; anything else (none,
    // several, unknown) is a dumb-HTTP request, which is not served. git
    // http-backend is given only the service checked here.
    let service: string;
    if (suffix === '/info/refs') {
      const given = ctx.query.service;
      if (typeof given !== 'string' || !SERVICES.has(given))
        throw new HttpError(404, 'dumb HTTP is not served: give one ?service=git-upload-pack or git-receive-pack');
      service = given;
    } else {
      service = suffix.slice(1);
    }
    const push = service === 'git-receive-pack';
    if (!deps.repoConfig(uuid)) throw new HttpError(404, `no repository ${uuid}`);
    authorise(ctx, deps, uuid, push);

    await deps.storage.ensure(uuid);
    const principal = principalOf(ctx);
    const res = await backend.run({
      pathInfo: `/${uuid}.git${suffix}`,
      req: ctx.req,
      query: suffix === '/info/refs' ? `service=${service}` : '',
      remoteUser: principal.upn ?? principal.uuid,
    });
    ctx.status = res.status;
    for (const [k, v] of Object.entries(res.headers)) ctx.set(k, v);
    ctx.body = res.body;
    if (push && ctx.method === 'POST') {
      void res.done.then((code) => {
        if (code === 0) deps.onPush?.(uuid!);
      });
    }
  });

  return { app, backend };
}

function authorise(ctx: Ctx, deps: GitAppDeps, uuid: string, push: boolean): void {
  const perm = push ? GitPerm.push : GitPerm.pull;
  if (!deps.auth.check(principalOf(ctx), perm, uuid)) {
    throw new HttpError(403, `not permitted to ${push ? 'push to' : 'pull from'} repository ${uuid}`);
  }
}

export { GitStorage };
