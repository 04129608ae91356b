import type { Json } from '../lib/merge-patch.js';

/*
 * Template expansion with the semantics of the Factory+ template entries
 * (json-templates): every string in a JSON value — object values, array
 * elements and object keys — may hold `{{ key }}` or `{{ key:default }}`
 * placeholders, where key is a dotted path into the context.
 *  - A string that is exactly one placeholder takes the context value with
 *    its type (an object stays an object).
 *  - Otherwise placeholders are replaced by text; missing values become the
 *    default or the empty string.
 * Unlike json-templates, replacement text is inserted literally: `$&` in a
 * value stays `$&`.
 */

const PLACEHOLDER = /\{\{\s*([a-zA-Z_$][\w.$-]*)(?::([^}]*))?\s*\}\}/g;
const WHOLE = /^\{\{\s*([a-zA-Z_$][\w.$-]*)(?::([^}]*))?\s*\}\}$/;

export type TemplateContext = Record<string, unknown>;

function lookup(ctx: TemplateContext, path: string): unknown {
  let cur: unknown = ctx;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return typeof cur === 'function' ? (cur as () => unknown)() : cur;
}

function asText(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function renderString(s: string, ctx: TemplateContext): unknown {
  const whole = WHOLE.exec(s.trim());
  if (whole) {
    const v = lookup(ctx, whole[1]);
    return v === undefined && whole[2] !== undefined ? whole[2] : v;
  }
  return s.replace(PLACEHOLDER, (_m, key: string, dflt: string | undefined) => {
    const v = lookup(ctx, key);
    return v === undefined || v === null ? (dflt ?? '') : asText(v);
  });
}

/** Expands a template against a context; the template itself is not changed. */
export function renderTemplate(template: unknown, ctx: TemplateContext): unknown {
  if (typeof template === 'string') return renderString(template, ctx);
  if (Array.isArray(template)) return template.map((t) => renderTemplate(t, ctx));
  if (template !== null && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(template)) out[asText(renderString(k, ctx))] = renderTemplate(v, ctx);
    return out;
  }
  return template;
}

/** The placeholder keys a template uses, for checking a context before rendering. */
export function templateKeys(template: unknown, into = new Set<string>()): Set<string> {
  if (typeof template === 'string') {
    for (const m of template.matchAll(PLACEHOLDER)) into.add(m[1]);
  } else if (Array.isArray(template)) {
    for (const t of template) templateKeys(t, into);
  } else if (template !== null && typeof template === 'object') {
    for (const [k, v] of Object.entries(template)) {
      templateKeys(k, into);
      templateKeys(v, into);
    }
  }
  return into;
}

export type { Json };
