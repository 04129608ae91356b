/**
 * How deeply a JSON value nests: a scalar is 0, `{}` and `[]` are 1, and
 * each level of objects or arrays inside adds one. Counted with an explicit
 * stack, not recursion, so that a hostile document of any depth is measured
 * without exhausting the call stack; counting stops once it passes `limit`.
 */
export function jsonDepth(value: unknown, limit = Infinity): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    const depth = d + 1;
    if (depth > max) {
      max = depth;
      if (max > limit) return max;
    }
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth]);
    }
  }
  return max;
}

/** The UTF-8 size of a value's JSON text; call only on a value whose depth is known to be bounded. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '');
}
