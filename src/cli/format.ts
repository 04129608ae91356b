/**
 * Human output: tables, times as "how long ago", and colour only for a
 * terminal that wants it. Pure functions of what the service answered and
 * the clock, so what an operator reads is what the tests read.
 */
import { stripVTControlCharacters, styleText } from 'node:util';
import type { Condition, HistoryEntry, SetupStatus } from '../reconcile/setup-status.js';
import type { ClusterSummary, ResealReport, SecretEntry } from './client.js';

export type Paint = (style: 'green' | 'red' | 'yellow' | 'bold' | 'dim', text: string) => string;

/** Colour when writing to a terminal and NO_COLOR is not set (https://no-color.org). */
export function painter(isTTY: boolean | undefined, env: Record<string, string | undefined>): Paint {
  if (!isTTY || env.NO_COLOR) return (_s, t) => t;
  // The decision is made here, once, for the stream the output goes to.
  return (s, t) => styleText(s, t, { validateStream: false });
}

/** "5s", "3m", "2h", "4d": the largest unit that is at least one. */
function span(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 90) return `${s}s`;
  if (s < 90 * 60) return `${Math.round(s / 60)}m`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** "12s ago" or "in 3s" from an ISO time; "-" for none. */
export function relative(iso: string | null | undefined, now: number): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const d = t - now;
  return d > 0 ? `in ${span(d)}` : `${span(d)} ago`;
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(rows: string[][]): string {
  const visible = (s: string) => stripVTControlCharacters(s).length;
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, visible(c))));
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i] - visible(c)))).join('  '))
    .join('\n');
}

const conditionStatus = (c: Condition | HistoryEntry, paint: Paint) =>
  c.status === 'True'
    ? paint('green', c.status)
    : c.status === 'False'
      ? paint('red', c.status)
      : paint('yellow', c.status);

function edgeText(e: ClusterSummary['edge'] | undefined): string {
  if (!e) return '-';
  if (!e.reported) return 'not reported';
  return `${e.readyHosts}/${e.hosts} hosts ready`;
}

export function clusterList(list: Array<ClusterSummary & { secrets?: number | null }>, paint: Paint): string {
  if (!list.length) return 'No clusters.';
  const rows = [['NAME', 'PHASE', 'READY', 'REASON', 'EDGE', 'SECRETS', 'UUID'].map((h) => paint('bold', h))];
  for (const c of list) {
    rows.push([
      c.name ?? '-',
      c.phase,
      c.ready ? paint('green', 'True') : paint('red', 'False'),
      c.reason ?? '-',
      edgeText(c.edge),
      c.secrets === undefined || c.secrets === null ? '-' : String(c.secrets),
      c.uuid,
    ]);
  }
  return table(rows);
}

/** A setup status as an operator reads it: the headline, then every condition with its times and attempts. */
export function statusText(name: string, uuid: string, s: SetupStatus, now: number, paint: Paint): string {
  const lines = [
    `${paint('bold', name)}  ${uuid}`,
    table([
      ['Phase:', s.phase === 'failed' ? paint('red', s.phase) : s.phase],
      ['Ready:', s.ready ? paint('green', 'True') : paint('red', 'False')],
      ['Repo head:', s.repo?.head ?? '-'],
      ['Secrets:', String(s.secrets?.count ?? 0)],
      [
        'Bootstrap:',
        `${s.bootstrap?.fetches ?? 0} fetches${s.bootstrap?.lastFetch ? `, last ${relative(s.bootstrap.lastFetch, now)}` : ''}`,
      ],
      [
        'Edge:',
        `${edgeText(s.edge)}${s.edge?.kubernetesVersions.length ? ` (${s.edge.kubernetesVersions.join(', ')})` : ''}`,
      ],
    ]),
  ];
  const conditions = s.conditions ?? [];
  if (conditions.length) {
    lines.push('', paint('bold', 'Conditions:'));
    const rows = [['TYPE', 'STATUS', 'REASON', 'SINCE', 'MESSAGE'].map((h) => paint('dim', h))];
    for (const c of conditions) {
      rows.push([c.type, conditionStatus(c, paint), c.reason || '-', relative(c.lastTransitionTime, now), c.message]);
      if (c.attempts !== undefined || c.nextAttempt)
        rows.push([
          '',
          '',
          '',
          '',
          paint(
            'yellow',
            `attempt ${c.attempts ?? '?'}, last ${relative(c.lastAttempt, now)}, next ${relative(c.nextAttempt, now)}`,
          ),
        ]);
    }
    lines.push(table(rows).replace(/^/gm, '  '));
  }
  lines.push(...historyLines(s.history ?? [], now, paint));
  return lines.join('\n');
}

/** Transitions shown by `status`; `--json` has all the service keeps. */
export const RECENT_TRANSITIONS = 10;

/** The recent condition transitions, newest first, with how long ago each was. */
function historyLines(history: readonly HistoryEntry[], now: number, paint: Paint): string[] {
  if (!history.length) return [];
  const recent = history.slice(-RECENT_TRANSITIONS).reverse();
  const rows = [['WHEN', 'TYPE', 'STATUS', 'REASON', 'MESSAGE'].map((h) => paint('dim', h))];
  for (const h of recent)
    rows.push([relative(h.at, now), h.type, conditionStatus(h, paint), h.reason || '-', h.message]);
  const older = history.length - recent.length;
  return [
    '',
    paint('bold', 'Recent transitions:'),
    table(rows).replace(/^/gm, '  '),
    ...(older > 0 ? [paint('dim', `  (${older} earlier; --json shows them)`)] : []),
  ];
}

export function secretList(list: SecretEntry[], paint: Paint): string {
  if (!list.length) return 'No sealed secrets.';
  const rows = [['SECRET', 'SCOPE', 'KEYS', 'SEALED FOR'].map((h) => paint('bold', h))];
  for (const e of list) {
    const fps = [...new Set(Object.values(e.certFingerprints ?? {}))].map((f) => f.slice(0, 16));
    rows.push([`${e.namespace}/${e.name}`, e.scope, e.keys.join(','), fps.join(',') || '-']);
  }
  const cert = list[0]?.sealingCertificate;
  return `${table(rows)}\n\nCurrent certificate: ${cert ? `${cert.fingerprint.slice(0, 16)} (${cert.subject}, until ${cert.notAfter})` : 'none reported'}`;
}

export function resealText(r: ResealReport, paint: Paint): string {
  const lines = [r.message];
  if (r.stale.length) {
    const rows = [['SECRET', 'KEY', 'SEALED FOR'].map((h) => paint('bold', h))];
    for (const s of r.stale) rows.push([`${s.namespace}/${s.name}`, s.key, s.sealedFor?.slice(0, 16) ?? '-']);
    lines.push('', table(rows));
  }
  return lines.join('\n');
}
