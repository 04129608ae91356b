import { gitRequest, readAll, type GitAuth } from './git-http.js';
import { packObjects, type GitObject } from './git-objects.js';

/** The remote refused the update because its branch is not where we built on. */
export class PushRejected extends Error {}

/** The Git server answered with an HTTP error. */
export class GitHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const ZERO = '0'.repeat(40);

function pktLine(text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0'), 'latin1'), body]);
}

/** The pkt-lines of a report-status answer (flushes dropped). */
export function parsePktLines(buf: Buffer): string[] {
  const lines: string[] = [];
  let i = 0;
  while (i + 4 <= buf.length) {
    const len = parseInt(buf.subarray(i, i + 4).toString('latin1'), 16);
    if (Number.isNaN(len)) throw new Error('the Git server sent a malformed answer');
    if (len === 0) {
      i += 4;
      continue;
    }
    if (len < 4 || i + len > buf.length) throw new Error('the Git server sent a truncated answer');
    lines.push(
      buf
        .subarray(i + 4, i + len)
        .toString('utf8')
        .replace(/\n$/, ''),
    );
    i += len;
  }
  return lines;
}

export interface RefUpdate {
  ref: string;
  /** The head the new commit was built on; null when the branch must not exist yet. */
  old: string | null;
  new: string;
}

/**
 * Pushes one ref update with a single receive-pack request.
 *
 * The writer knows the head it built on, so it skips the ref advertisement a
 * push usually starts with: that head goes out as the update's old value and
 * receive-pack applies the update only if the branch is still there (a
 * compare-and-swap), so a moved branch is refused, never overwritten.
 * `git http-backend` serves a stateless receive-pack request on its own. The
 * pack holds the objects the update added; the remote has everything else.
 */
export async function receivePack(opts: {
  url: string;
  auth: GitAuth;
  update: RefUpdate;
  objects: Iterable<GitObject>;
  timeoutMs: number;
}): Promise<void> {
  const { update } = opts;
  const command = pktLine(`${update.old ?? ZERO} ${update.new} ${update.ref}\0report-status agent=cluster-manager\n`);
  const body = Buffer.concat([command, Buffer.from('0000', 'latin1'), packObjects(opts.objects)]);
  const res = await gitRequest({
    url: `${opts.url.replace(/\/$/, '')}/git-receive-pack`,
    method: 'POST',
    auth: opts.auth,
    headers: {
      'content-type': 'application/x-git-receive-pack-request',
      accept: 'application/x-git-receive-pack-result',
    },
    body,
    timeoutMs: opts.timeoutMs,
  });
  const answer = await readAll(res.body);
  if (res.statusCode !== 200) {
    throw new GitHttpError(
      res.statusCode,
      `the Git server answered the push with ${res.statusCode}: ${answer.toString('utf8').slice(0, 200)}`,
    );
  }
  const lines = parsePktLines(answer);
  const unpack = lines.find((l) => l.startsWith('unpack '));
  if (unpack !== 'unpack ok')
    throw new Error(`the Git server could not take the pushed objects: ${unpack ?? 'no report'}`);
  const report = lines.find((l) => l === `ok ${update.ref}` || l.startsWith(`ng ${update.ref} `));
  if (!report) throw new Error(`the Git server did not report on ${update.ref}`);
  if (report.startsWith('ng ')) throw new PushRejected(`push rejected: ${report.slice(update.ref.length + 4)}`);
}
