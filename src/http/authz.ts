import type { AuthClient } from '../factoryplus/auth.js';
import { ServiceError } from '../factoryplus/http.js';
import { HttpError } from '../lib/http-errors.js';

interface Cached {
  entries: Array<{ permission: string; target: string }>;
  until: number;
}

/**
 * Factory+ ACL checks, as every Factory+ service makes them: the caller's
 * ACL comes from the Auth service (already expanded there) and a permission
 * holds on a target when an entry names that target or the wildcard. ACLs
 * are cached briefly; an Auth service that cannot answer makes the request
 * fail with 503 rather than pass.
 */
export class AclChecker {
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<Cached>>();

  constructor(
    private readonly auth: AuthClient,
    private readonly wildcard: string,
    private readonly ttlMs: number,
  ) {}

  private async acl(principal: string): Promise<Cached> {
    const hit = this.cache.get(principal);
    if (hit && hit.until > Date.now()) return hit;
    let p = this.inflight.get(principal);
    if (!p) {
      p = (async () => {
        try {
          // A caller is waiting: better a quick 503 than a long hang.
          const entries = await this.auth.acl({ uuid: principal }, { timeoutMs: 5000 });
          const c = { entries, until: Date.now() + this.ttlMs };
          if (this.cache.size > 10_000) this.cache.clear();
          this.cache.set(principal, c);
          return c;
        } catch (e) {
          const why = e instanceof ServiceError ? e.message : String(e);
          throw new HttpError(503, `the Auth service cannot tell what the caller may do: ${why}`, {
            'Retry-After': '5',
          });
        } finally {
          this.inflight.delete(principal);
        }
      })();
      this.inflight.set(principal, p);
    }
    return p;
  }

  async allowed(principal: string, permission: string, target: string): Promise<boolean> {
    const { entries } = await this.acl(principal);
    return entries.some((e) => e.permission === permission && (e.target === target || e.target === this.wildcard));
  }

  /** Targets of `permission` the principal holds; includes the wildcard when it holds that. */
  async targets(principal: string, permission: string): Promise<Set<string>> {
    const { entries } = await this.acl(principal);
    return new Set(entries.filter((e) => e.permission === permission).map((e) => e.target));
  }

  async require(principal: string, permission: string, target: string, what: string): Promise<void> {
    if (!(await this.allowed(principal, permission, target))) throw new HttpError(403, `not allowed to ${what}`);
  }
}
