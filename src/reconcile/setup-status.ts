/**
 * The *Edge cluster setup status* entry as one type, and the one way to read
 * and to change its conditions.
 *
 * The entry is stored as JSON written by merge patches, by this service and
 * by the original Cluster Manager before it, so it is read through
 * `readStatus`, which takes any shape either has written and answers a
 * `SetupStatus` whose fields can be used without probing. Conditions follow
 * Kubernetes (and Flux's `conditions.MarkTrue/MarkFalse`): one per type,
 * `lastTransitionTime` moves only when `status` changes. A bounded `history`
 * of condition transitions is kept beside them (see `withHistory`).
 */
import type { Json } from '../lib/merge-patch.js';
import type { ClusterSpec } from '../repo/manifests.js';

export const PHASES = ['pending', 'address', 'accounts', 'repo', 'ready', 'deleting', 'failed'] as const;
export type Phase = (typeof PHASES)[number];

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  /** A stable CamelCase word: what scripts and dashboards match on. */
  reason: string;
  /** The cause in words. */
  message: string;
  lastTransitionTime: string;
  /** The spec hash this condition was found for, as Kubernetes' observedGeneration. */
  observedSpecHash?: string;
  /** For a failing step: consecutive failed attempts, the last one, and when the next is due. */
  attempts?: number;
  lastAttempt?: string;
  nextAttempt?: string;
}

/**
 * A condition transition: a condition appeared, changed its status or its
 * reason, or was cleared (`status: 'Cleared'`, reason and message empty).
 * A repeated failure that only counts another attempt is none.
 */
export interface HistoryEntry {
  type: string;
  status: Condition['status'] | 'Cleared';
  reason: string;
  message: string;
  /** When the transition was recorded. */
  at: string;
}

/**
 * Entries kept per cluster, oldest dropped first. Ten thousand clusters are
 * held in memory, so the bound is what one cluster may cost: 20 entries of
 * at most a 160-character message each.
 */
export const HISTORY_LIMIT = 20;
export const HISTORY_MESSAGE_MAX = 160;

/** An account setup made: its object's UUID, whether its setup finished, the grants it was given. */
export interface AccountRecord {
  uuid?: string;
  done?: boolean;
  grants?: string[];
}

export interface EdgeHost {
  hostname: string;
  arch?: string;
  k8s_version?: string;
  control_plane?: boolean;
  os_version?: string;
  ready?: boolean;
  specialised?: unknown;
}

/** What Edge Sync reported of the cluster (its *Edge cluster status* entry), summarised. */
export interface EdgeHealth {
  /** Edge Sync has written the cluster's host list. */
  reported: boolean;
  hosts: number;
  readyHosts: number;
  /** Distinct kubelet versions of the hosts, sorted. */
  kubernetesVersions: string[];
  sealingCertificate: { fingerprint: string; notAfter: string } | null;
  /** When this summary last changed; null while nothing has been reported. */
  lastChange: string | null;
}

