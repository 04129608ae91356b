import { getCondition, readStatus } from '../reconcile/setup-status.js';
import type { Status, StatusStore } from '../reconcile/status.js';
import type { ClusterDeviceState, ClusterPhase } from './model.js';
import type { SparkplugNode } from './node.js';
import { CLUSTER_PHASES } from './model.js';

/** A setup status as the cluster's Sparkplug device shows it. */
function deviceState(status: Status): ClusterDeviceState {
  const st = readStatus(status)!;
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
  const ready = getCondition(st, 'Ready');
  const failing = ready?.status === 'False' ? ready : undefined;
  return {
    name: typeof st.spec?.name === 'string' ? st.spec.name : '',
    phase: st.phase,
    ready: st.ready,
    conditions: st.conditions,
    repoHead: typeof st.repo?.head === 'string' ? st.repo.head : null,
    sealedSecrets: n(st.secrets?.count),
    bootstrapFetches: n(st.bootstrap?.fetches),
    failureReason: failing?.reason ?? '',
    failureMessage: failing?.message ?? '',
    edgeReported: st.edge?.reported ?? false,
    edgeHosts: st.edge?.hosts ?? 0,
    edgeReadyHosts: st.edge?.readyHosts ?? 0,
    edgeKubernetesVersions: st.edge?.kubernetesVersions ?? [],
  };
}

/**
 * Keeps the node's devices and phase counts in step with the setup status:
 * every status change becomes a DBIRTH, DDATA or DDEATH, and the node's
 * counts are refreshed at most every `countsEveryMs`.
 */
export function bridgeStatus(
  node: SparkplugNode,
  status: StatusStore,
  lastError: () => string,
  countsEveryMs = 1000,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  const counts = () => {
    timer = undefined;
    const counts = status.phaseCounts();
    const c: Partial<Record<ClusterPhase | 'total', number>> = { total: status.size };
    for (const p of CLUSTER_PHASES) c[p] = counts[p] ?? 0;
    node.setNodeMetrics({ clusters: c, lastError: lastError() });
  };
  const schedule = () => {
    if (!timer) {
      timer = setTimeout(counts, countsEveryMs);
      timer.unref();
    }
  };
  for (const id of status.clusters()) node.setDevice(id, deviceState(status.get(id)!));
  counts();
  const off = status.onChange((id, st) => {
    if (st) node.setDevice(id, deviceState(st));
    else node.removeDevice(id);
    schedule();
  });
  return () => {
    off();
    clearTimeout(timer);
  };
}
