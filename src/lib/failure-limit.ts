/**
 * Failed password checks counted per key (a user name, a client address) in
 * a fixed window that starts with the key's first failure. A key that has
 * used up its failures is refused until its window ends, without a check:
 * a password check costs tens of milliseconds of CPU, and guessing must be
 * slower than the guesser would like.
 *
 * An attempt is counted when it starts and given back when it succeeds, so
 * a burst of concurrent guesses cannot all get past the count before the
 * first of them has failed.
 */

export interface FailureLimitOptions {
  /** Failures a key may have in one window. */
  maxFailures: number;
  windowMs: number;
  /** Keys remembered at most; the oldest windows are forgotten first. */
  maxKeys?: number;
  now?: () => number;
}

interface Window {
  count: number;
  resetAt: number;
}

export class FailureLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(private readonly o: FailureLimitOptions) {
    this.now = o.now ?? Date.now;
    this.maxKeys = o.maxKeys ?? 10_000;
  }

  private current(key: string): Window | undefined {
    const w = this.windows.get(key);
    if (w && w.resetAt <= this.now()) {
      this.windows.delete(key);
      return undefined;
    }
    return w;
  }

  /** Whole seconds until `key` may try again; 0 when it may now. */
  retryAfter(key: string): number {
    const w = this.current(key);
    return w && w.count >= this.o.maxFailures ? Math.max(1, Math.ceil((w.resetAt - this.now()) / 1000)) : 0;
  }

  /** Counts an attempt as failed until `succeeded` says otherwise. */
  attempt(key: string): void {
    let w = this.current(key);
    if (!w) {
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
      w = { count: 0, resetAt: this.now() + this.o.windowMs };
      this.windows.set(key, w);
    }
    w.count++;
  }

  /** Gives back an attempt that turned out right (or could not be decided). */
  succeeded(key: string): void {
    const w = this.current(key);
    if (w && w.count > 0) w.count--;
  }
}

/** The limits on password checks: per user name and per client address. */
export interface PasswordLimits {
  perUser: FailureLimiter;
  perAddress: FailureLimiter;
  /**
   * Holds a refusal made without a check (a locked key, a credential known
   * to be wrong) this long before it is answered: a client guessing one at
   * a time then gets one answer per delay instead of as many as the event
   * loop can serve, and holding costs a timer.
   */
  hold: () => Promise<void>;
}

export interface PasswordLimitConfig {
  failuresPerUser: number;
  failuresPerAddress: number;
  windowSeconds: number;
  refusalDelayMs: number;
}

/** The defaults, chosen and explained in the README ("Hardening limits"). */
const DEFAULT_PASSWORD_LIMITS: PasswordLimitConfig = {
  failuresPerUser: 10,
  failuresPerAddress: 30,
  windowSeconds: 60,
  refusalDelayMs: 1000,
};

export function passwordLimits(c: PasswordLimitConfig = DEFAULT_PASSWORD_LIMITS, now?: () => number): PasswordLimits {
  return {
    perUser: new FailureLimiter({ maxFailures: c.failuresPerUser, windowMs: c.windowSeconds * 1000, now }),
    perAddress: new FailureLimiter({ maxFailures: c.failuresPerAddress, windowMs: c.windowSeconds * 1000, now }),
    hold: () =>
      c.refusalDelayMs > 0 ? new Promise((resolve) => setTimeout(resolve, c.refusalDelayMs)) : Promise.resolve(),
  };
}

/** Refused without a check: too many failures for the user name or the address. */
export class TooManyFailures extends Error {
  override readonly name = 'TooManyFailures';
  constructor(readonly retryAfterSeconds: number) {
    super(`too many failed password checks; try again in ${retryAfterSeconds} s`);
  }
}

/**
 * Runs one password check under the limits: refused at once when either key
 * is locked, counted against both while it runs, given back if it succeeds
 * or `check` throws (an outage is not a wrong password).
 */
export async function limitedCheck<T>(
  limits: PasswordLimits,
  user: string,
  address: string,
  check: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const wait = Math.max(limits.perUser.retryAfter(user), limits.perAddress.retryAfter(address));
  if (wait > 0) {
    await limits.hold();
    throw new TooManyFailures(wait);
  }
  limits.perUser.attempt(user);
  limits.perAddress.attempt(address);
  let result: T | undefined;
  try {
    result = await check();
  } catch (e) {
    limits.perUser.succeeded(user);
    limits.perAddress.succeeded(address);
    throw e;
  }
  if (result !== undefined) {
    limits.perUser.succeeded(user);
    limits.perAddress.succeeded(address);
  }
  return result;
}
