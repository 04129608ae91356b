import type { ConfigDbClient } from './configdb.js';

/**
 * Entries of one Config Store application, read through and kept while the
 * change feed can tell us they changed. The Config Store announces changes
 * per application, so any change drops every entry; without a live feed
 * nothing is kept and every read goes to the Config Store.
 *
 * Between a change and its notification a cached entry can be a few
 * milliseconds old; callers that would refuse a request because of what an
 * entry says read it fresh first.
 */
export class EntryCache<T> {
  private readonly entries = new Map<string, T | undefined>();
  private readonly reading = new Map<string, Promise<T | undefined>>();
  /** Bumped on every invalidation, so a read that started before one is not kept. */
  private generation = 0;

  constructor(
    private readonly cdb: Pick<ConfigDbClient, 'get'>,
    private readonly app: string,
    /** Whether change notifications are being received now. */
    private readonly live: () => boolean,
    private readonly maxEntries = 10_000,
  ) {}

  /** An entry, from the cache unless `fresh` (a fresh read replaces what is cached). */
  async get(obj: string, opts: { fresh?: boolean } = {}): Promise<T | undefined> {
    if (!this.live()) return this.cdb.get<T>(this.app, obj);
    if (opts.fresh) {
      this.entries.delete(obj);
      this.reading.delete(obj);
    } else if (this.entries.has(obj)) {
      return this.entries.get(obj);
    }
    let p = this.reading.get(obj);
    if (!p) {
      const gen = this.generation;
      p = this.cdb
        .get<T>(this.app, obj)
        .then((v) => {
          if (gen === this.generation && this.live()) {
            if (this.entries.size >= this.maxEntries) this.entries.clear();
            this.entries.set(obj, v);
          }
          return v;
        })
        .finally(() => {
          if (this.reading.get(obj) === p) this.reading.delete(obj);
        });
      this.reading.set(obj, p);
    }
    return p;
  }

  invalidate(): void {
    this.generation++;
    this.entries.clear();
    this.reading.clear();
  }
}
