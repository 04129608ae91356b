import git, { Errors } from 'isomorphic-git';
import { gitHttpClient, gitRequest, readAll, type GitAuth } from './git-http.js';
import {
  commitObject,
  gitObject,
  isFileMode,
  looseObject,
  treeObject,
  type FileMode,
  type GitObject,
  type TreeEntry,
} from './git-objects.js';
import { GitHttpError, parsePktLines, receivePack } from './git-push.js';
import { MemFs } from './mem-fs.js';

/** Every working store lives here: they are caches of the Git server, not state. */
const memory = new MemFs();
const fs = memory.client;

/** Bytes held by all working stores. */
export function storeBytes(): number {
  return memory.bytes;
}

/** Where a repo lives and how to authenticate to it. */
export interface Remote {
  url: string;
  /** Headers for each request (a bearer token); `fresh` after a 401 asks for a new one. */
  headers: GitAuth;
  /** How long the Git server may stay silent before a request fails. */
  timeoutMs?: number;
}

/**
 * A Git server silent this long is taken as down: a write then fails (503 to
 * whoever waits for it) instead of holding its queue.
 */
export const DEFAULT_GIT_TIMEOUT_MS = 8_000;

export interface Author {
  name: string;
  email: string;
}

/**
 * What a path of a repo holds: an object id and the mode it has in its tree.
 * The mode goes with the id everywhere, so a commit writes back every entry
 * it did not change exactly as it found it (an executable stays executable,
 * a symlink a symlink, a submodule a submodule).
 */
export interface FileEntry {
  /** A blob id; for a submodule (160000), a commit of another repository, not in this one. */
  oid: string;
  mode: FileMode;
}

/** A repo's entries at one commit: path -> id and mode, and the ids of its trees. */
export interface Snapshot {
  head: string | null;
  tree: string | null;
  files: Map<string, FileEntry>;
  trees: Set<string>;
}

const BRANCH = 'main';

/**
 * A bare copy of one remote repo, in memory: fetches the branch head, reads and
 * writes trees directly (there is no checkout to get out of step), commits on
 * top of the fetched head and pushes. All functions take explicit inputs.
 */
export async function openStore(gitdir: string, url: string): Promise<void> {
  if (memory.exists(`${gitdir}/HEAD`)) return;
  memory.mkdirp(gitdir);
  await git.init({ fs, gitdir, bare: true, defaultBranch: BRANCH });
  await git.addRemote({ fs, gitdir, remote: 'origin', url, force: true });
}

export async function dropStore(gitdir: string): Promise<void> {
  memory.rmrf(gitdir);
}

/** Fetches the branch, `depth` commits of it, into the store. */
function fetchBranch(gitdir: string, remote: Remote, depth: number) {
  return git.fetch({
    fs,
    http: gitHttpClient(remote.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS, remote.headers),
    gitdir,
    url: remote.url,
    ref: BRANCH,
    remoteRef: BRANCH,
    singleBranch: true,
    tags: false,
    depth,
  });
}

/** Fetches the remote branch; returns its head, or null for an empty repo. */
export async function fetchHead(gitdir: string, remote: Remote): Promise<string | null> {
  try {
    const r = await fetchBranch(gitdir, remote, 1);
    return r.fetchHead ?? null;
  } catch (e) {
    // An empty repository has no branch to fetch.
    if (e instanceof Errors.NotFoundError && /\bmain\b/.test((e as Error).message)) return null;
    throw e;
  }
}

/**
 * The remote branch's head from the ref advertisement alone: one request,
 * no objects, so a resync can ask it of every repo. Null for an empty repo.
 */
export async function remoteHead(remote: Remote): Promise<string | null> {
  const res = await gitRequest({
    url: `${remote.url.replace(/\/$/, '')}/info/refs?service=git-upload-pack`,
    auth: remote.headers,
    timeoutMs: remote.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS,
  });
  const body = await readAll(res.body);
  if (res.statusCode !== 200)
    throw new GitHttpError(res.statusCode, `the Git server answered the ref advertisement with ${res.statusCode}`);
  for (const line of parsePktLines(body)) {
    const m = /^([0-9a-f]{40}) refs\/heads\/([^\0\s]+)/.exec(line);
    if (m && m[2] === BRANCH) return m[1];
  }
  return null;
}

/**
 * The repo's `main` as the Git server lists it at `GET /v1/status/{uuid}`:
 * the Factory+ Git server answers from memory (its post-update hook keeps
 * the list), the embedded one from the ref files, so no git process runs
 * for it. The list can lag a push by a moment, so a head that differs from
 * the expected one is to be confirmed with `remoteHead`. Null when the repo
 * has no `main`; throws when the server does not answer the request with a
 * branch list.
 */
export async function listedHead(statusUrl: string, auth: GitAuth, timeoutMs: number): Promise<string | null> {
  const res = await gitRequest({ url: statusUrl, auth, timeoutMs, headers: { Accept: 'application/json' } });
  const body = await readAll(res.body, 64 * 1024);
  if (res.statusCode !== 200)
    throw new GitHttpError(res.statusCode, `the Git server answered the status request with ${res.statusCode}`);
  let branches: unknown;
  try {
    branches = JSON.parse(body.toString('utf8'));
  } catch {
    throw new Error('the Git server answered the status request with something other than JSON');
  }
  if (typeof branches !== 'object' || branches === null || Array.isArray(branches))
    throw new Error('the Git server answered the status request with something other than a branch list');
  const head = (branches as Record<string, unknown>)[BRANCH];
  if (head === undefined) return null;
  if (typeof head !== 'string' || !/^[0-9a-f]{40}$/.test(head))
    throw new Error(`the Git server listed ${BRANCH} as ${JSON.stringify(head).slice(0, 60)}, not a commit id`);
  return head;
}

