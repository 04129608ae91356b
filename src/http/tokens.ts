import { randomBytes } from 'node:crypto';

/**
 * Bearer tokens issued by this service's `POST /token`, as every Factory+
 * service keeps them: in memory, with an expiry, lost on restart (clients
 * simply ask again after a 401).
 */
export class TokenIssuer {
  private readonly tokens = new Map<string, { principal: string; expiry: number }>();

  constructor(private readonly ttlMs: number, private readonly now: () => number = Date.now) {}

  issue(principal: string): { token: string; expiry: number } {
    this.sweep();
    const token = randomBytes(66).toString('base64');
    const expiry = this.now() + this.ttlMs;
    this.tokens.set(token, { principal, expiry });
    return { token, expiry };
  }

  /** The token's principal, or undefined when unknown or expired. */
  lookup(token: string): string | undefined {
    const t = this.tokens.get(token);
    if (!t) return undefined;
    if (t.expiry <= this.now()) {
      this.tokens.delete(token);
      return undefined;
    }
    return t.principal;
  }

  private sweep(): void {
    if (this.tokens.size < 1000) return;
    const now = this.now();
    for (const [k, t] of this.tokens) if (t.expiry <= now) this.tokens.delete(k);
  }
}
