import { createHash } from 'node:crypto';
import { constants as zlibConstants, deflateSync } from 'node:zlib';

/**
 * Git objects built with node:crypto and node:zlib: the objects a write
 * creates are hashed, stored and packed here instead of by isomorphic-git,
 * whose WebCrypto hashing and stream compression cost more than the rest of
 * a commit.
 */
export type ObjectType = 'blob' | 'tree' | 'commit';

export interface GitObject {
  type: ObjectType;
  oid: string;
  body: Buffer;
}

/**
 * The modes a tree entry can have, spelt as git writes them: a directory, a
 * file, an executable file, a symbolic link (its blob is the link target)
 * and a submodule (its id is a commit of another repository).
 */
export type EntryMode = '40000' | '100644' | '100755' | '120000' | '160000';

/** Modes of the entries that are not trees: what a path of a repo can hold. */
export type FileMode = Exclude<EntryMode, '40000'>;

const MODES: ReadonlySet<string> = new Set<EntryMode>(['40000', '100644', '100755', '120000', '160000']);

export function isFileMode(mode: string): mode is FileMode {
  return MODES.has(mode) && mode !== '40000';
}

export interface TreeEntry {
  name: string;
  oid: string;
  mode: EntryMode;
}

export interface Signature {
  name: string;
  email: string;
  /** Seconds since the epoch; the zone is always UTC. */
  timestamp: number;
}

/**
 * Loose objects live only in the in-memory working stores, a cache of the
 * server: stored uncompressed (a valid zlib stream at level 0), they cost
 * nothing to write. Packs go over the wire: Huffman coding alone packs the
 * base64 of sealed values as tightly as full deflate, at a third of the CPU,
 * and the server repacks what it keeps.
 */
const LOOSE_ZLIB = { level: 0 };
const PACK_ZLIB = { level: 1, strategy: zlibConstants.Z_HUFFMAN_ONLY };

function header(type: ObjectType, length: number): Buffer {
  return Buffer.from(`${type} ${length}\0`, 'latin1');
}

export function gitObject(type: ObjectType, body: Buffer): GitObject {
  const oid = createHash('sha1').update(header(type, body.length)).update(body).digest('hex');
  return { type, oid, body };
}

/** The zlib-compressed form of a loose object file. */
export function looseObject(o: GitObject): Buffer {
  return deflateSync(Buffer.concat([header(o.type, o.body.length), o.body]), LOOSE_ZLIB);
}

function checkEntry(e: TreeEntry): void {
  const { name } = e;
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new Error(`not a valid file name in a tree: ${JSON.stringify(name)}`);
  }
  if (!/^[0-9a-f]{40}$/.test(e.oid))
    throw new Error(`not an object id: ${JSON.stringify(e.oid)} for ${JSON.stringify(name)}`);
  if (!MODES.has(e.mode))
    throw new Error(`not a valid mode in a tree: ${JSON.stringify(e.mode)} for ${JSON.stringify(name)}`);
}

/**
 * Git orders tree entries by name bytes, a directory's name compared as if it
 * ended in '/'. A submodule is not a directory here: git sorts it as a file.
 */
function sortKey(e: TreeEntry): Buffer {
  return Buffer.from(e.mode === '40000' ? `${e.name}/` : e.name, 'utf8');
}

export function treeObject(entries: TreeEntry[]): GitObject {
  const keyed = entries.map((e) => {
    checkEntry(e);
    return { e, key: sortKey(e) };
  });
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  const parts: Buffer[] = [];
  for (const { e } of keyed) {
    parts.push(Buffer.from(`${e.mode} ${e.name}\0`, 'utf8'), Buffer.from(e.oid, 'hex'));
  }
  return gitObject('tree', Buffer.concat(parts));
}

function signature(s: Signature): string {
  const clean = (x: string) => x.replace(/[<>\n]/g, '');
  return `${clean(s.name)} <${clean(s.email)}> ${s.timestamp} +0000`;
}

export function commitObject(c: {
  tree: string;
  parents: string[];
  author: Signature;
  committer: Signature;
  message: string;
}): GitObject {
  const lines = [
    `tree ${c.tree}`,
    ...c.parents.map((p) => `parent ${p}`),
    `author ${signature(c.author)}`,
    `committer ${signature(c.committer)}`,
  ];
  return gitObject('commit', Buffer.from(`${lines.join('\n')}\n\n${c.message}`, 'utf8'));
}

const PACK_TYPE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3 };

/** A version 2 pack of whole (undeltified) objects, trailer included. */
export function packObjects(objects: Iterable<GitObject>): Buffer {
  const list = [...objects];
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(list.length, 8);
  const parts: Buffer[] = [head];
  for (const o of list) {
    let size = o.body.length;
    const bytes: number[] = [];
    let byte = (PACK_TYPE[o.type] << 4) | (size & 0x0f);
    size >>>= 4;
    while (size > 0) {
      bytes.push(byte | 0x80);
      byte = size & 0x7f;
      size >>>= 7;
    }
    bytes.push(byte);
    parts.push(Buffer.from(bytes), deflateSync(o.body, PACK_ZLIB));
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}
