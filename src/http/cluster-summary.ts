import type { Json } from '../lib/merge-patch.js';
import {
  getCondition,
  notReadyReason,
  readStatus,
  type Condition,
  type EdgeHealth,
  type HistoryEntry,
} from '../reconcile/setup-status.js';

/** A cluster as `GET /v1/cluster` lists it. */
export interface ClusterSummary {
  uuid: string;
  name: string | null;
  phase: string;
  ready: boolean;
  reason: string | null;
  message: string | null;
  edge: EdgeHealth | null;
}

/** A cluster as the event stream sends it: the summary and what a dashboard shows beside it. */
export interface ClusterDetail extends ClusterSummary {
  conditions: Condition[];
  repo: { head: string | null };
  secrets: { count: number };
  bootstrap: { fetches: number; lastFetch: string | null };
}

/**
 * One cluster as `GET /v1/cluster/{uuid}` answers: the detail and its stored
 * condition history, oldest first. The history stays out of the list and
 * the event stream, which would otherwise carry up to 20 entries per
 * cluster on every listing and every change.
 */
export interface ClusterRecord extends ClusterDetail {
  history: HistoryEntry[];
}

/** The list entry of a cluster's setup status entry. */
export function clusterSummary(uuid: string, json: Json | undefined): ClusterSummary {
  const st = readStatus(json) ?? { phase: 'pending', ready: false, conditions: [], history: [] };
  const ready = getCondition(st, 'Ready');
  return {
    uuid,
    name: st.spec?.name ?? null,
    phase: st.phase,
    ready: st.ready,
    // Why it is not ready, when it is not: the failing step's reason and cause.
    reason: notReadyReason(st),
    message: ready?.status === 'False' ? ready.message : null,
    // Normalised: what merge patches leave absent is null here.
    edge: st.edge ?? null,
  };
}

/** The summary with the conditions (attempts, next attempt), repo head, secrets count and bootstrap fetches. */
export function clusterDetail(uuid: string, json: Json | undefined): ClusterDetail {
  const st = readStatus(json);
  return {
    ...clusterSummary(uuid, json),
    conditions: st?.conditions ?? [],
    repo: { head: st?.repo?.head ?? null },
    secrets: { count: st?.secrets?.count ?? 0 },
    bootstrap: { fetches: st?.bootstrap?.fetches ?? 0, lastFetch: st?.bootstrap?.lastFetch ?? null },
  };
}

/** The detail with the condition history. */
export function clusterRecord(uuid: string, json: Json | undefined): ClusterRecord {
  return { ...clusterDetail(uuid, json), history: readStatus(json)?.history ?? [] };
}

/** Lists sort by name, then UUID. */
export function byName(a: ClusterSummary, b: ClusterSummary): number {
  return String(a.name).localeCompare(String(b.name)) || a.uuid.localeCompare(b.uuid);
}
