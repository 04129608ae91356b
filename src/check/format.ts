import type { CheckResult } from './types.js';

const LABEL = { ok: 'ok', fail: 'FAIL', skip: 'skip' } as const;

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/**
 * The results as text, one line per check and nothing else:
 *
 *     ok   Directory      http://127.0.0.1:7081/ answered
 *     FAIL Config Store   cannot reach http://…: connect ECONNREFUSED … — fix: …
 *     skip ServiceConfig  skipped: needs Config Store
 *
 * Ends with a newline when there is at least one result.
 */
export function formatChecks(results: CheckResult[]): string {
  const width = Math.max(0, ...results.map((r) => r.name.length));
  const lines = results.map((r) => {
    const label = r.ok ? LABEL.ok : r.skipped ? LABEL.skip : LABEL.fail;
    const fix = !r.ok && r.fix ? ` — fix: ${oneLine(r.fix)}` : '';
    return `${label.padEnd(4)} ${oneLine(r.name).padEnd(width)}  ${oneLine(r.detail)}${fix}`;
  });
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/**
 * Removes user info from URLs and every occurrence of the secrets from a
 * text. Secrets shorter than four characters are left alone: masking them
 * would garble ordinary words, and no message ever quotes a password itself.
 */
export function redact(text: string, secrets: string[]): string {
  let out = text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, '$1***@');
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('***');
  return out;
}