export interface SetupStatus {
  // The original Cluster Manager's fields.
  spec?: ClusterSpec;
  ready: boolean;
  fluxVersion?: string;
  flux?: AccountRecord;
  krbkeys?: AccountRecord;
  self_link?: string;
  // This service's.
  phase: Phase;
  conditions: Condition[];
  /** Condition transitions, oldest first, at most HISTORY_LIMIT; readStatus always gives one. */
  history?: HistoryEntry[];
  specHash?: string;
  repo?: { head?: string | null };
  secrets?: { count?: number };
  bootstrap?: { fetches?: number; lastFetch?: string };
  edge?: EdgeHealth;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An account as the original wrote it (a bare UUID) or as this service does (`{uuid, done, grants}`). */
function account(v: unknown): AccountRecord | undefined {
  if (typeof v === 'string') return { uuid: v };
  if (!isObject(v)) return undefined;
  const out: AccountRecord = {};
  if (typeof v.uuid === 'string') out.uuid = v.uuid;
  if (typeof v.done === 'boolean') out.done = v.done;
  if (Array.isArray(v.grants)) out.grants = v.grants.filter((g): g is string => typeof g === 'string');
  return out;
}

function condition(v: unknown): Condition | undefined {
  if (!isObject(v) || typeof v.type !== 'string') return undefined;
  const status = v.status === 'True' || v.status === 'False' ? v.status : 'Unknown';
  const c: Condition = {
    type: v.type,
    status,
    reason: typeof v.reason === 'string' ? v.reason : '',
    message: typeof v.message === 'string' ? v.message : '',
    lastTransitionTime: typeof v.lastTransitionTime === 'string' ? v.lastTransitionTime : '',
  };
  if (typeof v.observedSpecHash === 'string') c.observedSpecHash = v.observedSpecHash;
  if (typeof v.attempts === 'number') c.attempts = v.attempts;
  if (typeof v.lastAttempt === 'string') c.lastAttempt = v.lastAttempt;
  if (typeof v.nextAttempt === 'string') c.nextAttempt = v.nextAttempt;
  return c;
}

const HISTORY_STATUSES: readonly unknown[] = ['True', 'False', 'Unknown', 'Cleared'];

function historyEntry(v: unknown): HistoryEntry | undefined {
  if (!isObject(v) || typeof v.type !== 'string' || typeof v.at !== 'string') return undefined;
  if (!HISTORY_STATUSES.includes(v.status)) return undefined;
  const reason = typeof v.reason === 'string' ? v.reason : '';
  const message = typeof v.message === 'string' ? v.message : '';
  // An entry this service wrote is taken as it is, so memory holds it once.
  if (v.reason === reason && v.message === message && Object.keys(v).length === 5) return v as unknown as HistoryEntry;
  return { type: v.type, status: v.status as HistoryEntry['status'], reason, message, at: v.at };
}

function conditionsOf(json: Record<string, unknown>): Condition[] {
  return Array.isArray(json.conditions)
    ? json.conditions.map(condition).filter((c): c is Condition => c !== undefined)
    : [];
}

/** The history as written; a status written before the history was kept has none. */
function historyOf(json: Record<string, unknown>): HistoryEntry[] {
  return Array.isArray(json.history)
    ? json.history
        .map(historyEntry)
        .filter((h): h is HistoryEntry => h !== undefined)
        .slice(-HISTORY_LIMIT)
    : [];
}

const count = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0);

/**
 * The edge summary as written by merge patches: a `null` in a patch
 * removes the property, so an absent certificate or change time is null.
 */
function edgeHealth(v: unknown): EdgeHealth | undefined {
  if (!isObject(v)) return undefined;
  const cert = v.sealingCertificate;
  return {
    reported: v.reported === true,
    hosts: count(v.hosts),
    readyHosts: count(v.readyHosts),
    kubernetesVersions: Array.isArray(v.kubernetesVersions)
      ? v.kubernetesVersions.filter((x): x is string => typeof x === 'string')
      : [],
    sealingCertificate:
      isObject(cert) && typeof cert.fingerprint === 'string' && typeof cert.notAfter === 'string'
        ? { fingerprint: cert.fingerprint, notAfter: cert.notAfter }
        : null,
    lastChange: typeof v.lastChange === 'string' ? v.lastChange : null,
  };
}

const cache = new WeakMap<object, SetupStatus>();

/**
 * The status entry as a `SetupStatus`, whatever wrote it: a missing `phase`
 * is `ready` for a ready entry (the original's) and `pending` otherwise, a
 * bare account UUID becomes `{uuid}`, malformed conditions and history
 * entries are dropped, and a status without a history has an empty one.
 * Entries are replaced, never changed in place, so the answer is kept per
 * entry object.
 */
export function readStatus(json: Json | undefined): SetupStatus | undefined {
  if (!isObject(json)) return undefined;
  const hit = cache.get(json);
  if (hit) return hit;
  const ready = json.ready === true;
  const st: SetupStatus = {
    ready,
    phase: (PHASES as readonly unknown[]).includes(json.phase) ? (json.phase as Phase) : ready ? 'ready' : 'pending',
    conditions: conditionsOf(json),
    history: historyOf(json),
  };
  if (isObject(json.spec)) st.spec = json.spec as unknown as ClusterSpec;
  if (typeof json.fluxVersion === 'string') st.fluxVersion = json.fluxVersion;
  const flux = account(json.flux);
  if (flux) st.flux = flux;
  const krbkeys = account(json.krbkeys);
  if (krbkeys) st.krbkeys = krbkeys;
  if (typeof json.self_link === 'string') st.self_link = json.self_link;
  if (typeof json.specHash === 'string') st.specHash = json.specHash;
  if (isObject(json.repo)) st.repo = { head: typeof json.repo.head === 'string' ? json.repo.head : null };
  if (isObject(json.secrets)) st.secrets = { count: typeof json.secrets.count === 'number' ? json.secrets.count : 0 };
  if (isObject(json.bootstrap)) {
    st.bootstrap = { fetches: typeof json.bootstrap.fetches === 'number' ? json.bootstrap.fetches : 0 };
    if (typeof json.bootstrap.lastFetch === 'string') st.bootstrap.lastFetch = json.bootstrap.lastFetch;
  }
  const edge = edgeHealth(json.edge);
  if (edge) st.edge = edge;
  cache.set(json, st);
  return st;
}

