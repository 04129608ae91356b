/** JSON values as they travel over the wire. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function isJsonObject(v: unknown): v is { [k: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Sets a key as an own data property: plain assignment of `__proto__` would
 * change the object's prototype instead, and JSON from outside may hold any key.
 */
function put(o: { [k: string]: Json }, k: string, v: Json): void {
  Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
}

function own(o: { [k: string]: Json }, k: string): Json | undefined {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

/** RFC 7396 JSON merge patch: returns a new value, never mutates its inputs. */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isJsonObject(patch)) return patch;
  const out: { [k: string]: Json } = isJsonObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else put(out, k, applyMergePatch(own(out, k), v));
  }
  return out;
}

/**
 * Combines two patches into one (json-merge-patch's `merge`): nested objects
 * merge, anything else from `b` replaces, and nulls in `b` are kept.
 */
export function mergePatches(a: Json, b: Json): Json {
  if (!isJsonObject(a) || !isJsonObject(b)) return b;
  const out: { [k: string]: Json } = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = own(out, k);
    put(out, k, isJsonObject(prev) && isJsonObject(v) ? mergePatches(prev, v) : v);
  }
  return out;
}

/**
 * One patch with the effect of applying `a` then `b`, when merge patches can
 * say that; undefined when they cannot (`b` patches into a key that `a`
 * deleted or set to a non-object: as one patch it would merge into the old
 * object instead of replacing it).
 */
export function composeMergePatches(a: Json, b: Json): Json | undefined {
  if (!isJsonObject(b)) return b;
  if (!isJsonObject(a)) return undefined;
  const out: { [k: string]: Json } = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = own(out, k);
    if (prev === undefined || !isJsonObject(v)) {
      put(out, k, v);
      continue;
    }
    const inner = composeMergePatches(prev, v);
    if (inner === undefined) return undefined;
    put(out, k, inner);
  }
  return out;
}

/** Canonical JSON text (sorted keys) for equality checks and hashing. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v as object).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function jsonEqual(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}