/**
 * Whether `ancestor` is in the history of the remote branch, whose head is
 * `tip`, looking back at most `depth` commits (fetched for the purpose).
 */
export async function historyContains(
  gitdir: string,
  remote: Remote,
  tip: string,
  ancestor: string,
  depth = 512,
): Promise<boolean> {
  if (tip === ancestor) return true;
  await fetchBranch(gitdir, remote, depth);
  try {
    return await git.isDescendent({ fs, gitdir, oid: tip, ancestor, depth });
  } catch {
    return false;
  }
}

async function walkTree(gitdir: string, oid: string, prefix: string, snap: Snapshot): Promise<void> {
  snap.trees.add(oid);
  const { tree } = await git.readTree({ fs, gitdir, oid });
  for (const e of tree) {
    const path = prefix ? `${prefix}/${e.path}` : e.path;
    if (e.type === 'tree') await walkTree(gitdir, e.oid, path, snap);
    // A submodule's commit is not in this repo: it is kept by id, never read.
    else if (isFileMode(e.mode)) snap.files.set(path, { oid: e.oid, mode: e.mode });
    else throw new Error(`unexpected mode ${e.mode} of ${path} in tree ${oid}`);
  }
}

export async function snapshot(gitdir: string, head: string | null): Promise<Snapshot> {
  const snap: Snapshot = { head, tree: null, files: new Map(), trees: new Set() };
  if (!head) return snap;
  const { commit } = await git.readCommit({ fs, gitdir, oid: head });
  snap.tree = commit.tree;
  await walkTree(gitdir, commit.tree, '', snap);
  return snap;
}

export async function readBlobText(gitdir: string, oid: string): Promise<string> {
  const { blob } = await git.readBlob({ fs, gitdir, oid });
  return Buffer.from(blob).toString('utf8');
}

/**
 * Removes the loose objects not in `keep` (the objects of the commit the
 * store is at): a warm store writes a new version of a file per commit and
 * would otherwise keep every one of them.
 */
export function pruneLoose(gitdir: string, keep: Set<string>): void {
  for (const dir of memory.list(`${gitdir}/objects`)) {
    if (!/^[0-9a-f]{2}$/.test(dir)) continue;
    for (const rest of memory.list(`${gitdir}/objects/${dir}`)) {
      if (keep.has(dir + rest)) continue;
      memory.rmrf(`${gitdir}/objects/${dir}/${rest}`);
    }
  }
}

/** Packs fetched into a store; each fetch adds one. */
export function packCount(gitdir: string): number {
  return memory.list(`${gitdir}/objects/pack`).filter((n) => n.endsWith('.pack')).length;
}

/** Puts an object into the local store (a no-op when it is there). */
export function storeObject(gitdir: string, o: GitObject): void {
  const path = `${gitdir}/objects/${o.oid.slice(0, 2)}/${o.oid.slice(2)}`;
  if (!memory.exists(path)) memory.put(path, looseObject(o));
}

export function blobOf(text: string): GitObject {
  return gitObject('blob', Buffer.from(text, 'utf8'));
}

/**
 * The nested tree objects for a flat path -> entry map, each entry written
 * with its own mode. Returns the root tree's id, every tree's id, and the
 * trees that are not among `known` (the trees of the commit this one builds
 * on, which the remote has).
 */
export function buildTrees(
  files: Map<string, FileEntry>,
  known: Set<string>,
): { root: string; created: GitObject[]; trees: Set<string> } {
  interface Dir {
    blobs: Map<string, FileEntry>;
    dirs: Map<string, Dir>;
  }
  const root: Dir = { blobs: new Map(), dirs: new Map() };
  for (const [path, entry] of files) {
    const parts = path.split('/');
    let d = root;
    for (const p of parts.slice(0, -1)) {
      let next = d.dirs.get(p);
      if (!next) {
        next = { blobs: new Map(), dirs: new Map() };
        d.dirs.set(p, next);
      }
      d = next;
    }
    d.blobs.set(parts[parts.length - 1], entry);
  }
  const created: GitObject[] = [];
  const trees = new Set<string>();
  const build = (d: Dir): string => {
    const entries: TreeEntry[] = [];
    for (const [name, sub] of d.dirs) entries.push({ name, oid: build(sub), mode: '40000' });
    for (const [name, { oid, mode }] of d.blobs) entries.push({ name, oid, mode });
    const t = treeObject(entries);
    trees.add(t.oid);
    if (!known.has(t.oid)) created.push(t);
    return t.oid;
  };
  return { root: build(root), created, trees };
}

export function makeCommit(opts: { tree: string; parent: string | null; message: string; author: Author }): GitObject {
  const who = { name: opts.author.name, email: opts.author.email, timestamp: Math.floor(Date.now() / 1000) };
  return commitObject({
    tree: opts.tree,
    parents: opts.parent ? [opts.parent] : [],
    author: who,
    committer: who,
    message: `${opts.message}\n`,
  });
}

/**
 * Moves the remote branch from `parent` to `commit`, sending `objects` (every
 * object the commit added). PushRejected when the branch has moved.
 */
export async function pushCommit(
  remote: Remote,
  update: { parent: string | null; commit: string },
  objects: Iterable<GitObject>,
): Promise<void> {
  await receivePack({
    url: remote.url,
    auth: remote.headers,
    update: { ref: `refs/heads/${BRANCH}`, old: update.parent, new: update.commit },
    objects,
    timeoutMs: remote.timeoutMs ?? DEFAULT_GIT_TIMEOUT_MS,
  });
}