/** The condition of a type, if the status has one. */
export function getCondition(st: SetupStatus | undefined, type: string): Condition | undefined {
  return st?.conditions.find((c) => c.type === type);
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/**
 * The conditions with `c` set in place of any of its type. The transition
 * time is kept when the status is unchanged, so "since when" means since
 * the condition last flipped, not since it was last written.
 */
export function setCondition(conditions: readonly Condition[], c: ConditionInput, now: Date): Condition[] {
  const old = conditions.find((x) => x.type === c.type);
  const next: Condition = {
    ...c,
    lastTransitionTime:
      old && old.status === c.status && old.lastTransitionTime ? old.lastTransitionTime : now.toISOString(),
  };
  return old ? conditions.map((x) => (x === old ? next : x)) : [...conditions, next];
}

/** The conditions without those of the given types. */
export function clearConditions(conditions: readonly Condition[], ...types: string[]): Condition[] {
  return conditions.filter((c) => !types.includes(c.type));
}

/** Whether two condition lists say the same, ignoring only when it was said. */
export function sameConditions(a: readonly Condition[], b: readonly Condition[]): boolean {
  const key = (c: Condition) =>
    JSON.stringify({ ...c, lastTransitionTime: undefined, lastAttempt: undefined, nextAttempt: undefined });
  return a.length === b.length && a.every((c, i) => key(c) === key(b[i]));
}

/** The reason a cluster is not ready, for lists: the Ready condition's when it is False. */
export function notReadyReason(st: SetupStatus | undefined): string | null {
  const ready = getCondition(st, 'Ready');
  return ready && ready.status === 'False' ? ready.reason : null;
}

/** A message cut to HISTORY_MESSAGE_MAX characters, never inside a surrogate pair. */
function shortMessage(message: string): string {
  if (message.length <= HISTORY_MESSAGE_MAX) return message;
  const cut = Array.from(message.slice(0, HISTORY_MESSAGE_MAX + 1)).slice(0, HISTORY_MESSAGE_MAX - 1);
  return `${cut.join('')}…`;
}

/**
 * The transitions from one list of conditions to the next, in the order of
 * the new list, then those cleared: a condition that is new or whose status
 * or reason differs, and one that is gone. A new message, attempt count or
 * retry time alone is not a transition.
 */
export function transitions(before: readonly Condition[], after: readonly Condition[], now: Date): HistoryEntry[] {
  const at = now.toISOString();
  const out: HistoryEntry[] = [];
  for (const c of after) {
    const old = before.find((x) => x.type === c.type);
    if (old && old.status === c.status && old.reason === c.reason) continue;
    out.push({ type: c.type, status: c.status, reason: c.reason, message: shortMessage(c.message), at });
  }
  for (const c of before)
    if (!after.some((x) => x.type === c.type))
      out.push({ type: c.type, status: 'Cleared', reason: '', message: '', at });
  return out;
}

/**
 * The history a status entry should hold after a write changed it from
 * `before` to `after`, or undefined when no condition made a transition (the
 * history then stays as it is, and the write carries none). It rides on the
 * write that changes the conditions, so it costs no write of its own.
 */
export function withHistory(before: Json | undefined, after: Json, now: Date): HistoryEntry[] | undefined {
  // Only the two lists are read: the whole status is not normalised at every write.
  const old = isObject(before) ? before : {};
  const added = transitions(conditionsOf(old), isObject(after) ? conditionsOf(after) : [], now);
  if (!added.length) return undefined;
  return [...historyOf(old), ...added].slice(-HISTORY_LIMIT);
}
