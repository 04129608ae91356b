/**
 * A small in-memory file system with the promise API isomorphic-git uses.
 *
 * The working stores of cluster repos are caches of the Git server (the
 * remote is the truth and every write is pushed before it is acknowledged),
 * so they need no disk: kept in memory they cost no file-system calls, which
 * were most of the CPU of a commit and push.
 */

type Node = { kind: 'file'; data: Buffer; mtimeMs: number } | { kind: 'dir' };

function fsError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${syscall} '${path}'`) as NodeJS.ErrnoException;
  e.code = code;
  e.syscall = syscall;
  e.path = path;
  return e;
}

const PROBE_ERROR = fsError('EINVAL', 'open', '');

function normal(path: string): string {
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return `/${parts.join('/')}`;
}

/**
 * The bytes in memory of their own. A buffer is often a view into a larger
 * one (zlib's output chunk, Node's 8 KiB pool), and keeping the view keeps
 * all of it: a few hundred bytes of object would hold 16 KiB.
 */
function exact(data: Buffer): Buffer {
  if (data.byteOffset === 0 && data.buffer.byteLength === data.length) return data;
  const own = Buffer.allocUnsafeSlow(data.length);
  data.copy(own);
  return own;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

class Stats {
  readonly uid = 0;
  readonly gid = 0;
  readonly dev = 1;
  readonly ino: number;
  readonly ctimeMs: number;
  constructor(
    private readonly node: Node,
    ino: number,
  ) {
    this.ino = ino;
    this.ctimeMs = this.mtimeMs;
  }
  get size(): number {
    return this.node.kind === 'file' ? this.node.data.length : 0;
  }
  get mode(): number {
    return this.node.kind === 'file' ? 0o100644 : 0o040755;
  }
  get mtimeMs(): number {
    return this.node.kind === 'file' ? this.node.mtimeMs : 0;
  }
  isFile(): boolean {
    return this.node.kind === 'file';
  }
  isDirectory(): boolean {
    return this.node.kind === 'dir';
  }
  isSymbolicLink(): boolean {
    return false;
  }
}

export class MemFs {
  private readonly nodes = new Map<string, Node>([['/', { kind: 'dir' }]]);
  private readonly inodes = new Map<string, number>();
  /** Directory -> names in it, so listing a directory does not scan everything. */
  private readonly children = new Map<string, Set<string>>([['/', new Set()]]);
  private nextIno = 1;

  /** The object to pass to isomorphic-git as `fs`. */
  readonly client = { promises: this.api() };

  private dir(path: string, syscall: string): void {
    const n = this.nodes.get(path);
    if (!n) throw fsError('ENOENT', syscall, path);
    if (n.kind !== 'dir') throw fsError('ENOTDIR', syscall, path);
  }

  private add(path: string, node: Node): void {
    this.nodes.set(path, node);
    if (node.kind === 'dir' && !this.children.has(path)) this.children.set(path, new Set());
    this.children.get(parentOf(path))?.add(path.slice(path.lastIndexOf('/') + 1));
  }

  private drop(path: string): void {
    this.nodes.delete(path);
    this.inodes.delete(path);
    this.children.delete(path);
    this.children.get(parentOf(path))?.delete(path.slice(path.lastIndexOf('/') + 1));
  }

  exists(path: string): boolean {
    return this.nodes.has(normal(path));
  }

  mkdirp(path: string): void {
    const p = normal(path);
    if (p === '/') return;
    this.mkdirp(parentOf(p));
    const n = this.nodes.get(p);
    if (!n) this.add(p, { kind: 'dir' });
    else if (n.kind !== 'dir') throw fsError('EEXIST', 'mkdir', p);
  }

  /** Writes a file, creating its directories. */
  put(path: string, data: Buffer): void {
    const p = normal(path);
    this.mkdirp(parentOf(p));
    if (this.nodes.get(p)?.kind === 'dir') throw fsError('EISDIR', 'open', p);
    this.add(p, { kind: 'file', data: exact(data), mtimeMs: Date.now() });
  }

  /** Names in a directory (empty when it does not exist). */
  list(path: string): string[] {
    return [...(this.children.get(normal(path)) ?? [])];
  }

  /** Removes a path and everything under it. */
  rmrf(path: string): void {
    const p = normal(path);
    if (!this.nodes.has(p)) return;
    // Walk this subtree only: a scan of every file of every cached repo would
    // make each eviction cost as much as the whole cache.
    for (const name of [...(this.children.get(p) ?? [])]) this.rmrf(p === '/' ? `/${name}` : `${p}/${name}`);
    this.drop(p);
  }

  /** Bytes held, for tests and figures. */
  get bytes(): number {
    let n = 0;
    for (const v of this.nodes.values()) if (v.kind === 'file') n += v.data.length;
    return n;
  }

  private api() {
    // The fs methods are handed out as plain functions (isomorphic-git calls them unbound).
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const stat = async (path: string) => {
      const p = normal(path);
      const n = self.nodes.get(p);
      if (!n) throw fsError('ENOENT', 'stat', p);
      let ino = self.inodes.get(p);
      if (ino === undefined) self.inodes.set(p, (ino = self.nextIno++));
      return new Stats(n, ino);
    };
    return {
      async readFile(path: string, opts?: string | { encoding?: string }) {
        // isomorphic-git probes the file system with readFile() and no path on every call.
        if (typeof path !== 'string') throw PROBE_ERROR;
        const p = normal(path);
        const n = self.nodes.get(p);
        if (!n) throw fsError('ENOENT', 'open', p);
        if (n.kind !== 'file') throw fsError('EISDIR', 'read', p);
        const enc = typeof opts === 'string' ? opts : opts?.encoding;
        return enc ? n.data.toString(enc as BufferEncoding) : Buffer.from(n.data);
      },
      async writeFile(path: string, data: string | Uint8Array, opts?: string | { encoding?: string }) {
        const p = normal(path);
        self.dir(parentOf(p), 'open');
        const existing = self.nodes.get(p);
        if (existing?.kind === 'dir') throw fsError('EISDIR', 'open', p);
        const enc = (typeof opts === 'string' ? opts : opts?.encoding) ?? 'utf8';
        const buf = exact(typeof data === 'string' ? Buffer.from(data, enc as BufferEncoding) : Buffer.from(data));
        self.add(p, { kind: 'file', data: buf, mtimeMs: Date.now() });
      },
      async unlink(path: string) {
        const p = normal(path);
        const n = self.nodes.get(p);
        if (!n) throw fsError('ENOENT', 'unlink', p);
        if (n.kind === 'dir') throw fsError('EISDIR', 'unlink', p);
        self.drop(p);
      },
      async readdir(path: string) {
        const p = normal(path);
        self.dir(p, 'scandir');
        return [...(self.children.get(p) ?? [])].sort();
      },
      async mkdir(path: string, opts?: { recursive?: boolean }) {
        const p = normal(path);
        if (opts?.recursive) return self.mkdirp(p);
        if (self.nodes.has(p)) throw fsError('EEXIST', 'mkdir', p);
        self.dir(parentOf(p), 'mkdir');
        self.add(p, { kind: 'dir' });
      },
      async rmdir(path: string) {
        const p = normal(path);
        self.dir(p, 'rmdir');
        if (self.children.get(p)?.size) throw fsError('ENOTEMPTY', 'rmdir', p);
        self.drop(p);
      },
      stat,
      lstat: stat,
      async readlink(path: string): Promise<string> {
        throw fsError('EINVAL', 'readlink', normal(path));
      },
      async symlink(_target: string, path: string): Promise<void> {
        throw fsError('EPERM', 'symlink', normal(path));
      },
      async chmod() {
        /* modes are fixed */
      },
    };
  }
}
