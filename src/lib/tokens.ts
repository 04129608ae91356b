import { randomBytes } from 'node:crypto';

const DEFAULT_LIFETIME_MS = 3 * 60 * 60 * 1000;

/**
 * Bearer tokens issued by a service's `POST /token`, as Factory+ services
 * keep them: in memory, lost on restart (clients ask again after a 401), and
 * refused within a minute of expiry so that none expires in flight.
 */
export class TokenStore {
  private readonly tokens = new Map<string, { principal: string; expiry: number }>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly lifetimeMs = DEFAULT_LIFETIME_MS,
  ) {}

  /**
   * A new token for `principal`. `notAfter` (ms) is the expiry of the
   * credential it is exchanged for: a token never outlives that, or a
   * short-lived JWT would buy hours of access.
   */
  issue(principal: string, notAfter?: number): { token: string; expiry: number } {
    this.sweep();
    const token = randomBytes(66).toString('base64');
    const expiry = Math.min(this.now() + this.lifetimeMs, notAfter ?? Infinity);
    this.tokens.set(token, { principal, expiry });
    return { token, expiry };
  }

  /** The token's principal, or undefined when unknown or (nearly) expired. */
  lookup(token: string): string | undefined {
    return this.find(token)?.principal;
  }

  /** The token's principal and expiry (ms), or undefined when unknown or (nearly) expired. */
  find(token: string): { principal: string; expiry: number } | undefined {
    const t = this.tokens.get(token);
    if (!t) return undefined;
    if (t.expiry - 60_000 <= this.now()) {
      this.tokens.delete(token);
      return undefined;
    }
    return t;
  }

  private sweep(): void {
    if (this.tokens.size < 1000) return;
    const now = this.now();
    for (const [k, t] of this.tokens) if (t.expiry - 60_000 <= now) this.tokens.delete(k);
  }
}
