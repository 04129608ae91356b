import type { Logger } from 'pino';
import { silentLogger } from '../lib/log.js';
import type { FileMode, GitObject } from './git-objects.js';
import {
  blobOf,
  buildTrees,
  DEFAULT_GIT_TIMEOUT_MS,
  dropStore,
  fetchHead,
  historyContains,
  makeCommit,
  openStore,
  packCount,
  pruneLoose,
  pushCommit,
  readBlobText,
  snapshot,
  storeObject,
  type Author,
  type FileEntry,
  type Remote,
  type Snapshot,
} from './git-store.js';
import { GitHttpTimeout } from './git-http.js';
import { PushRejected } from './git-push.js';
import { TextCache } from './text-cache.js';

const REGULAR: FileMode = '100644';
const EXECUTABLE: FileMode = '100755';
const GITLINK: FileMode = '160000';

/**
 * The files of a repo as an edit sees them: reads come from the head, writes
 * stay local until committed. Every entry an edit does not write or remove
 * is committed with the id and mode it had.
 */
export interface FileSet {
  /** A file's text (a symlink's is its target); undefined when absent or a submodule. */
  read(path: string): Promise<string | undefined>;
  /** Writes a regular file; see Files.write for the mode it gets. */
  write(path: string, text: string): Promise<void>;
  remove(path: string): void;
  /** Paths under a directory prefix (no trailing slash), sorted; submodules included. */
  list(prefix: string): string[];
  /** The blob id of a file: the same id means the same content. Undefined for a submodule. */
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
  /** Gives up on the edit if its write has not started in time. */
  timer?: NodeJS.Timeout;
  /** performance.now() by which the edit must be pushed, or given up. */
  deadline?: number;
  /** Apply it to the remote's head as fetched now, not to the head last seen. */
  fresh?: boolean;
}

/** A file to write where the repo has an entry of another kind (a file where a directory must be, or a directory). */
export class PathConflict extends Error {
  override readonly name = 'PathConflict';
}

function describeMode(mode: FileMode): string {
  return mode === GITLINK ? 'submodule' : mode === '120000' ? 'symlink' : 'file';
}

/** A change or read that ran out of its time before it reached the Git server; nothing was written. */
export class WriteQueueTimeout extends Error {}

export interface RepoWriterOptions {
  log?: Logger;
  maxAttempts?: number;
  onRemote?: (err: Error | undefined) => void;
  /** A place among the writes allowed at once (shared by the writers of a pool); resolves with its release. */
  slot?: () => Promise<() => void>;
  /** Told of every change in the number of edits waiting. */
  onQueued?: (delta: number) => void;
}

class Files implements FileSet {
  readonly map: Map<string, FileEntry>;
  /** Blobs written through this set: they go out with the commit. */
  readonly written = new Map<string, GitObject>();

  constructor(
    private readonly gitdir: string,
    snap: Snapshot,
    private readonly texts: TextCache,
  ) {
    this.map = new Map(snap.files);
  }

  /** A submodule has no content in this repo: it reads as no file, and its commit is never looked for. */
  async read(path: string): Promise<string | undefined> {
    const e = this.map.get(path);
    if (e === undefined || e.mode === GITLINK) return undefined;
    let text = this.texts.get(e.oid);
    if (text === undefined) this.texts.set(e.oid, (text = await readBlobText(this.gitdir, e.oid)));
    return text;
  }

  /**
   * The service writes regular files. A file it overwrites keeps its
   * executable bit, as git keeps a mode when only the content changes; a
   * symlink or submodule at the path becomes a regular file.
   */
  async write(path: string, text: string): Promise<void> {
    this.makeRoom(path);
    const blob = blobOf(text);
    storeObject(this.gitdir, blob);
    this.written.set(blob.oid, blob);
    this.texts.set(blob.oid, text);
    this.map.set(path, { oid: blob.oid, mode: this.map.get(path)?.mode === EXECUTABLE ? EXECUTABLE : REGULAR });
  }

  /**
   * Refuses a write that an entry the service did not make stands in the way
   * of: a tree cannot hold a name twice, and the entry is not the service's
   * to replace by a directory or to bury under one.
   */
  private makeRoom(path: string): void {
    for (let i = path.indexOf('/'); i > 0; i = path.indexOf('/', i + 1)) {
      const above = this.map.get(path.slice(0, i));
      if (above)
        throw new PathConflict(
          `${path.slice(0, i)} is a ${describeMode(above.mode)} in the repo, so ${path} cannot be written; nothing was written`,
        );
    }
    if (this.map.has(path)) return;
    const below = `${path}/`;
    for (const k of this.map.keys()) {
      if (k.startsWith(below))
        throw new PathConflict(
          `${path} is a directory in the repo (it holds ${k}), so it cannot be written as a file; nothing was written`,
        );
    }
  }

