import { HttpError } from '../../lib/http-errors.js';
import type { Json } from '../../lib/merge-patch.js';
import { isJsonObject, jsonEqual } from '../../lib/merge-patch.js';

/**
 * Config entry search, as `GET /v1/app/{app}/search?...` answers it.
 *
 * Query-string pairs:
 * - `PATH=VALUE`: the property at the dotted PATH must equal the JSON scalar
 *   VALUE (strings quoted, as in JSON); the bare word `undefined` means the
 *   property must be absent. All pairs must hold.
 * - `@NAME=PATH`: return the property at PATH under NAME (`@uuid` is refused).
 */

const PATH_RE = /^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$/;
const RESULT_RE = /^@([A-Za-z_]\w*)$/;

export type Scalar = null | boolean | number | string;

export interface SearchCondition {
  /** Dotted path split into property names. */
  path: string[];
  /** `undefined` means "the property is absent". */
  value: Scalar | undefined;
}

export interface SearchSelect {
  name: string;
  path: string[];
}

export interface SearchQuery {
  where: SearchCondition[];
  select: SearchSelect[];
}

/** Without `@` pairs: matching object UUIDs; with them: `{uuid: {NAME: value}}`. */
export type SearchResult = string[] | Record<string, Record<string, Json>>;

class SearchQueryError extends HttpError {
  constructor(message: string) {
    super(400, `bad search query: ${message}`);
  }
}

function parseScalar(text: string): Scalar | undefined {
  if (text === 'undefined') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new SearchQueryError(`${JSON.stringify(text)} is not a JSON scalar (quote strings, e.g. "\\"value\\"")`);
  }
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  throw new SearchQueryError(`${JSON.stringify(text)} is not a JSON scalar`);
}

/**
 * Parses the query part of a search URL (with or without the leading `?`),
 * or already-split pairs. A query that does not parse raises a 400 error.
 */
export function parseSearchQuery(query: string | URLSearchParams | Iterable<[string, string]>): SearchQuery {
  const pairs: Iterable<[string, string]> =
    typeof query === 'string' ? new URLSearchParams(query.startsWith('?') ? query.slice(1) : query) : query;
  const where: SearchCondition[] = [];
  const select: SearchSelect[] = [];
  const seen = new Set<string>();
  for (const [name, value] of pairs) {
    if (seen.has(name)) throw new SearchQueryError(`${JSON.stringify(name)} is given more than once`);
    seen.add(name);
    const result = RESULT_RE.exec(name);
    if (result) {
      const prop = result[1]!;
      if (prop === 'uuid') throw new SearchQueryError('@uuid is reserved for the object UUID');
      if (!PATH_RE.test(value)) throw new SearchQueryError(`${JSON.stringify(value)} is not a property path`);
      select.push({ name: prop, path: value.split('.') });
    } else if (PATH_RE.test(name)) {
      where.push({ path: name.split('.'), value: parseScalar(value) });
    } else {
      throw new SearchQueryError(`${JSON.stringify(name)} is neither a property path nor @NAME`);
    }
  }
  return { where, select };
}

/** The value at a property path; undefined when any step is missing or not an object. */
export function valueAtPath(json: Json | undefined, path: readonly string[]): Json | undefined {
  let cur: Json | undefined = json;
  for (const key of path) {
    if (!isJsonObject(cur) || !Object.prototype.hasOwnProperty.call(cur, key)) return undefined;
    cur = cur[key];
  }
  return cur;
}

export function matchesQuery(query: SearchQuery, json: Json): boolean {
  return query.where.every((c) => {
    const v = valueAtPath(json, c.path);
    return c.value === undefined ? v === undefined : v !== undefined && jsonEqual(v, c.value);
  });
}

/** The `@NAME` results for one entry; properties that are absent are left out. */
export function selectResults(query: SearchQuery, json: Json): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const s of query.select) {
    const v = valueAtPath(json, s.path);
    if (v !== undefined) out[s.name] = v;
  }
  return out;
}

/** Evaluates a query over `[object, json]` entries, keeping their order. */
export function evaluateSearch(query: SearchQuery, entries: Iterable<readonly [string, Json]>): SearchResult {
  const hits: Array<readonly [string, Json]> = [];
  for (const e of entries) if (matchesQuery(query, e[1])) hits.push(e);
  if (query.select.length === 0) return hits.map(([obj]) => obj);
  const out: Record<string, Record<string, Json>> = {};
  for (const [obj, json] of hits) out[obj] = selectResults(query, json);
  return out;
}
