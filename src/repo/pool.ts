import { join } from 'node:path';
import type { Logger } from 'pino';
import { ServiceError } from '../factoryplus/http.js';
import { silentLogger } from '../lib/log.js';
import { dropStore, listedHead, remoteHead, type Author, type Remote } from './git-store.js';
import { Semaphore } from '../lib/semaphore.js';
import { RepoWriter } from './writer.js';

export interface RepoPoolOptions {
  /**
   * Where the pool's working stores sit in the in-memory file system (one per
   * repo below it); nothing is written to disk. Distinct per pool, so two
   * managers in one process never share a store.
   */
  storeRoot: string;
  /** Base URL of the Git server; a repo is at `uuid/<repo>` below it. */
  gitBase: () => Promise<string>;
  /** Bearer token for the Git server's origin; `fresh` when the last one was refused. */
  token: (origin: string, fresh?: boolean) => Promise<string>;
  author: Author;
  /** Idle working stores kept warm; the least recently used beyond this are dropped. */
  maxWarm?: number;
  /** Writes (commit and push) under way at once over all repos; the others wait their turn. */
  maxConcurrentWrites?: number;
  log?: Logger;
}

/** A status read that takes longer is given up for the ref advertisement (the Factory+ Git server never answers one for a repo it does not list). */
const STATUS_LIST_TIMEOUT_MS = 3_000;
const STATUS_LIST_RETRY_MS = 10 * 60_000;

/**
 * One writer per repo, shared by everything that changes repos (the
 * commissioning steps and the sealing routes), so writes to a repo are
 * serialised and coalesced no matter who makes them. Working stores (in
 * memory) stay warm between writes, up to a bound.
 */
export class RepoPool {
  private readonly writers = new Map<string, RepoWriter>();
  private readonly maxWarm: number;
  private readonly log: Logger;
  /**
   * A Git server given a hundred pushes at once answers each of them late;
   * given a few at a time it answers them all sooner, and edits for a
   * waiting repo pile up into one commit meanwhile.
   */
  private readonly slots: Semaphore;
  private queued = 0;

  constructor(private readonly o: RepoPoolOptions) {
    this.maxWarm = o.maxWarm ?? 256;
    this.log = o.log ?? silentLogger;
    this.slots = new Semaphore(o.maxConcurrentWrites ?? 12);
  }

  /** Edits waiting in all writers. */
  get waiting(): number {
    return this.queued;
  }

  /** Where a repo is and how to authenticate to it. */
  private async remoteFor(repo: string): Promise<Remote> {
    const base = await this.o.gitBase();
    const origin = new URL(base).origin;
    return {
      url: new URL(`uuid/${repo}`, base).href,
      headers: async (fresh) => {
        try {
          return { Authorization: `Bearer ${await this.o.token(origin, fresh)}` };
        } catch (e) {
          // The token comes from the Git server's own /token: a failure there is the Git server's.
          if (e instanceof ServiceError) e.label ??= 'Git';
          throw e;
        }
      },
    };
  }

  /** Whether the service is writing to the repo, or has writes waiting for it. */
  busy(repo: string): boolean {
    return this.writers.get(repo)?.busy ?? false;
  }

  /**
   * Ref advertisements under way at once: each costs the Git server a git
   * process, where a status read costs it a lookup.
   */
  private readonly adverts = new Semaphore(8);

  /** The repo's head on the Git server: one ref advertisement, nothing fetched. */
  async remoteHead(repo: string): Promise<string | null> {
    const release = await this.adverts.acquire();
    try {
      return await remoteHead(await this.remoteFor(repo));
    } finally {
      release();
    }
  }

  /**
   * Whether the Git server answers `GET /v1/status/{uuid}` with branch heads:
   * unknown until it has; refused (with the time) after three failures with
   * no success, and asked again ten minutes later (a server that was down).
   */
  private statusList: { works: boolean; failures: number; refusedAt?: number } = { works: false, failures: 0 };

  /**
   * The repo's head on the Git server, read as cheaply as it can be when it
   * is the expected one. The server's status list costs it no git process but
   * can lag a push, so it is trusted only to say "unchanged"; anything else
   * is settled by the ref advertisement.
   */
  async currentHead(repo: string, expected: string): Promise<string | null> {
    const sl = this.statusList;
    if (sl.refusedAt === undefined || Date.now() - sl.refusedAt > STATUS_LIST_RETRY_MS) {
      try {
        const remote = await this.remoteFor(repo);
        const url = new URL(`v1/status/${repo}`, await this.o.gitBase()).href;
        const listed = await listedHead(url, remote.headers, STATUS_LIST_TIMEOUT_MS);
        sl.works = true;
        sl.refusedAt = undefined;
        if (listed === expected) return listed;
      } catch (e) {
        if (!sl.works && ++sl.failures >= 3) {
          sl.refusedAt = Date.now();
          sl.failures = 0;
          this.log.info(
            { err: (e as Error).message },
            'the Git server lists no repo status; reading ref advertisements',
          );
        }
      }
    }
    return this.remoteHead(repo);
  }

  async writer(repo: string): Promise<RepoWriter> {
    let w = this.writers.get(repo);
    if (w) {
      // Map order is recency order: move to the end.
      this.writers.delete(repo);
      this.writers.set(repo, w);
      return w;
    }
    w = new RepoWriter(join(this.o.storeRoot, repo), await this.remoteFor(repo), this.o.author, {
      log: this.log.child({ repo }),
      onRemote: (err) => this.note(err),
      slot: () => this.slots.acquire(),
      onQueued: (delta) => {
        this.queued += delta;
      },
    });
    this.writers.set(repo, w);
    this.trim();
    return w;
  }

  /** One file of a repo at the remote's current head. */
  async readFile(repo: string, path: string, opts: { deadlineMs?: number } = {}): Promise<string | undefined> {
    return (await this.writer(repo)).read((files) => files.read(path), opts);
  }

  /** Drops a repo's working store (after the cluster is removed). */
  async forget(repo: string): Promise<void> {
    const w = this.writers.get(repo);
    if (w && !w.idle) return;
    this.writers.delete(repo);
    await dropStore(join(this.o.storeRoot, repo));
  }

  private gitHealth: { ok: boolean; since: number; error?: string } | undefined;

  private note(err: Error | undefined): void {
    if (this.gitHealth?.ok === !err) {
      if (err) this.gitHealth.error = err.message;
      return;
    }
    this.gitHealth = { ok: !err, since: Date.now(), error: err?.message };
  }

  /** Whether the last exchange with the Git server worked (undefined: none yet). */
  get health(): { ok: boolean; since: number; error?: string } | undefined {
    return this.gitHealth;
  }

  get size(): number {
    return this.writers.size;
  }

  private trim(): void {
    if (this.writers.size <= this.maxWarm) return;
    for (const [repo, w] of this.writers) {
      if (this.writers.size <= this.maxWarm) break;
      if (!w.idle) continue;
      this.writers.delete(repo);
      dropStore(join(this.o.storeRoot, repo)).catch(() => undefined);
    }
  }
}
