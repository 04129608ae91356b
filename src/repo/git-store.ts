import git, { Errors, type TreeEntry } from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
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
  /** Headers for each request, e.g. a fresh bearer token. */
  headers: () => Promise<Record<string, string>>;
}

export interface Author {
  name: string;
  email: string;
}

/** A repo's files at one commit: path -> blob id, plus content written since. */
export interface Snapshot {
  head: string | null;
  tree: string | null;
  files: Map<string, string>;
}

export const BRANCH = 'main';

/**
 * A local bare copy of one remote repo: fetches the branch head, reads and
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

/** Fetches the remote branch; returns its head, or null for an empty repo. */
export async function fetchHead(gitdir: string, remote: Remote): Promise<string | null> {
  try {
    const r = await git.fetch({
      fs, http, gitdir, url: remote.url, ref: BRANCH, remoteRef: BRANCH, singleBranch: true, tags: false, depth: 1,
      headers: await remote.headers(),
    });
    return r.fetchHead ?? null;
  } catch (e) {
    // An empty repository has no branch to fetch.
    if (e instanceof Errors.NotFoundError && /\bmain\b/.test((e as Error).message)) return null;
    throw e;
  }
}

async function walkTree(gitdir: string, oid: string, prefix: string, out: Map<string, string>): Promise<void> {
  const { tree } = await git.readTree({ fs, gitdir, oid });
  for (const e of tree) {
    const path = prefix ? `${prefix}/${e.path}` : e.path;
    if (e.type === 'tree') await walkTree(gitdir, e.oid, path, out);
    else if (e.type === 'blob') out.set(path, e.oid);
  }
}

export async function snapshot(gitdir: string, head: string | null): Promise<Snapshot> {
  const files = new Map<string, string>();
  if (!head) return { head, tree: null, files };
  const { commit } = await git.readCommit({ fs, gitdir, oid: head });
  await walkTree(gitdir, commit.tree, '', files);
  return { head, tree: commit.tree, files };
}

export async function readBlobText(gitdir: string, oid: string): Promise<string> {
  const { blob } = await git.readBlob({ fs, gitdir, oid });
  return Buffer.from(blob).toString('utf8');
}

export async function writeBlobText(gitdir: string, text: string): Promise<string> {
  return git.writeBlob({ fs, gitdir, blob: Buffer.from(text, 'utf8') });
}

/** Writes nested tree objects for a flat path -> blob map; returns the root tree id. */
export async function writeFiles(gitdir: string, files: Map<string, string>): Promise<string> {
  interface Dir { blobs: Map<string, string>; dirs: Map<string, Dir> }
  const root: Dir = { blobs: new Map(), dirs: new Map() };
  for (const [path, oid] of files) {
    const parts = path.split('/');
    let d = root;
    for (const p of parts.slice(0, -1)) {
      let next = d.dirs.get(p);
      if (!next) { next = { blobs: new Map(), dirs: new Map() }; d.dirs.set(p, next); }
      d = next;
    }
    d.blobs.set(parts[parts.length - 1], oid);
  }
  const write = async (d: Dir): Promise<string> => {
    const entries: TreeEntry[] = [];
    for (const [name, sub] of d.dirs) entries.push({ mode: '040000', path: name, oid: await write(sub), type: 'tree' });
    for (const [name, oid] of d.blobs) entries.push({ mode: '100644', path: name, oid, type: 'blob' });
    return git.writeTree({ fs, gitdir, tree: entries });
  };
  return write(root);
}

export async function commitTree(gitdir: string, opts: { tree: string; parent: string | null; message: string; author: Author }): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const who = { name: opts.author.name, email: opts.author.email, timestamp: now, timezoneOffset: 0 };
  return git.writeCommit({
    fs, gitdir,
    commit: { tree: opts.tree, parent: opts.parent ? [opts.parent] : [], author: who, committer: who, message: `${opts.message}\n` },
  });
}

export class PushRejected extends Error {}

/** Pushes a commit as the remote branch head; PushRejected when the remote moved. */
export async function pushCommit(gitdir: string, remote: Remote, commit: string): Promise<void> {
  await git.writeRef({ fs, gitdir, ref: `refs/heads/${BRANCH}`, value: commit, force: true });
  try {
    const r = await git.push({ fs, http, gitdir, url: remote.url, ref: BRANCH, remoteRef: BRANCH, headers: await remote.headers() });
    if (!r.ok) throw new PushRejected(`push rejected: ${JSON.stringify(r.refs)}`);
    const ref = r.refs[`refs/heads/${BRANCH}`];
    if (ref && !ref.ok) throw new PushRejected(`push rejected: ${ref.error}`);
  } catch (e) {
    if (e instanceof PushRejected) throw e;
    if (e instanceof Errors.PushRejectedError) throw new PushRejected(e.message);
    if (e instanceof Errors.GitPushError) throw new PushRejected(e.message);
    throw e;
  }
}
