import { HttpError } from '../../lib/http-errors.js';

/** One entity tag from a precondition header. */
export interface EntityTag {
  weak: boolean;
  tag: string;
}

export type EtagList = '*' | EntityTag[];

/** Parsed `If-Match` / `If-None-Match` request headers (RFC 9110 §13.1). */
export interface Preconditions {
  ifMatch?: EtagList;
  ifNoneMatch?: EtagList;
}

/** The outcome of evaluating preconditions against the current entry. */
export type PreconditionResult = 'pass' | 'failed' | 'not-modified';

const ETAG_RE = /^(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"$/;

/** Parses one header value; a value that is not `*` or a list of entity tags is a 400. */
export function parseEtagList(header: string, name = 'precondition'): EtagList {
  const text = header.trim();
  if (text === '*') return '*';
  const out: EntityTag[] = [];
  for (const part of text.split(',')) {
    const item = part.trim();
    if (!item) continue;
    const m = ETAG_RE.exec(item);
    if (!m) throw new HttpError(400, `${name} header is not a list of entity tags: ${JSON.stringify(header)}`);
    out.push({ weak: m[1] !== undefined, tag: m[2]! });
  }
  if (out.length === 0) throw new HttpError(400, `${name} header is empty`);
  return out;
}

export function parsePreconditions(headers: { ifMatch?: string; ifNoneMatch?: string }): Preconditions {
  const out: Preconditions = {};
  if (headers.ifMatch) out.ifMatch = parseEtagList(headers.ifMatch, 'If-Match');
  if (headers.ifNoneMatch) out.ifNoneMatch = parseEtagList(headers.ifNoneMatch, 'If-None-Match');
  return out;
}

/**
 * Evaluates preconditions against the current ETag (undefined when there is
 * no entry). If-Match uses strong comparison, If-None-Match weak comparison.
 * `read` selects the answer for a failed If-None-Match: 304 for GET/HEAD,
 * 412 for writes.
 */
export function evaluatePreconditions(
  p: Preconditions | undefined,
  current: string | undefined,
  read: boolean,
): PreconditionResult {
  if (!p) return 'pass';
  if (p.ifMatch !== undefined) {
    const ok =
      p.ifMatch === '*'
        ? current !== undefined
        : current !== undefined && p.ifMatch.some((t) => !t.weak && t.tag === current);
    if (!ok) return 'failed';
  }
  if (p.ifNoneMatch !== undefined) {
    const matches =
      p.ifNoneMatch === '*'
        ? current !== undefined
        : current !== undefined && p.ifNoneMatch.some((t) => t.tag === current);
    if (matches) return read ? 'not-modified' : 'failed';
  }
  return 'pass';
}

/** For writes: throws 412 when a precondition fails. */
export function requirePreconditions(p: Preconditions | undefined, current: string | undefined): void {
  if (evaluatePreconditions(p, current, false) !== 'pass') {
    throw new HttpError(412, 'precondition failed: the entry does not have the expected ETag');
  }
}
