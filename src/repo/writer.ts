import type { Logger } from 'pino';
import { silentLogger } from '../lib/log.js';
import {
  commitTree, dropStore, fetchHead, openStore, pushCommit, PushRejected, readBlobText, snapshot, writeBlobText, writeFiles,
  type Author, type Remote, type Snapshot,
} from './git-store.js';

/** The files of a repo as an edit sees them: reads come from the head, writes stay local until committed. */
export interface FileSet {
  read(path: string): Promise<string | undefined>;
  write(path: string, text: string): Promise<void>;
  remove(path: string): void;
  /** Paths under a directory prefix (no trailing slash), sorted. */
  list(prefix: string): string[];
  /** The blob id of a file: the same id means the same content. */
  oid(path: string): string | undefined;
}

/** One change to a repo, re-applied on the new head if the remote moved. */
export interface Edit {
  message: string;
  apply(files: FileSet): Promise<void>;
}

export interface WriteResult {
  head: string | null;
  committed: boolean;
}

interface Pending {
  edit: Edit;
  resolve: (r: WriteResult) => void;
  reject: (e: Error) => void;
}

class Files implements FileSet {
  readonly map: Map<string, string>;

  constructor(private readonly gitdir: string, snap: Snapshot) {
    this.map = new Map(snap.files);
  }

  async read(path: string): Promise<string | undefined> {
    const oid = this.map.get(path);
    return oid === undefined ? undefined : readBlobText(this.gitdir, oid);
  }

  async write(path: string, text: string): Promise<void> {
    this.map.set(path, await writeBlobText(this.gitdir, text));
  }

  remove(path: string): void {
    this.map.delete(path);
  }

  oid(path: string): string | undefined {
    return this.map.get(path);
  }

  list(prefix: string): string[] {
    const p = prefix ? `${prefix}/` : '';
    return [...this.map.keys()].filter((k) => k.startsWith(p)).sort();
  }
}

export function batchMessage(messages: string[]): string {
  if (messages.length === 1) return messages[0];
  return `${messages.length} changes\n\n${messages.map((m) => `* ${m}`).join('\n')}`;
}

/**
 * The only writer of one repo. Edits submitted while a push is under way are
 * applied together and land in one commit; a push the remote refuses because
 * its branch moved is redone on top of the new head, so nobody's change is
 * lost. Each caller's promise settles only after its change is pushed.
 */
export class RepoWriter {
  private queue: Pending[] = [];
  private running = false;
  private knownHead: string | null | undefined;
  private turn: Promise<void> = Promise.resolve();
  /** Told whether each exchange with the remote worked, for health reporting. */
  private readonly onRemote?: (err: Error | undefined) => void;
  private readonly log: Logger;
  private readonly maxAttempts: number;
  lastUsed = Date.now();

  constructor(
    private readonly gitdir: string,
    private readonly remote: Remote,
    private readonly author: Author,
    opts: { log?: Logger; maxAttempts?: number; onRemote?: (err: Error | undefined) => void } = {},
  ) {
    this.log = opts.log ?? silentLogger;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.onRemote = opts.onRemote;
  }

  get idle(): boolean {
    return !this.running && this.queue.length === 0;
  }

  /**
   * Tells a cold writer what the remote head probably is (null: an empty
   * repo), saving the fetch before its first write. A wrong guess costs one
   * refused push and a retry on the real head.
   */
  assumeHead(head: string | null): void {
    if (this.knownHead === undefined) this.knownHead = head;
  }

  submit(edit: Edit): Promise<WriteResult> {
    this.lastUsed = Date.now();
    return new Promise((resolve, reject) => {
      this.queue.push({ edit, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  /**
   * Reads the current files without changing anything. Reads and writes of
   * one working copy take turns: a fetch must not rewrite pack files under
   * another reader's feet.
   */
  read<T>(fn: (files: FileSet) => Promise<T>): Promise<T> {
    this.lastUsed = Date.now();
    return this.exclusive(async () => {
      await openStore(this.gitdir, this.remote.url);
      let head: string | null;
      try {
        head = await fetchHead(this.gitdir, this.remote);
        this.onRemote?.(undefined);
      } catch (e) {
        this.onRemote?.(e as Error);
        throw e;
      }
      this.knownHead = head;
      return fn(new Files(this.gitdir, await snapshot(this.gitdir, head)));
    });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.then(() => undefined, () => undefined);
    return run;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      let last = 0;
      while (this.queue.length) {
        // After a shared commit its callers usually come straight back: a
        // moment's wait lets them join the next commit instead of the one after.
        if (last > 1) await new Promise((r) => setTimeout(r, 3));
        const batch = this.queue;
        this.queue = [];
        last = batch.length;
        await this.exclusive(() => this.write(batch));
      }
    } finally {
      this.running = false;
      this.lastUsed = Date.now();
    }
  }

  private async write(batch: Pending[]): Promise<void> {
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      try {
        await openStore(this.gitdir, this.remote.url);
        // A warm copy trusts its last head and learns of remote moves from a rejected push.
        const head = this.knownHead === undefined || attempt > 1 ? await fetchHead(this.gitdir, this.remote) : this.knownHead;
        const snap = await snapshot(this.gitdir, head);
        const files = new Files(this.gitdir, snap);
        const applied: Pending[] = [];
        for (const p of batch) {
          const before = new Map(files.map);
          try {
            await p.edit.apply(files);
            applied.push(p);
          } catch (e) {
            // One bad edit must not sink the others in the batch.
            files.map.clear();
            for (const [k, v] of before) files.map.set(k, v);
            p.reject(e as Error);
          }
        }
        batch = applied;
        if (!batch.length) return;
        const tree = await writeFiles(this.gitdir, files.map);
        if (tree === snap.tree || (snap.tree === null && files.map.size === 0)) {
          this.knownHead = head;
          for (const p of batch) p.resolve({ head, committed: false });
          return;
        }
        const commit = await commitTree(this.gitdir, { tree, parent: head, message: batchMessage(batch.map((p) => p.edit.message)), author: this.author });
        await pushCommit(this.gitdir, this.remote, commit);
        this.onRemote?.(undefined);
        this.knownHead = commit;
        for (const p of batch) p.resolve({ head: commit, committed: true });
        return;
      } catch (e) {
        lastError = e as Error;
        this.knownHead = undefined;
        if (!(e instanceof PushRejected)) {
          this.onRemote?.(e as Error);
          this.log.warn({ err: e, attempt }, 'repo write failed');
          // The local copy may be what is wrong; start the next attempt from a fresh one.
          await dropStore(this.gitdir).catch(() => undefined);
          if (attempt >= 2) break;
        } else {
          this.log.info({ attempt }, 'remote moved during push, retrying on the new head');
        }
      }
    }
    for (const p of batch) p.reject(lastError ?? new Error('repo write failed'));
  }
}