  remove(path: string): void {
    this.map.delete(path);
  }

  oid(path: string): string | undefined {
    const e = this.map.get(path);
    return e === undefined || e.mode === GITLINK ? undefined : e.oid;
  }

  list(prefix: string): string[] {
    const p = prefix ? `${prefix}/` : '';
    return [...this.map.keys()].filter((k) => k.startsWith(p)).sort();
  }
}

/** Objects a store may gain before those of older commits are removed. */
const PRUNE_AFTER_OBJECTS = 256;
/** Packs (one per fetch) a store may hold before it is dropped and fetched afresh. */
const MAX_PACKS = 4;

/** The longest a writer waits for announced edits or for the callers of its last commit. */
const MAX_GATHER_MS = 100;
/** The least time between the starts of two commits while edits arrive during commits. */
const BUSY_INTERVAL_MS = 40;

/** Whether two file maps hold the same paths with the same ids and modes. */
function sameEntries(a: ReadonlyMap<string, FileEntry>, b: ReadonlyMap<string, FileEntry>): boolean {
  if (a.size !== b.size) return false;
  for (const [path, e] of a) {
    const f = b.get(path);
    if (!f || f.oid !== e.oid || f.mode !== e.mode) return false;
  }
  return true;
}

function batchMessage(messages: string[]): string {
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
  /** The files and trees at knownHead, so a warm write does not walk the trees again. */
  private base: Snapshot | undefined;
  private readonly texts = new TextCache(256 * 1024);
  private turn: Promise<void> = Promise.resolve();
  private gathering: { done: () => void } | undefined;
  private expected = 0;
  /** True from the start of a write until its callers are answered. */
  private writing = false;
  private writtenAt = 0;
  private arrivedWhileWriting = 0;
  /** Edits submitted since the last write ended. */
  private returned = 0;
  private lastCommit: { size: number; start: number; end: number; arrivedDuring: number } | undefined;
  private addedSincePrune = 0;
  /** Told whether each exchange with the remote worked, for health reporting. */
  private readonly onRemote?: (err: Error | undefined) => void;
  private readonly log: Logger;
  private readonly maxAttempts: number;
  lastUsed = Date.now();

  private readonly slot?: () => Promise<() => void>;
  private readonly onQueued?: (delta: number) => void;

  constructor(
    private readonly gitdir: string,
    private readonly remote: Remote,
    private readonly author: Author,
    opts: RepoWriterOptions = {},
  ) {
    this.log = opts.log ?? silentLogger;
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.onRemote = opts.onRemote;
    this.slot = opts.slot;
    this.onQueued = opts.onQueued;
  }

  get idle(): boolean {
    return !this.running && this.queue.length === 0;
  }

  /** Edits waiting for a write, and those announced. */
  /** Writing, or with edits queued or announced. */
  get busy(): boolean {
    return this.running || this.queue.length > 0 || this.expected > 0;
  }

  get waiting(): number {
    return this.queue.length + this.expected;
  }

  /**
   * Tells a cold writer what the remote head probably is (null: an empty
   * repo), saving the fetch before its first write. A wrong guess costs one
   * refused push and a retry on the real head.
   */
  assumeHead(head: string | null): void {
    if (this.knownHead === undefined) this.knownHead = head;
  }

  /**
   * Queues an edit; resolves once it is pushed. With `maxWaitMs`, an edit
   * whose write has not started by then is dropped with WriteQueueTimeout.
   * With `deadlineMs`, its write gets only what is left of that time from
   * now: the Git requests of its batch time out sooner, and a batch whose
   * time is up before it reaches the server fails with WriteQueueTimeout.
   */
  submit(edit: Edit, opts: { maxWaitMs?: number; deadlineMs?: number; fresh?: boolean } = {}): Promise<WriteResult> {
    this.lastUsed = Date.now();
    return new Promise((resolve, reject) => {
      const p: Pending = { edit, resolve, reject, fresh: opts.fresh };
      if (opts.deadlineMs !== undefined) p.deadline = performance.now() + opts.deadlineMs;
      if (opts.maxWaitMs !== undefined) {
        p.timer = setTimeout(() => {
          const i = this.queue.indexOf(p);
          if (i < 0) return;
          this.queue.splice(i, 1);
          this.onQueued?.(-1);
          reject(
            new WriteQueueTimeout(
              `the change waited ${opts.maxWaitMs} ms for its turn to be written; nothing was written`,
            ),
          );
        }, opts.maxWaitMs);
      }
      this.queue.push(p);
      this.onQueued?.(1);
      if (this.writing) this.arrivedWhileWriting++;
      else this.returned++;
      if (!this.running) void this.drain();
      else this.poke();
    });
  }

  /**
   * Says an edit is on its way (its request is still being read and
   * checked), so the next commit waits a moment for it. Returns the function
   * to call just before submitting it, or when it will not come.
   */
  expect(): () => void {
    this.expected++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.expected--;
      this.poke();
    };
  }

  private poke(): void {
    if (this.gathering && this.gathered()) this.gathering.done();
  }

  /**
   * Reads the current files without changing anything. Reads and writes of
   * one working store take turns: a fetch must not rewrite pack files under
   * another reader's feet.
   */
  /**
   * With `deadlineMs`, a read still waiting for its turn by then fails with
   * WriteQueueTimeout, and its fetch gets only what is left of that time.
   */
  read<T>(fn: (files: FileSet) => Promise<T>, opts: { deadlineMs?: number } = {}): Promise<T> {
    this.lastUsed = Date.now();
    const deadline = opts.deadlineMs === undefined ? Infinity : performance.now() + opts.deadlineMs;
    let gaveUp = false;
    const run = this.exclusive(async () => {
      if (gaveUp) throw new WriteQueueTimeout('gave up waiting for the repo');
      await this.bounded();
      await openStore(this.gitdir, this.remote.url);
      let head: string | null;
      try {
        head = await fetchHead(this.gitdir, this.remoteWithin(deadline));
        this.onRemote?.(undefined);
      } catch (e) {
        this.onRemote?.(e as Error);
        throw e;
      }
      this.knownHead = head;
      return fn(new Files(this.gitdir, await this.snapshotAt(head), this.texts));
    });
    if (opts.deadlineMs === undefined) return run;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        gaveUp = true;
        reject(new WriteQueueTimeout(`the repo was busy for ${opts.deadlineMs} ms; try again shortly`));
      }, opts.deadlineMs);
      run.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  private async snapshotAt(head: string | null): Promise<Snapshot> {
    if (this.base?.head !== head) this.base = await snapshot(this.gitdir, head);
    return this.base;
  }

  /** Keeps the store from growing without end: see PRUNE_AFTER_OBJECTS and MAX_PACKS. */
  private prune(added: number): void {
    this.addedSincePrune += added;
    if (this.addedSincePrune < PRUNE_AFTER_OBJECTS || !this.base?.head) return;
    this.addedSincePrune = 0;
    pruneLoose(
      this.gitdir,
      new Set([this.base.head, ...this.base.trees, ...[...this.base.files.values()].map((e) => e.oid)]),
    );
  }

  private async bounded(): Promise<void> {
    if (packCount(this.gitdir) < MAX_PACKS) return;
    await dropStore(this.gitdir);
    this.knownHead = undefined;
    this.base = undefined;
  }

  /** Resolves once gathered() holds, or after `ms`. */
  private gather(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.gathering = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.gathering = { done };
    });
  }

  /**
   * The remote's head now, and whether `ancestor` is in its history (a
   * force-push that rewrote history leaves it out). Takes its turn like a read.
   */
  history(ancestor: string): Promise<{ head: string | null; contains: boolean }> {
    return this.exclusive(async () => {
      await this.bounded();
      await openStore(this.gitdir, this.remote.url);
      const head = await fetchHead(this.gitdir, this.remote);
      this.knownHead = head;
      this.base = undefined;
      return { head, contains: head !== null && (await historyContains(this.gitdir, this.remote, head, ancestor)) };
    });
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.turn.then(fn, fn);
    this.turn = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        // A commit per edit would spend the CPU the edits need, so a writer
        // with company waits a little before its next commit: for edits
        // announced by expect(); for the callers of its last shared commit,
        // who usually come straight back (at most as long as that commit
        // took); and, when edits arrived during the last commit, until
        // BUSY_INTERVAL_MS after its start. It stops waiting once the callers
        // of the last commit are back and nothing more is announced. A lone
        // caller that comes back to an idle writer never waits.
        const now = performance.now();
        const c = this.lastCommit;
        let until = now;
        if (c && c.size > 1) until = c.end + Math.min(MAX_GATHER_MS, c.end - c.start);
        if (c && c.arrivedDuring > 0) until = Math.max(until, c.start + BUSY_INTERVAL_MS);
        if (this.expected > 0) until = Math.max(until, now + MAX_GATHER_MS);
        if (until > now && !this.gathered()) await this.gather(until - now);
        const release = await this.slot?.();
        try {
          const batch = this.queue;
          this.queue = [];
          if (!batch.length) continue;
          this.onQueued?.(-batch.length);
          for (const p of batch) clearTimeout(p.timer);
          this.arrivedWhileWriting = 0;
          const start = performance.now();
          await this.exclusive(() => {
            this.writing = true;
            return this.write(batch);
          });
          this.lastCommit = { size: batch.length, start, end: this.writtenAt, arrivedDuring: this.arrivedWhileWriting };
        } finally {
          release?.();
        }
      }
    } finally {
      this.running = false;
      this.lastUsed = Date.now();
    }
  }

  /** Whether the callers of the last commit are back and no edit is announced. */
  private gathered(): boolean {
    return (this.lastCommit === undefined || this.returned >= this.lastCommit.size) && this.expected === 0;
  }

  /** Ends a write just before its callers are answered: what they submit next is a return. */
  private finishWriting(): void {
    this.writing = false;
    this.writtenAt = performance.now();
    this.returned = 0;
  }

  /** The remote, with its timeout cut to what is left before the batch's earliest deadline. */
  private remoteWithin(deadline: number): Remote {
    if (deadline === Infinity) return this.remote;
    const left = Math.floor(deadline - performance.now());
    if (left <= 0) throw new WriteQueueTimeout('ran out of time before reaching the Git server; nothing was written');
    return { ...this.remote, timeoutMs: Math.min(this.remote.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS, left) };
  }

  private async write(batch: Pending[]): Promise<void> {
    let lastError: Error | undefined;
    const deadline = Math.min(...batch.map((p) => p.deadline ?? Infinity));
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      try {
        await this.bounded();
        await openStore(this.gitdir, this.remote.url);
        // A warm copy trusts its last head and learns of remote moves from a
        // rejected push; an edit that restores what others may have changed
        // (a redeploy, a drift repair) needs the remote's head as it is now.
        const fetch = this.knownHead === undefined || attempt > 1 || batch.some((p) => p.fresh);
        const head = fetch ? await fetchHead(this.gitdir, this.remoteWithin(deadline)) : this.knownHead!;
        const snap = await this.snapshotAt(head);
        const files = new Files(this.gitdir, snap, this.texts);
        const applied: Pending[] = [];
        // Edits that changed nothing (a redeploy or drift repair finding the
        // files right) are answered, but their message is not the commit's.
        const changing = new Set<Pending>();
        for (const p of batch) {
          const before = new Map(files.map);
          try {
            await p.edit.apply(files);
            applied.push(p);
            if (!sameEntries(before, files.map)) changing.add(p);
          } catch (e) {
            // One bad edit must not sink the others in the batch.
            files.map.clear();
            for (const [k, v] of before) files.map.set(k, v);
            p.reject(e as Error);
          }
        }
        batch = applied;
        if (!batch.length) {
          this.finishWriting();
          return;
        }
        const { root, created, trees } = buildTrees(files.map, snap.trees);
        if (root === snap.tree || (snap.tree === null && files.map.size === 0)) {
          this.knownHead = head;
          this.finishWriting();
          for (const p of batch) p.resolve({ head, committed: false });
          return;
        }
        const commit = makeCommit({
          tree: root,
          parent: head,
          message: batchMessage(batch.filter((p) => changing.has(p)).map((p) => p.edit.message)),
          author: this.author,
        });
        for (const o of [...created, commit]) storeObject(this.gitdir, o);
        await pushCommit(this.remoteWithin(deadline), { parent: head, commit: commit.oid }, [
          commit,
          ...created,
          ...files.written.values(),
        ]);
        this.onRemote?.(undefined);
        this.knownHead = commit.oid;
        this.base = { head: commit.oid, tree: root, files: files.map, trees };
        this.prune(created.length + 1 + files.written.size);
        this.finishWriting();
        for (const p of batch) p.resolve({ head: commit.oid, committed: true });
        return;
      } catch (e) {
        lastError = e as Error;
        // Out of time before reaching the server: the copy is as good as it was.
        if (e instanceof WriteQueueTimeout) break;
        this.knownHead = undefined;
        this.base = undefined;
        if (!(e instanceof PushRejected)) {
          this.onRemote?.(e as Error);
          this.log.warn({ err: e, attempt }, 'repo write failed');
          // The local copy may be what is wrong; start the next attempt from a fresh one.
          await dropStore(this.gitdir).catch(() => undefined);
          // A server that does not answer will not answer the retry sooner.
          if (attempt >= 2 || e instanceof GitHttpTimeout) break;
        } else {
          this.log.info({ attempt }, 'remote moved during push, retrying on the new head');
        }
      }
    }
    this.finishWriting();
    for (const p of batch) p.reject(lastError ?? new Error('repo write failed'));
  }
}
